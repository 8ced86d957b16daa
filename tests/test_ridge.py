"""Ridge and minimum-norm: the estimator (OLS bit for bit at ridge 0, min-norm without pinv), the exact
conditional estimator against the simulator and a NumPy brute force, theory against the exact estimator
with negative controls, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linreg_collapse.cli import main
from linreg_collapse.config import SimConfig, minnorm_base_error
from linreg_collapse.design import (covariance_eigenvalues, estimator, ground_truth, weighted_dual_fit,
                                    weighted_primal_fit)
from linreg_collapse.errors import InputError
from linreg_collapse.exact import conditional_errors
from linreg_collapse.simulate import base_unit, mean_interval, run_trials, simulate
from linreg_collapse.theory import evaluate, results
from linreg_collapse.theory.ridge import expected_error, limit_tolerance, one_fit, optimal_ridge

from test_exact import designs


def test_ridge_zero_factor_is_the_ols_factor_bit_for_bit():
    X = np.random.default_rng(0).standard_normal((12, 5))
    with jax.enable_x64(True):
        ols = jnp.linalg.cholesky(jnp.asarray(X.T @ X))
        assert np.array_equal(np.asarray(estimator(12, 5).factor(jnp.asarray(X), 0.0)), np.asarray(ols))


def test_min_norm_and_ridge_forms_agree_with_numpy():
    """dual X^T (X X^T + s I)^{-1} Y = primal (X^T X + s I)^{-1} X^T Y; min-norm = lstsq's minimum-norm solution."""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((6, 15)), rng.standard_normal(6)
    with jax.enable_x64(True):
        dual, Xj = estimator(6, 15), jnp.asarray(X)
        w_min = np.asarray(dual.fit(dual.factor(Xj, 0.0), Xj, jnp.asarray(Y)))
        w_ridge = np.asarray(dual.fit(dual.factor(Xj, 0.3 * 6), Xj, jnp.asarray(Y)))
    np.testing.assert_allclose(w_min, np.linalg.lstsq(X, Y, rcond=None)[0], rtol=1e-10)
    np.testing.assert_allclose(w_ridge, np.linalg.solve(X.T @ X + 1.8 * np.eye(15), X.T @ Y), rtol=1e-10)


def test_weighted_dual_fit_equals_the_fit_on_repeated_rows():
    """accumulate-subsample on a fixed design repeats rows: grouping them gives the same ridge fit as the
    primal form on the repeated rows, and at ridge 0 lstsq's minimum-norm solution."""
    rng = np.random.default_rng(4)
    X, rows = rng.standard_normal((6, 10)), np.array([0, 0, 2, 3, 3, 3])
    Y = rng.standard_normal(6)
    counts, sums = np.bincount(rows, minlength=6).astype(float), np.bincount(rows, weights=Y, minlength=6)
    Xs = X[rows]
    with jax.enable_x64(True):
        for shift, want in [(0.7, np.linalg.solve(Xs.T @ Xs + 0.7 * np.eye(10), Xs.T @ Y)),
                            (0.0, np.linalg.lstsq(Xs, Y, rcond=None)[0])]:
            _, w = weighted_dual_fit(jnp.asarray(X), jnp.asarray(counts), jnp.asarray(sums), shift)
            np.testing.assert_allclose(np.asarray(w), want, rtol=1e-9, atol=1e-12)


def test_weighted_primal_fit_equals_the_fit_on_repeated_rows():
    """The primal form of the same grouping (T >= d): the ridge and OLS fits on the repeated rows, to 1e-10;
    dropping the multiplicities (each taken row once) is rejected by the same check."""
    rng = np.random.default_rng(5)
    X, rows = rng.standard_normal((12, 4)), np.array([0, 0, 1, 3, 3, 3, 5, 6, 8, 8, 10, 11])
    Y = rng.standard_normal(rows.size)
    counts, sums = np.bincount(rows, minlength=12).astype(float), np.bincount(rows, weights=Y, minlength=12)
    Xs = X[rows]
    with jax.enable_x64(True):
        def fit(counts, sums, shift):
            return np.asarray(weighted_primal_fit(jnp.asarray(X), jnp.asarray(X.T), jnp.asarray(counts),
                                                  jnp.asarray(sums), shift)[1])

        for shift in (0.7, 0.0):
            want = np.linalg.solve(Xs.T @ Xs + shift * np.eye(4), Xs.T @ Y)
            np.testing.assert_allclose(fit(counts, sums, shift), want, rtol=1e-10)
        once = (counts > 0).astype(float)
        assert not np.allclose(fit(once, sums / np.maximum(counts, 1), 0.0),
                               np.linalg.solve(Xs.T @ Xs, Xs.T @ Y), rtol=1e-6), "negative control"


def test_ground_truth_unit_norm_in_the_eigenbasis():
    flat, power = ground_truth("flat", 8), ground_truth("powerlaw", 8, 2.0)
    np.testing.assert_allclose(flat, np.full(8, 8**-0.5))
    assert np.linalg.norm(power) == pytest.approx(1) and power[0] / power[3] == pytest.approx(4.0)


def brute_force(cfg: SimConfig, trial: int) -> np.ndarray:
    """E[E_test | X] from the affine map noise -> w_n - w* built by applying each fit (numpy, dense) to
    (L, c) with w = L xi + c, xi all noise stacked: replace / accumulate (pooled ridge, penalty ridge N)."""
    T, d, G = cfg.T, cfg.d, cfg.generations
    eig = covariance_eigenvalues(cfg.cov, d, cfg.alpha)
    w_star = ground_truth(cfg.wstar, d, cfg.delta)
    Xs = designs(cfg, trial) if cfg.design == "fresh" else [designs(cfg, trial)[0]] * (G + 1)
    width = T * (G + 1)
    L, c = np.zeros((d, width)), w_star.copy()
    pool_X, pool_L, pool_c, out = [], [], [], []
    for n, X in enumerate(Xs):
        noise = np.zeros((T, width))
        noise[:, n * T:(n + 1) * T] = np.eye(T)
        Y_L, Y_c = X @ L + cfg.sigma * noise, X @ c
        if cfg.regime == "accumulate":
            pool_X, pool_L, pool_c = pool_X + [X], pool_L + [Y_L], pool_c + [Y_c]
            Xp, YL, Yc = np.vstack(pool_X), np.vstack(pool_L), np.concatenate(pool_c)
        else:
            Xp, YL, Yc = X, Y_L, Y_c
        A = np.linalg.pinv(Xp) if cfg.ridge == 0 else np.linalg.solve(
            Xp.T @ Xp + cfg.ridge * len(Xp) * np.eye(d), Xp.T)
        L, c = A @ YL, A @ Yc
        out.append(np.sum(eig * (c - w_star) ** 2) + np.sum(eig[:, None] * L**2))
    return np.asarray(out)


@pytest.mark.parametrize("kw", [
    dict(regime="replace", ridge=0.2, T=12, d=6, cov="powerlaw", wstar="powerlaw"),
    dict(regime="replace", ridge=0.0, T=5, d=12, design="fresh"),
    dict(regime="accumulate", ridge=0.2, T=5, d=8, design="fresh"),
    dict(regime="accumulate", ridge=0.0, T=5, d=12, cov="powerlaw"),
], ids=["ridge-replace", "minnorm-replace-fresh", "ridge-accumulate-fresh", "minnorm-accumulate"])
def test_exact_estimator_matches_brute_force(kw):
    cfg = SimConfig(generations=3, trials=2, seed=3, **kw)
    exact = conditional_errors(cfg)
    for trial in range(2):
        np.testing.assert_allclose(exact[trial], brute_force(cfg, trial), rtol=1e-8)


@pytest.mark.parametrize("kw", [
    dict(regime="edit", edit_op="resample", ridge=0.3, T=16, d=8, edit_fraction=0.25, cov="powerlaw"),
])
def test_exact_estimator_is_unbiased_for_the_simulator(kw):
    """Paired on the same designs: the mean of (simulated - exact) is 0 within 4 standard errors."""
    cfg = SimConfig(generations=3, trials=1500, seed=2, **kw)
    diff = run_trials(cfg)[0] - conditional_errors(cfg)
    mean, stderr, _, _ = mean_interval(diff)
    assert np.all(np.abs(mean) <= 4 * stderr)


def _agrees(value: float, samples: np.ndarray, tolerance: float) -> bool:
    """verify's plain equality rule: ``value`` inside the 99% Student-t interval of the per-design samples, or
    within ``tolerance`` of their mean (relative). No control variate: generation 0's mean is not known here."""
    mean, _, low, high = mean_interval(samples, 0.99)
    return bool(low <= value <= high or abs(mean - value) <= tolerance * abs(value))


def _samples(cfg: SimConfig, generation: int) -> np.ndarray:
    return conditional_errors(cfg)[:, generation]


def test_minnorm_closed_forms_against_the_exact_estimator():
    """Isotropic min-norm: exact forms, 0.5% or the 99% interval (verify's checker), and wrong ones rejected."""
    G = 4
    fixed = SimConfig(regime="replace", T=20, d=60, sigma=0.7, generations=G, trials=400, seed=0)
    fresh = SimConfig(regime="replace", design="fresh", T=20, d=60, sigma=0.7, generations=G, trials=400, seed=0)
    values = dict(sigma=0.7, T=20, d=60, n=G)
    r = results()
    for cfg, name in [(fixed, "minnorm-replace"), (fresh, "minnorm-replace-fresh")]:
        samples = _samples(cfg, G)
        assert _agrees(evaluate(r[name], **values), samples, 0.005)
        other = "minnorm-replace" if name.endswith("fresh") else "minnorm-replace-fresh"
        assert not _agrees(evaluate(r[other], **values), samples, 0.005)
    # the bias of min-norm is 1 - T/d: T/d instead is rejected
    wrong = evaluate(r["minnorm"], **values) - (1 - 20 / 60) + 20 / 60
    assert not _agrees(wrong, _samples(fixed, 0), 0.005)


@pytest.mark.parametrize("kw,wrong", [
    (dict(regime="replace", ridge=0.05, T=160, d=80), "no compounding"),
    (dict(regime="replace", design="fresh", ridge=0.05, T=120, d=80, cov="powerlaw", alpha=1.5, wstar="powerlaw"),
     "no compounding"),
    (dict(regime="accumulate", ridge=0.05, T=160, d=80), "replace"),
    (dict(regime="replace", ridge=0.0, T=60, d=160, cov="powerlaw", alpha=1.5), "fresh"),
], ids=["fixed-isotropic", "fresh-powerlaw", "accumulate-isotropic", "minnorm-powerlaw"])
def test_deterministic_equivalents_against_the_exact_estimator(kw, wrong):
    """Limit values within their stated tolerance (or the 99% interval); a wrong recursion fails the same check."""
    G = 5
    cfg = SimConfig(generations=G, trials=48, seed=1, **kw)
    samples = _samples(cfg, G)
    tol = limit_tolerance(cfg)
    theory = expected_error(cfg)[0][G]
    assert _agrees(theory, samples, tol)
    eig = covariance_eigenvalues(cfg.cov, cfg.d, cfg.alpha)
    bias, variance = one_fit(eig, ground_truth(cfg.wstar, cfg.d, cfg.delta), cfg.sigma, cfg.T, cfg.ridge)
    if wrong == "no compounding":  # the bias of one fit, the noise of n + 1
        bad = bias + (G + 1) * variance
    elif wrong == "replace":
        bad = expected_error(SimConfig(**{**cfg.to_dict(), "regime": "replace"}))[0][G]
    else:  # a fresh design's compounding projections instead of the fixed design's constant bias
        bad = expected_error(SimConfig(**{**cfg.to_dict(), "design": "fresh"}))[0][G]
    assert not _agrees(bad, samples, tol)


def test_error_depends_on_covariance_and_ground_truth_under_ridge():
    """Under ridge the spectrum and w* matter (OLS is invariant); each pair differs by > 10 standard errors."""
    base = dict(regime="replace", ridge=0.05, T=40, d=20, generations=2, trials=200, seed=0)
    runs = [mean_interval(conditional_errors(SimConfig(**base, **kw))[:, -1]) for kw in
            (dict(), dict(cov="powerlaw"), dict(cov="powerlaw", alpha=2.0), dict(cov="powerlaw", wstar="powerlaw"))]
    for (mean_a, se_a, _, _), (mean_b, se_b, _, _) in zip(runs, runs[1:]):
        assert abs(mean_a - mean_b) > 10 * np.hypot(se_a, se_b)


def test_optimal_ridge_minimises_the_limit():
    cfg = SimConfig(regime="replace", design="fresh", T=100, d=50, cov="powerlaw", alpha=1.5, wstar="powerlaw",
                    generations=3, ridge=0.1)
    best = optimal_ridge(cfg)
    for g, lam in enumerate(best):
        at = lambda r: expected_error(SimConfig(**{**cfg.to_dict(), "ridge": r}))[0][g]  # noqa: E731
        assert at(lam) <= min(at(lam * 1.5), at(lam / 1.5))


def test_json_has_quantiles_and_base(tmp_path):
    out = tmp_path / "run.json"
    assert main(["simulate", "--ridge", "0", "--T", "6", "--d", "20", "--generations", "2", "--trials", "40",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["base"] == pytest.approx(1 - 6 / 20 + 6 / 13)
    assert data["config"]["wstar"] == "flat" and data["config"]["ridge"] == 0
    assert all(lo <= med <= hi for lo, med, hi in zip(data["q05"], data["median"], data["q95"]))
    assert base_unit(SimConfig(ridge=0.1))[0] is None and base_unit(SimConfig(T=6, d=20, cov="powerlaw"))[0] is None


def test_minnorm_unit_is_the_derived_one_fit_error():
    """The simulator's min-norm unit (config, plain arithmetic) equals the sympy result "minnorm"."""
    one_fit = results()["minnorm"]
    for T, d, sigma in [(6, 20, 1.0), (30, 100, 0.5), (2, 5, 2.0)]:
        assert minnorm_base_error(T, d, sigma) == pytest.approx(evaluate(one_fit, T=T, d=d, sigma=sigma), rel=1e-12)
    assert minnorm_base_error(6, 20, 1.0) != pytest.approx(evaluate(one_fit, T=6, d=21, sigma=1.0), rel=1e-3)


@pytest.mark.parametrize("flags,needle", [
    (["--ridge", "-0.1"], "ridge=-0.1 must be >= 0"),
    (["--ridge", "nan"], "ridge=nan must be a finite number"),
    (["--ridge", "inf"], "ridge=inf must be a finite number"),
    (["--wstar", "powerlaw", "--wstar-exponent", "inf"], "wstar_exponent=inf must be a finite number"),
    (["--wstar-exponent", "1.5"], "needs wstar='powerlaw'"),
    (["--T", "10", "--d", "10"], "mean test error is infinite"),
    (["--T", "11", "--d", "10"], "mean test error is infinite"),
    (["--T", "9", "--d", "10"], "mean test error is infinite"),
    (["--T", "4", "--d", "10", "--regime", "accumulate", "--design", "fresh"], "not implemented"),
])
def test_bad_input_one_line_exit_2_nothing_written(flags, needle, tmp_path, capsys):
    out = tmp_path / "run.json"
    assert main(["simulate", "--trials", "4", "--generations", "1", *flags, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_allow_infinite_mean_runs_at_t_equal_d():
    cfg = SimConfig(T=10, d=10, generations=1, trials=4, allow_infinite_mean=True)
    assert np.all(np.isfinite(simulate(cfg).errors))
    with pytest.raises(InputError):
        SimConfig(T=10, d=10)
