"""Symbolic results: lambdified sympy against direct numeric evaluation, the recurrences against
brute force, the numeric API's contracts, and the ``bound`` command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from linreg_collapse import theory as th
from linreg_collapse.cli import main
from linreg_collapse.config import SimConfig
from linreg_collapse.errors import InputError

def rel(name: str, **values) -> float:
    """Result ``name`` in units of BASE (sigma = 1, T = 50, d = 10 unless given)."""
    values = {"sigma": 1.0, "T": 50, "d": 10, **values}
    return th.evaluate(th.results()[name], **values) / (values["sigma"] ** 2 * values["d"] / (values["T"] - values["d"] - 1))


def resample_random_direct(q: float, gamma: float, generations: int) -> np.ndarray:
    """a_n of the proportional-limit recurrence, written out by hand."""
    a, b, out = 1.0, 1.0, [1.0]
    for _ in range(generations):
        a, b = a + q * (1 - q) * (1 - gamma) * b + q, b * (1 - q) * (1 - q * gamma) + q
        out.append(a)
    return np.array(out)


def gaussian_process_direct(fractions) -> np.ndarray:
    """d/T -> 0 resample with disjoint edits by brute force: u_n = nu_n + sum_{i<=n} q_i u_{i-1} as a
    combination of nu_0..nu_N with Cov(nu_j, nu_m) = 1 - (q_{j+1} + ... + q_m)."""
    N = len(fractions)
    cum = np.concatenate([[0.0], np.cumsum(fractions)])
    cov = 1 - np.abs(cum[:, None] - cum[None, :])
    coef, out = [np.eye(N + 1)[0]], [1.0]
    for n in range(1, N + 1):
        c = np.eye(N + 1)[n] + sum(fractions[i - 1] * coef[i - 1] for i in range(1, n + 1))
        coef.append(c)
        out.append(c @ cov @ c)
    return np.array(out)


def test_base_replace_and_paper_convention():
    assert rel("ols") == pytest.approx(1.0)
    assert th.evaluate(th.results()["ols"], sigma=2.0, T=50, d=10) == pytest.approx(4 * 10 / 39)
    for n in range(5):
        assert rel("replace", n=n) == pytest.approx(n + 1)
        assert rel("replace-paper-convention", m=n + 1) == pytest.approx(rel("replace", n=n))


def test_accumulate_sum_and_supremum():
    for n in range(6):
        assert rel("accumulate", n=n) == pytest.approx(sum(1 / k**2 for k in range(1, n + 2)), rel=1e-12)
    assert float(th.results()["accumulate-sup"].relative) == pytest.approx(math.pi**2 / 6, rel=1e-15)
    np.testing.assert_allclose(th.relative_error_curve("accumulate", np.zeros(4)),
                               np.cumsum(1 / np.arange(1, 6) ** 2), rtol=1e-12)


def test_perturb_closed_forms():
    p, eta = 0.3, 0.6
    for n in range(6):
        direct = 1 + sum(p * eta ** (i - 1) for i in range(1, n + 1))
        assert rel("edit-perturb-disjoint", n=n, p=p, eta=eta) == pytest.approx(direct, rel=1e-12)
        assert rel("edit-perturb-random", n=n, p=p) == pytest.approx(1 + n * p)
    assert rel("edit-perturb-disjoint-limit", p=p, eta=eta) == pytest.approx(1 + p / (1 - eta), rel=1e-12)
    assert rel("edit-perturb-paper-bound") == pytest.approx(2.0)
    fractions = [0.2, 0.05, 0.3]
    np.testing.assert_allclose(th.relative_error_curve("edit", fractions), 1 + np.cumsum([0, *fractions]))


def test_resample_first_generation_matches_beta_moments():
    T, d, k = 50, 10, 5
    diag_sq = stats.beta(d / 2, (T - d) / 2).moment(2)  # E[H_tt^2]
    off_sq = (d / T - diag_sq) / (T - 1)  # E[H_st^2], s != t
    direct = (d + 2 * k * d / T - k * diag_sq - k * (k - 1) * off_sq) / d
    assert rel("edit-resample-first", T=T, d=d, k=k) == pytest.approx(direct, rel=1e-12)


def test_resample_random_closed_form_and_slope():
    q, gamma = 0.15, 0.3
    direct = resample_random_direct(q, gamma, 30)
    closed = [rel("edit-resample-random", n=n, q=q, gamma=gamma) for n in range(31)]
    np.testing.assert_allclose(closed, direct, rtol=1e-12)
    np.testing.assert_allclose(th.editing.resample_random_curve(np.full(30, q), gamma), direct, rtol=1e-12)
    late = resample_random_direct(q, gamma, 300)  # rho^300 ~ 1e-27: b_n at its fixed point
    assert rel("edit-resample-random-slope", q=q, gamma=gamma) == pytest.approx(late[-1] - late[-2], rel=1e-12)


def mask_averaged_resample(T: int, d: int, k: int, generations: int, designs: int, seed: int) -> np.ndarray:
    """tr(H C_n)/d per design for n = 0..generations, C_n averaged exactly over k-subset masks:
    C' = C - q(PC + CP) + r PCP + (q - r) Diag(PCP) + q I, C_0 = I (Haar H from Gaussian designs)."""
    q, r = k / T, k * (k - 1) / (T * (T - 1))
    basis = np.linalg.qr(np.random.default_rng(seed).standard_normal((designs, T, d)))[0]
    H = basis @ basis.transpose(0, 2, 1)
    P = np.eye(T) - H
    C = np.broadcast_to(np.eye(T), H.shape)
    out = []
    for _ in range(generations + 1):
        out.append(np.einsum("nst,nts->n", H, C) / d)
        PC = P @ C
        PCP = PC @ P
        C = (C - q * (PC + PC.transpose(0, 2, 1)) + r * PCP + (q - r) * np.eye(T) * np.einsum("ntt->nt", PCP)[:, None]
             + q * np.eye(T))
    return np.stack(out, axis=1)


def test_resample_random_finite_T():
    """First order in 1/T: exact at n = 1 (sympy), the proportional limit as T -> oo (sympy), and against the
    exact mask average on 4000 Haar designs at T=12, d=3, k=6 within 4 standard errors + the O(1/T^2) remainder
    0.005 (measured 0.003 at n=4); the proportional limit (1.5% high at n=4) is rejected by the same check."""
    ed = th.editing
    step = ed.RESAMPLE_RANDOM_FINITE_STEP
    start = dict(zip(ed.RESAMPLE_RANDOM_FINITE_STATE, ed.RESAMPLE_RANDOM_FINITE_START))
    first = step[0].subs(start).subs(th.core.q, th.k / th.T).subs(th.gamma, th.d / th.T)
    assert sp.simplify(first - ed.resample_first_generation(ed.leverage_second_moment())) == 0
    b = ed.RESAMPLE_RANDOM_STATE[1]
    limit = step.applyfunc(lambda row: sp.limit(row, th.T, sp.oo))
    at_limit = {ed.RESAMPLE_RANDOM_FINITE_STATE[1]: (1 - th.gamma) * b}
    for row in range(2):  # a_n, and A = (1 - gamma) b_n
        scale = 1 if row == 0 else 1 - th.gamma
        assert sp.simplify(limit[row].subs(at_limit) - scale * ed.RESAMPLE_RANDOM_STEP[row]) == 0

    T, d, k, G = 12, 3, 6, 4
    values = mask_averaged_resample(T, d, k, G, designs=4000, seed=0)
    mean, se = values.mean(0), values.std(0, ddof=1) / np.sqrt(len(values))

    def agrees(curve):
        return bool(np.all(np.abs(mean - curve) <= 4 * se + 0.005))

    assert agrees(th.relative_error_curve("edit", np.full(G, k / T), edit_op="resample", mask="random", T=T, d=d))
    assert not agrees(ed.resample_random_curve(np.full(G, k / T), d / T))  # negative control


def test_resample_second_generation_exact():
    """The reduction to nu_j gives (a) at n = 1 (sympy identity); generation 2 against the exact mask average on
    20000 Haar designs at T=8, d=2, k=4 within 4 standard errors (no tolerance: it is exact), where the limit
    moments nu_j = (1 - d/T)^j (3.6% high) are rejected by the same check; and the first-order recursion (e)
    differs from it by O(1/T^2) (a factor ~100 from T = 400 to 4000 at d/T = 1/4, k/T = 1/2)."""
    ed = th.editing
    first = ed.resample_random_reduction(1).subs(ed.low_moments()) - ed.resample_first_generation(
        ed.leverage_second_moment())
    assert all(first.subs({th.T: T, th.d: d, th.k: k}) == 0 for T, d, k in [(5, 1, 2), (16, 2, 8), (40, 17, 9)])
    values = mask_averaged_resample(8, 2, 4, 2, designs=20000, seed=1)[:, 2]
    mean, se = values.mean(), values.std(ddof=1) / np.sqrt(len(values))
    assert abs(mean - rel("edit-resample-second", T=8, d=2, k=4)) <= 4 * se
    limit_moments = ed.resample_random_reduction(2).subs({ed.NU[j]: (1 - th.d / th.T) ** j for j in range(4)})
    assert abs(mean - float(limit_moments.subs({th.T: 8, th.d: 2, th.k: 4}))) > 4 * se  # negative control

    exact = th.results()["edit-resample-second"].expr / th.BASE
    def gap(samples):
        first_order = th.relative_error_curve("edit", [0.5, 0.5], edit_op="resample", mask="random", T=samples,
                                              d=samples // 4)[2]
        return float(exact.subs({th.T: samples, th.d: samples // 4, th.k: samples // 2, th.sigma: 1})) - first_order
    assert 80 < gap(400) / gap(4000) < 120


def test_resample_disjoint_recurrence_matches_brute_force_and_bounds():
    rng = np.random.default_rng(0)
    for _ in range(5):
        fractions = rng.dirichlet(np.ones(6)) * rng.uniform(0.3, 1.0)
        curve = th.relative_error_curve("edit", fractions, edit_op="resample", mask="disjoint")
        np.testing.assert_allclose(curve, gaussian_process_direct(fractions), rtol=1e-12)
        total = fractions.sum()
        assert curve[-1] <= rel("edit-resample-disjoint-sup", Q=total)
        assert np.all(curve <= np.concatenate([[1], np.cumprod(1 + fractions) ** 2]) + 1e-12)  # Gronwall
    fine = th.relative_error_curve("edit", np.full(2000, 1 / 2000), edit_op="resample", mask="disjoint")
    assert fine[-1] == pytest.approx(2 * math.e - 1, rel=1e-3)
    assert th.relative_bounds()["edit-resample-disjoint-sup"] == pytest.approx(2 * math.e - 1, rel=1e-14)
    assert th.relative_bounds()["edit-resample-gronwall"] == pytest.approx(math.e**2, rel=1e-14)


def resample_disjoint_one_design(fractions, T: int, d: int, seed: int) -> np.ndarray:
    """E[E_test(w_n) | X, M]/E[E_test(w_0) | X, M] on one Gaussian design by the dense covariance recursion
    C_n = (I - M_n P) C_{n-1} (I - P M_n) + M_n (sigma = 1; masks consecutive blocks: rows are exchangeable)."""
    X = np.random.default_rng(seed).standard_normal((T, d))
    A = np.linalg.solve(X.T @ X, X.T)
    P = np.eye(T) - X @ A
    C, start, out = np.eye(T), 0, []
    for fraction in [0.0, *fractions]:
        mask = np.zeros(T)
        mask[start:start + round(fraction * T)] = 1.0
        start += round(fraction * T)
        B = np.eye(T) - mask[:, None] * P
        C = B @ C @ B.T + np.diag(mask)
        out.append(np.trace(A @ C @ A.T))
    return np.array(out) / out[0]


def test_resample_disjoint_proportional_limit():
    """The cavity process: generation 1 is the limit of the exact edit-resample-first; d/T -> 0 gives
    RESAMPLE_DISJOINT_STEP; at d/T = 0.3 it matches one T=500 design within 1% (generation 0 divided out; the
    single-design spread is ~0.3%, the finite-T bias ~0.2%), and the same check rejects the d/T -> 0 recursion
    (7-14% off) and the cavity without its memory term (negative controls)."""
    first = th.editing.resample_first_generation(th.editing.leverage_second_moment())
    first_limit = sp.limit(first.subs({th.d: th.gamma * th.T, th.k: th.q * th.T}), th.T, sp.oo)
    rng = np.random.default_rng(0)
    for _ in range(3):
        fractions, gamma = rng.dirichlet(np.ones(5)) * rng.uniform(0.3, 1.0), rng.uniform(0.05, 0.8)
        cavity = th.editing.resample_disjoint_cavity(fractions, gamma)
        assert cavity[1] == pytest.approx(float(first_limit.subs({th.gamma: gamma, th.q: fractions[0]})), rel=1e-12)
        np.testing.assert_allclose(th.editing.resample_disjoint_cavity(fractions, 1e-6),
                                   th.relative_error_curve("edit", fractions, edit_op="resample", mask="disjoint"),
                                   rtol=1e-4)
    fractions, T, d = np.array([0.3, 0.2, 0.15, 0.1]), 500, 150
    limit = th.relative_error_curve("edit", fractions, edit_op="resample", mask="disjoint", T=T, d=d)
    design = resample_disjoint_one_design(fractions, T, d, seed=0)
    np.testing.assert_allclose(design, limit, rtol=0.01)
    gamma_zero = th.relative_error_curve("edit", fractions, edit_op="resample", mask="disjoint")
    cavity = th.editing.RESAMPLE_DISJOINT_CAVITY
    no_memory = sp.ImmutableMatrix([cavity[0].subs(sp.Symbol("mem"), 0), cavity[1]])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(th.editing, "RESAMPLE_DISJOINT_CAVITY", no_memory)
        naive = th.editing.resample_disjoint_cavity(fractions, d / T)
    for wrong in (gamma_zero, naive):
        with pytest.raises(AssertionError):
            np.testing.assert_allclose(design, wrong, rtol=0.01)


def test_relative_error_curve_rejects_bad_input():
    with pytest.raises(InputError, match="fractions"):
        th.relative_error_curve("edit", None)
    with pytest.raises(InputError, match="lie in"):
        th.relative_error_curve("edit", [1.5])
    with pytest.raises(InputError, match="sum to at most 1"):
        th.relative_error_curve("edit", [0.6, 0.5], edit_op="resample", mask="disjoint", T=50, d=10)
    with pytest.raises(InputError, match="T > d"):
        th.relative_error_curve("edit", [0.1], edit_op="resample", T=10, d=10)
    with pytest.raises(InputError, match="regime"):
        th.relative_error_curve("accumulate-subsample", [0.1])


def test_expected_relative_error_for_configs():
    base = dict(T=50, d=10, generations=3, trials=2)
    assert th.expected_relative_error(SimConfig(regime="replace", design="fresh", **base)).tolist() == [1, 2, 3, 4]
    for kw in (dict(regime="accumulate-subsample"), dict(regime="edit", mask="threshold")):
        assert th.expected_relative_error(SimConfig(**kw, **base)) is None
    resample_disjoint = SimConfig(regime="edit", edit_op="resample", mask="disjoint", **base)
    assert th.theory_kind(resample_disjoint) == "limit"
    np.testing.assert_allclose(th.expected_relative_error(resample_disjoint), th.editing.resample_disjoint_cavity(
        th.realised_fractions(resample_disjoint), 10 / 50), rtol=1e-12)
    disjoint = SimConfig(regime="edit", edit_op="perturb", mask="disjoint", edit_fraction=0.5, decay=0.9, **base)
    np.testing.assert_allclose(th.realised_fractions(disjoint), [0.5, 0.44, 0.06])  # round(22.5) = 22, then the rest
    np.testing.assert_allclose(th.expected_relative_error(disjoint), [1, 1.5, 1.94, 2.0])
    assert th.theory_kind(SimConfig(regime="edit", edit_op="resample", **base)) == "limit"
    fresh = th.expected_relative_error(SimConfig(regime="accumulate", design="fresh", **base))
    np.testing.assert_allclose(fresh, [rel("accumulate-fresh", n=g) for g in range(4)], rtol=1e-12)


def test_bound_command_prints_expression_latex_and_value(capsys):
    assert main(["bound", "--regime", "replace", "--T", "50", "--d", "10", "--generation", "3"]) == 0
    out = capsys.readouterr().out
    assert r"LaTeX: \frac{d \sigma^{2} \left(n + 1\right)}{T - d - 1}" in out
    assert "value: 1.02564" in out  # (n + 1) d/(T-d-1) = 4 * 10/39 at n = 3
    assert "paper" in out


@pytest.mark.parametrize("argv, message", [
    (["--regime", "edit", "--T", "10", "--d", "10"], "mean test error is infinite"),
    (["--regime", "edit", "--T", "50", "--d", "10", "--edit-fraction", "2"], "edit_fraction"),
    (["--regime", "edit", "--T", "50", "--d", "10", "--generation", "-1"], "--generation"),
    (["--regime", "replace", "--decay", "0.5"], "--decay has no effect here: it applies only with --regime edit"),
    (["--regime", "edit", "--mask", "random", "--decay", "0.5"], "--decay has no effect here"),
])
def test_bound_command_bad_input_is_one_line(argv, message, capsys):
    assert main(["bound", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_accumulate_fresh_matches_the_exchangeable_sum():
    T, d = 20, 4
    for n in range(6):
        direct = (T - d - 1) * sum(1 / (k * (k * T - d - 1)) for k in range(1, n + 2))
        assert rel("accumulate-fresh", T=T, d=d, n=n) == pytest.approx(direct, rel=1e-12)
    terms = 200000  # the remainder beyond is (T-d-1)/(T terms) to first order
    tail = (T - d - 1) * (sum(1 / (k * (k * T - d - 1)) for k in range(1, terms + 1)) + 1 / (T * terms))
    assert rel("accumulate-fresh-sup", T=T, d=d) == pytest.approx(tail, rel=1e-9)
    assert rel("accumulate-fresh-sup", T=T, d=d) < math.pi**2 / 6  # fresh designs help


def subsample_limit_direct(generations: int) -> np.ndarray:
    """d/T -> 0 accumulate-subsample by brute force: u_n = nu_n + (1/(n+1)) sum_{m<n} u_m as combinations of
    nu_0..nu_N with Cov(nu_n, nu_m) = 1/(max(n, m) + 1) (n != m), 1 on the diagonal."""
    N = generations
    idx = np.arange(N + 1)
    cov = 1 / (np.maximum(idx[:, None], idx[None, :]) + 1.0)
    np.fill_diagonal(cov, 1.0)
    coef = []
    for g in range(N + 1):
        c = np.eye(N + 1)[g] + (sum(coef) / (g + 1) if coef else 0)
        coef.append(c)
    return np.array([c @ cov @ c for c in coef])


def test_accumulate_subsample_limit_and_plateau():
    direct = subsample_limit_direct(12)
    closed = [rel("accumulate-subsample", n=n) for n in range(13)]
    np.testing.assert_allclose(closed, direct, rtol=1e-12)
    assert rel("accumulate-subsample-plateau") == pytest.approx(math.pi**2 / 2 - 2, rel=1e-14)
    assert subsample_limit_direct(400)[-1] == pytest.approx(math.pi**2 / 2 - 2, rel=1e-2)


def test_disjoint_supremum_certificate():
    """The value function's change over one step equals its claimed form, which is <= 0 on every state a
    schedule with sum <= 1 reaches (checked on random schedules); so no schedule exceeds 2e^Q - 1."""
    import sympy as sp
    change, claimed = th.editing.resample_disjoint_certificate()
    assert sp.simplify(sp.expand(change - claimed)) == 0
    x, y, l = th.RESAMPLE_DISJOINT_STATE
    step = th.editing.RESAMPLE_DISJOINT_STEP
    f = sp.lambdify((x, y, l, th.q, th.editing.TAU), claimed)
    advance = sp.lambdify((x, y, l, th.q), list(step))
    rng = np.random.default_rng(3)
    for _ in range(50):
        fractions = rng.dirichlet(np.ones(rng.integers(1, 12))) * rng.uniform(0.2, 1.0)
        total = rng.uniform(fractions.sum(), 1.0)
        state, spent = (0.0, 0.0, 1.0), 0.0
        for fraction in fractions:
            assert f(*state, fraction, total - spent) <= 1e-12
            state, spent = tuple(advance(*state, fraction)), spent + fraction
        assert 1 + 2 * state[0] + state[1] <= 2 * math.exp(total) - 1 + 1e-12


def test_error_law_quantiles_and_tail_bound():
    T, d, n = 20, 4, 2
    for level in (0.1, 0.5, 0.9):
        scaled_f = (d / (T - d + 1)) * stats.f.ppf(level, d, T - d + 1)  # E_test/sigma^2 s_n ~ (d/nu) F(d, nu)
        assert rel("replace-quantile", T=T, d=d, n=n, level=level) * d / (T - d - 1) == pytest.approx(
            3 * scaled_f, rel=1e-10)
        assert rel("accumulate-quantile", T=T, d=d, n=n, level=level) * d / (T - d - 1) == pytest.approx(
            (1 + 1 / 4 + 1 / 9) * scaled_f, rel=1e-10)
    for level in (0.9, 0.99):
        assert rel("replace-tail-bound", T=200, d=4, n=n, level=level) >= rel("replace-quantile", T=200, d=4, n=n,
                                                                              level=level)
    assert rel("replace-tail-bound", T=8, d=4, n=n, level=0.99) == math.inf


def test_bound_command_lists_the_new_results(capsys):
    assert main(["bound", "--regime", "accumulate", "--T", "20", "--d", "4", "--generation", "2"]) == 0
    out = capsys.readouterr().out
    for name in ("accumulate-fresh", "accumulate-fresh-sup", "accumulate-quantile", "accumulate-tail-bound"):
        assert f"== {name} [" in out
    assert main(["bound", "--regime", "accumulate-subsample", "--T", "400", "--d", "4"]) == 0
    assert "plateau" in capsys.readouterr().out
    assert main(["bound", "--regime", "edit", "--T", "50", "--d", "10", "--level", "1.5"]) == 2
    assert "--level" in capsys.readouterr().err

def test_bound_command_defaults_names_the_schedule_and_does_not_wrap(capsys):
    assert main(["bound", "--regime", "edit", "--mask", "threshold"]) == 0  # --T, --d default as in simulate
    out = capsys.readouterr().out
    assert "T=100 d=10" in out and "no closed form for regime 'edit' with --mask 'threshold'" in out
    assert main(["bound", "--regime", "edit", "--edit-op", "resample", "--mask", "random"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith(">") or line.endswith(">") for line in lines)  # sympy's line wrapping
    assert max(map(len, lines)) > 80  # negative control: the formula is long enough to have been wrapped
