"""The exact conditional estimator: equal to a brute-force NumPy evaluation of the same conditional
expectation (the linear map from noise to w_n - w*, built from the regime's definition), and unbiased
for the simulator's Monte Carlo error on the same designs (paired)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from linreg_collapse.config import SimConfig
from linreg_collapse.design import covariance_eigenvalues, sample_design
from linreg_collapse.errors import InputError
from linreg_collapse.exact import conditional_errors
from linreg_collapse.regimes import generation_keys
from linreg_collapse.simulate import run_trials, trial_keys


def designs(cfg: SimConfig, trial: int) -> list[np.ndarray]:
    """X_0..X_G of simulator trial ``trial`` (fresh keys; a fixed design uses X_0 throughout)."""
    eig = covariance_eigenvalues(cfg.cov, cfg.d, cfg.alpha)
    with jax.enable_x64(True):
        key = trial_keys(cfg.seed, trial, 1)[0]
        return [np.asarray(sample_design(generation_keys(key, n)[0], np.sqrt(eig), cfg.T))
                for n in range(cfg.generations + 1)]


def brute_force(cfg: SimConfig, trial: int) -> np.ndarray:
    """sigma^2 ||Sigma^{1/2} L_n||_F^2 with w_n - w* = L_n xi, xi = (E_0, ..., E_G) stacked, L_n built
    from the regime's definition (OLS on the generation's data, all data for accumulate)."""
    T, d, G = cfg.T, cfg.d, cfg.generations
    eig = covariance_eigenvalues(cfg.cov, cfg.d, cfg.alpha)
    Xs = designs(cfg, trial)
    if cfg.design == "fixed":
        Xs = [Xs[0]] * (G + 1)

    def noise(n):  # the map xi -> E_n
        out = np.zeros((T, T * (G + 1)))
        out[:, n * T:(n + 1) * T] = np.eye(T)
        return out

    def err(u):
        return cfg.sigma**2 * np.sum(eig[:, None] * u**2)

    if cfg.regime == "edit":
        X = Xs[0]
        A = np.linalg.solve(X.T @ X, X.T)
        P = np.eye(T) - X @ A
        R = noise(0)  # residual map R_n = Y_n - X w*
        out = [err(A @ R)]
        for n in range(1, G + 1):
            M = np.diag(cfg.masks[n - 1])
            proposal = (X @ A @ R if cfg.edit_op == "resample" else R) + noise(n)
            R = M @ proposal + (np.eye(T) - M) @ R
            out.append(err(A @ R))
        assert np.allclose(P @ X, 0)
        return np.array(out)
    residuals, out = [noise(0)], []  # label residual maps Y_k - X_k w*
    for n in range(G + 1):
        used = range(n + 1) if cfg.regime == "accumulate" else [n]
        gram = sum(Xs[m].T @ Xs[m] for m in used)
        u = np.linalg.solve(gram, sum(Xs[m].T @ residuals[m] for m in used))
        out.append(err(u))
        if n < G:
            residuals.append(Xs[n + 1] @ u + noise(n + 1))
    return np.array(out)


SMALL = dict(T=12, d=3, generations=3, trials=2, seed=3, cov="powerlaw", sigma=0.7)


@pytest.mark.parametrize("kw", [
    dict(regime="replace"), dict(regime="replace", design="fresh"),
    dict(regime="accumulate"), dict(regime="accumulate", design="fresh"),
])
def test_retraining_regimes_equal_brute_force(kw):
    cfg = SimConfig(**SMALL, **kw)
    exact = conditional_errors(cfg)
    for trial in range(cfg.trials):
        np.testing.assert_allclose(exact[trial], brute_force(cfg, trial), rtol=1e-9)


@pytest.mark.parametrize("edit_op", ["resample", "perturb"])
def test_edit_equals_brute_force_with_soft_overlapping_masks(edit_op):
    masks = np.random.default_rng(1).uniform(0, 1, (SMALL["generations"], SMALL["T"]))
    cfg = SimConfig(**SMALL, regime="edit", edit_op=edit_op, mask="file", masks=masks)
    exact = conditional_errors(cfg)
    for trial in range(cfg.trials):
        np.testing.assert_allclose(exact[trial], brute_force(cfg, trial), rtol=1e-9)


@pytest.mark.parametrize("kw", [
    dict(regime="replace", design="fresh"),
    dict(regime="edit", edit_op="resample", mask="disjoint", edit_fraction=0.25, decay=0.5),
])
def test_unbiased_for_the_simulator_on_the_same_designs(kw):
    """Trial i of both sees the same designs and masks, so the simulator's error minus the conditional
    expectation has mean exactly 0; checked at 99.9% (|mean| <= 3.3 standard errors) per generation."""
    cfg = SimConfig(**{**SMALL, "trials": 400, "seed": 5, "sampler": "labels"}, **kw)
    mc, _ = run_trials(cfg)
    diff = mc - conditional_errors(cfg)
    se = diff.std(axis=0, ddof=1) / np.sqrt(cfg.trials)
    assert np.all(np.abs(diff.mean(axis=0)) <= 3.3 * se + 1e-12), (diff.mean(axis=0), se)


def test_noise_dependent_masks_are_refused():
    with pytest.raises(InputError, match="threshold"):
        conditional_errors(SimConfig(regime="edit", mask="threshold", T=12, d=3, trials=2))
    with pytest.raises(InputError, match="accumulate-subsample"):
        conditional_errors(SimConfig(regime="accumulate-subsample", T=12, d=3, trials=2))
