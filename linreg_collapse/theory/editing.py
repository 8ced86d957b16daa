"""Token-level editing on a fixed design: ``perturb`` (exact) and ``resample`` (generations 1 and 2 exact with
random masks, first order in 1/T and limits beyond), as recurrences in units of BASE that sympy solves, sums
and takes to the continuum."""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np
import sympy as sp
from sympy.stats import Beta, E as expectation

from ..config import SimConfig, base_error
from ..errors import require
from .core import (BASE, GAUSSIAN, Q, Result, T, d, eta, gamma, generic_branch, i, iterate_recurrence, k,
                   limit_geometric, n, p, p_i, q)

PERTURB_STEP = sp.ImmutableMatrix([sp.Symbol("r") + q])
"""perturb: r_n = r_{n-1} + q_n, q_n = mean(diag M_n^2) (covariance of R_n gains sigma^2 M_n^2)."""
PERTURB_STATE = (sp.Symbol("r"),)

_a, _b = sp.symbols("a b")
RESAMPLE_RANDOM_STEP = sp.ImmutableMatrix([_a + q * (1 - q) * (1 - gamma) * _b + q,
                                  _b * (1 - q) * (1 - q * gamma) + q])
"""resample, masks drawn afresh each generation, proportional limit: Cov(R_n)/sigma^2 -> a_n H + b_n (I - H),
E_test/BASE -> a_n, from E[M K M] = q^2 K + q(1-q) Diag(K) and Diag(I - H) -> (1 - gamma) I."""
RESAMPLE_RANDOM_STATE = (_a, _b)

_x, _y, _l = sp.symbols("x y l")
RESAMPLE_DISJOINT_STEP = sp.ImmutableMatrix([
    _x + q * (1 + _x) - q * (_l - 1) - q**2 * _l,
    _y + 2 * q * (_x + _y) + q**2 * (1 + 2 * _x + _y),
    (1 + q) * _l,
])
"""resample, each position edited at most once, d/T -> 0: u_n = nu_n + z_n, z_n = z_{n-1} + q_n u_{n-1},
nu_n the noise fit, Cov(nu_j, nu_m) = 1 - (q_{j+1} + ... + q_m); state x = E[nu z], y = E[z^2],
l = prod (1 + q_i) (total weight of u on the nu's); E_test/BASE -> 1 + 2x + y."""
RESAMPLE_DISJOINT_STATE = (_x, _y, _l)
RESAMPLE_DISJOINT_ERROR = 1 + 2 * _x + _y

_R, _xi, _mem = sp.symbols("R xi mem")


def _resample_disjoint_cavity() -> sp.ImmutableMatrix:
    """The one-position (cavity) process of resample with disjoint masks, proportional limit d/T -> gamma.

    Row 0, the fitted value F(m) = x_t^T u_m of a position with residual R(m), cavity field xi(m) = x_t^T u_m^(-t)
    (the fits without t) and memory mem(m) = sum_{k<m} lambda(m, k) (R(k) - F(k)): sympy solves the cavity
    equation F = xi + theta (R - F) + theta mem, theta = lim E tr (X^T X)^{-1} = lim d/(T - d - 1).
    Row 1, the field's law: Cov(xi(m), xi(m')) = u_m . u_m' = (row 1) mean_t F_t(m) F_t(m'), row 1 =
    lim T/(T - d - 1) (Lemma 2). docs/theory.md, resample (d)."""
    fitted, theta = sp.symbols("F theta")
    fit = sp.solve(sp.Eq(fitted, _xi + theta * (_R - fitted + _mem)), fitted)[0]
    theta_limit = sp.limit(gamma * T / (T - gamma * T - 1), T, sp.oo)
    field = sp.limit(T / (T - gamma * T - 1), T, sp.oo)
    return sp.ImmutableMatrix([sp.expand(sp.simplify(fit.subs(theta, theta_limit))), field])


RESAMPLE_DISJOINT_CAVITY = _resample_disjoint_cavity()
"""resample, each position edited at most once, d/T -> gamma: [gamma R + (1 - gamma) xi + gamma mem, 1/(1 - gamma)]
(see _resample_disjoint_cavity; mutants replace it)."""


def _resample_random_closed_form() -> sp.Expr:
    """a_n of RESAMPLE_RANDOM_STEP for constant q from a_0 = b_0 = 1: b_n by sympy's rsolve, then
    a_n = 1 + sum_{m<n} (a_{m+1} - a_m) by summation (generic branch rho = (1-q)(1-q gamma) != 1; summed
    term by term with rho as a symbol, 40 times quicker than the whole sum with rho's value), collected as
    c_0 + n * slope + c_rho * rho^n."""
    f = sp.Function("b")
    b_n = generic_branch(sp.rsolve(f(n + 1) - RESAMPLE_RANDOM_STEP[1].subs(_b, f(n)), f(n), {f(0): 1}))
    m = sp.Symbol("m", integer=True, nonnegative=True)
    rho = sp.Dummy("rho", positive=True)
    ratio = sp.expand((1 - q) * (1 - q * gamma))
    increment = (RESAMPLE_RANDOM_STEP[0] - _a).subs(_b, b_n.subs(sp.factor(ratio), rho).subs(n, m))
    a_n = 1 + sp.Add(*(generic_branch(sp.summation(term, (m, 0, n - 1))) for term in sp.expand(increment).args))
    terms = sp.collect(sp.expand(a_n), [rho**n, n], evaluate=False)
    return sp.Add(*(sp.factor(coeff.subs(rho, ratio)) * term for term, coeff in terms.items())).subs(
        rho, sp.factor(ratio))


def results() -> list[Result]:
    """perturb with any, random and disjoint masks; resample at generation 1, with random masks (limit) and
    each position edited at most once (continuum supremum, Gronwall bound)."""
    out: list[Result] = []
    add = out.append
    perturb_any = (1 + sp.Sum(p_i[i], (i, 1, n))) * BASE
    add(Result("edit-perturb", "edit", "exact", perturb_any,
               "perturb, fixed design, masks M_i independent of noise and design (p_i = mean of diag M_i^2; "
               f"= the edit fraction for 0/1 masks), any fractions; {GAUSSIAN}", "perturb", ("random", "disjoint", "file")))
    add(Result("edit-perturb-random", "edit", "exact", perturb_any.xreplace({p_i[i]: p}).doit(),
               "perturb with edit fraction p every generation (random masks); assumptions of edit-perturb",
               "perturb", ("random",)))
    add(Result("edit-perturb-paper-bound", "edit", "bound", perturb_any.xreplace({sp.Sum(p_i[i], (i, 1, n)): 1}),
               "perturb with sum_i p_i <= 1 (each position edited at most once); the paper's 2 BASE",
               "perturb", ("disjoint", "file")))
    disjoint = generic_branch(perturb_any.xreplace({p_i[i]: p * eta ** (i - 1)}).doit())
    add(Result("edit-perturb-disjoint", "edit", "exact", sp.simplify(disjoint),
               "perturb, disjoint schedule with fractions p eta^(i-1) (T p eta^(i-1) integer, sum <= 1), "
               "eta != 1; assumptions of edit-perturb", "perturb", ("disjoint",)))
    add(Result("edit-perturb-disjoint-limit", "edit", "bound", limit_geometric(disjoint, eta),
               "n -> infinity of edit-perturb-disjoint, 0 < eta < 1, p <= 1 - eta", "perturb", ("disjoint",)))

    add(Result("edit-resample-first", "edit", "exact", resample_first_generation(leverage_second_moment()) * BASE,
               f"resample, generation 1 only, a 0/1 mask of k positions chosen uniformly (q = k/T), independent "
               f"of noise and design; {GAUSSIAN}", "resample", ("random", "disjoint")))
    add(Result("edit-resample-second", "edit", "exact", resample_second_generation() * BASE,
               "resample, generations 1 and 2, k positions drawn uniformly afresh each generation (q = k/T), "
               f"independent of noise and design; {GAUSSIAN}: the exact reduction to nu_j = E 1^T (P o P)^j 1/T "
               "with nu_3 from the two-row law of H (TWO_ROW_LAWS)", "resample", ("random",)))
    add(Result("edit-resample-random", "edit", "limit", _resample_random_closed_form() * BASE,
               "resample, k = qT positions drawn uniformly afresh every generation, independent of noise and "
               "design; limit T, d -> infinity with d/T -> gamma (finite-T error O(1/T))", "resample", ("random",)))
    b_fixed = sp.solve(sp.Symbol("b") - RESAMPLE_RANDOM_STEP[1].subs(_b, sp.Symbol("b")), sp.Symbol("b"))[0]
    slope = sp.factor(RESAMPLE_RANDOM_STEP[0].subs({_a: 0, _b: b_fixed}))
    add(Result("edit-resample-random-slope", "edit", "limit", slope * BASE,
               "growth per generation of edit-resample-random once b_n reaches its fixed point",
               "resample", ("random",)))
    add(Result("edit-resample-random-finite", "edit", "limit", sp.Function("a")(n) * BASE,
               "resample, k = qT positions drawn uniformly afresh every generation, independent of noise and "
               f"design; {GAUSSIAN}; finite T to first order in 1/T at fixed d/T (remainder O(1/T^2), exact at "
               "n = 1): a(n) of RESAMPLE_RANDOM_FINITE_STEP (resample_random_curve), from the exact reduction to "
               "the Hadamard square P o P and the leverage variance 2 gamma (1 - gamma)/(T + 2)",
               "resample", ("random",), value=functools.partial(_resample_value, "random")))
    add(Result("edit-resample-disjoint", "edit", "limit", sp.Function("F2")(n) / gamma * BASE,
               "resample, each position edited at most once (masks disjoint, independent of noise and design), "
               "fractions q_i = p eta^(i-1) as realised at T; limit T, d -> infinity with d/T -> gamma (finite-T "
               "error O(1/T)): F2(n) = mean_t F_t(n)^2 of the cavity process RESAMPLE_DISJOINT_CAVITY "
               "(resample_disjoint_cavity; its memory kernel needs every free cumulant of H, so no fixed finite state)",
               "resample", ("disjoint",), value=functools.partial(_resample_value, "disjoint")))
    continuum = _resample_disjoint_continuum()
    add(Result("edit-resample-disjoint-sup", "edit", "bound", continuum * BASE,
               "resample, each position edited at most once, total edited fraction Q = sum_i p_i <= 1, limit "
               "d/T -> 0: the supremum over schedules, proven (value function V decreases along every step, "
               "resample_disjoint_certificate) and reached by the continuum of infinitesimal edits; at Q = 1 "
               "this replaces the paper's 2", "resample", ("disjoint", "file")))
    add(Result("edit-resample-gronwall", "edit", "bound", sp.exp(2 * Q) * BASE,
               "resample, each position edited at most once, d/T -> 0: ||u_n|| <= 1 + sum_i q_i ||u_{i-1}|| "
               "(Minkowski) gives E_test/BASE <= prod (1 + q_i)^2 <= e^(2Q) (Gronwall); weaker than "
               "edit-resample-disjoint-sup, kept as the elementary bound",
               "resample", ("disjoint", "file")))
    return out


def _resample_value(mask: str, values: dict) -> float:
    """E_test(w_n) of the finite-T resample result for ``mask`` (edit-resample-random-finite, edit-resample-disjoint)
    at ``values`` (sigma, T, d, n, p; eta for disjoint masks), with the edit fractions the simulator realises."""
    T_, d_, n_ = int(values["T"]), int(values["d"]), int(values["n"])
    schedule = {"decay": values["eta"]} if mask == "disjoint" else {}
    cfg = SimConfig(regime="edit", edit_op="resample", mask=mask, T=T_, d=d_, edit_fraction=values["p"],
                    generations=max(n_, 1), **schedule)
    curve = relative_edit_curve(realised_fractions(cfg)[:n_], "resample", T_, d_, mask)
    return base_error(T_, d_, values["sigma"]) * float(curve[-1])


def leverage_second_moment() -> sp.Expr:
    """E[H_tt^2] = d(d+2)/(T(T+2)) for a uniformly random rank-d projection: H_tt ~ Beta(d/2, (T-d)/2)."""
    return sp.factor(sp.gammasimp(expectation(Beta("h", d / 2, (T - d) / 2) ** 2)))


def resample_first_generation(diag_sq: sp.Expr) -> sp.Expr:
    """E_test(w_1)/BASE for resample with a k-subset mask, given E[H_tt^2] = ``diag_sq``:
    E tr(H C_1)/d with C_1/sigma^2 = I - MP - PM + MPM + M (P = I - H), E tr(HM) = k d/T and
    E tr(HMHM) = k E[H_tt^2] + k(k-1) E[H_st^2], sum_s H_st^2 = H_tt."""
    off_sq = sp.factor((d / T - diag_sq) / (T - 1))
    trace_hmhm = k * diag_sq + k * (k - 1) * off_sq
    return sp.factor((d + 2 * k * d / T - trace_hmhm) / d)


_hs, _rho, _w = sp.symbols("h_s rho w")
TWO_ROW_LAWS = {_hs: (d / 2, (T - d) / 2), _rho: (d / 2, (T - 1 - d) / 2), _w: (sp.Rational(1, 2), (d - 1) / 2)}
"""Two rows s != t of a uniform rank-d projection H: h_s = H_ss ~ Beta(d/2, (T-d)/2); given row s, row t of the
Stiefel factor is (I - q_s q_s^T)^(1/2) v with v a row of a (T-1) x d Stiefel matrix, so with independent
rho = |v|^2 ~ Beta(d/2, (T-1-d)/2) and w = v_1^2/|v|^2 ~ Beta(1/2, (d-1)/2):
H_st^2 = h_s (1 - h_s) rho w and H_tt = rho (1 - h_s w)."""
PAIR_SQ = _hs * (1 - _hs) * _rho * _w
OTHER_LEVERAGE = _rho * (1 - _hs * _w)


def two_row_moment(poly: sp.Expr) -> sp.Expr:
    """E[poly(h_s, rho, w)] under TWO_ROW_LAWS (independent Betas; moments by sympy.stats)."""
    terms = sp.Poly(sp.expand(poly), _hs, _rho, _w).terms()
    return sp.factor(sum(c * sp.Mul(*(_beta_moment(*TWO_ROW_LAWS[s], j) for s, j in zip((_hs, _rho, _w), powers)))
                         for powers, c in terms))


@functools.lru_cache(maxsize=None)
def _beta_moment(a: sp.Expr, b: sp.Expr, power: int) -> sp.Expr:
    return sp.gammasimp(expectation(Beta("x", a, b) ** power))


NU = sp.IndexedBase("nu")
"""nu[j] = E 1^T S^j 1 / T, S = P o P (Hadamard square of P = I - H)."""


def resample_random_reduction(generation: int) -> sp.Expr:
    """E_test(w_n)/BASE, exact, for resample with random k-subset masks, in the moments nu[0..n+1]:
    1 + n q + (q - r)/d sum_{m<n} E h^T x_m with x_{m+1} = (1 - 2q + r) x_m + (q - r) S x_m + q S 1, x_0 = S 1,
    r = q(k-1)/(T-1), h = 1 - S 1 (docs/theory.md, resample (e)); x_m is a polynomial in S applied to 1."""
    S = sp.Symbol("S")
    q_, r = k / T, k * (k - 1) / (T * (T - 1))
    x, total = S, sp.Integer(0)
    for _ in range(generation):
        poly = sp.Poly(sp.expand(x), S)
        total += sum(c * T * (NU[j] - NU[j + 1]) for (j,), c in poly.terms())  # h^T S^j 1 = T (nu_j - nu_j+1)
        x = (1 - 2 * q_ + r) * x + (q_ - r) * S * x + q_ * S
    return 1 + generation * q_ + (q_ - r) / d * total


@functools.lru_cache(maxsize=None)
def low_moments() -> dict:
    """nu[0..3] exactly: 1, 1 - d/T, E(1 - H_tt)^2, E(1 - H_tt)^4 + (T-1) E[(1-H_ss)(1-H_tt) H_st^2]
    (1^T S^3 1 = sum_{s,t} P_ss P_tt P_st^2)."""
    pair = two_row_moment((1 - _hs) * (1 - OTHER_LEVERAGE) * PAIR_SQ)
    return {NU[0]: 1, NU[1]: 1 - d / T, NU[2]: two_row_moment((1 - _hs) ** 2),
            NU[3]: two_row_moment((1 - _hs) ** 4) + (T - 1) * pair}


def resample_second_generation() -> sp.Expr:
    """E_test(w_2)/BASE, exact at every T > d + 1: resample_random_reduction(2) at low_moments()."""
    return sp.factor(resample_random_reduction(2).subs(low_moments()))


_lev_mean, _lev_spread = sp.symbols("A B")


def _resample_random_finite() -> tuple[sp.ImmutableMatrix, sp.ImmutableMatrix]:
    """(step, start) of resample with random masks at finite T, to first order in 1/T (docs/theory.md, resample (e)).

    Exact part: averaging over the k = qT-subset mask of each generation gives E_test(w_n)/BASE =
    1 + sum_{m<n} [q + (q - r) h^T diag(D_m)/d] with r = q(k-1)/(T-1), h = diag H, D = P C P and
    diag(D') = (1 - 2q + r) diag(D) + (q - r) S diag(D) + q S 1, S = P o P (Hadamard square).
    First order: on the Krylov pair (1, delta), delta = h - gamma 1, S 1 = (1-gamma) 1 - delta exactly and
    S delta = -eps 1 + (1-gamma)^2 delta + (bulk), eps = |delta|^2/T -> Var H_tt (Beta(d/2, (T-d)/2)); the
    bulk of S concentrates at (1-gamma)^2, so dropping it changes E_test by O(1/T^2). State (a, A, B):
    a = E_test/BASE, diag(D) = A 1 + B delta."""
    r = q * (q * T - 1) / (T - 1)
    keep, mix = 1 - 2 * q + r, q - r
    spread = sp.factor((leverage_second_moment() - (d / T) ** 2).subs(d, gamma * T))
    hadamard = sp.Matrix([[1 - gamma, -spread], [-1, (1 - gamma) ** 2]])  # columns: S 1, S delta in (1, delta)
    diag = sp.Matrix([_lev_mean, _lev_spread])
    new_diag = keep * diag + mix * hadamard * diag + q * hadamard[:, 0]
    gain = q + mix * (gamma * _lev_mean + spread * _lev_spread) / gamma  # h^T diag(D)/d, |delta|^2 = eps T
    step = sp.ImmutableMatrix([_a + gain, *(sp.expand(v) for v in new_diag)])
    return step, sp.ImmutableMatrix([1, *hadamard[:, 0]])


RESAMPLE_RANDOM_FINITE_STEP, RESAMPLE_RANDOM_FINITE_START = _resample_random_finite()
"""resample, random masks, finite T to first order in 1/T (error O(1/T^2)); state RESAMPLE_RANDOM_FINITE_STATE."""
RESAMPLE_RANDOM_FINITE_STATE = (_a, _lev_mean, _lev_spread)


def resample_disjoint_value() -> sp.Expr:
    """V(x, y, l, tau): the error/BASE at the end of a continuum of infinitesimal edits of total fraction
    tau started from state (x, y, l) of RESAMPLE_DISJOINT_STEP. (step - state)/q as q -> 0 gives a linear ODE,
    solved by sympy's dsolve: V = e^(2 tau) (2 + 2x + y - 2l) + 2 l e^tau - 1."""
    t = sp.Symbol("t", nonnegative=True)
    fx, fy, fl = (sp.Function(name)(t) for name in ("x", "y", "l"))
    rates = [sp.limit((RESAMPLE_DISJOINT_STEP[m] - s) / q, q, 0) for m, s in enumerate(RESAMPLE_DISJOINT_STATE)]
    subs = dict(zip(RESAMPLE_DISJOINT_STATE, (fx, fy, fl)))
    odes = [sp.Eq(f.diff(t), rate.subs(subs)) for f, rate in zip((fx, fy, fl), rates)]
    start = {f.subs(t, 0): s for f, s in zip((fx, fy, fl), RESAMPLE_DISJOINT_STATE)}
    sol = sp.dsolve(odes, [fx, fy, fl], ics=start)
    values = {s.lhs: s.rhs for s in sol}
    return sp.expand(RESAMPLE_DISJOINT_ERROR.subs({_x: values[fx], _y: values[fy]}).subs(t, TAU))


TAU = sp.Symbol("tau", nonnegative=True)
"""Edit fraction still to spend (the value function's horizon)."""


def resample_disjoint_certificate() -> tuple[sp.Expr, sp.Expr]:
    """(D, claimed form of D) where D = V(step_q(s), tau - q) - V(s, tau) is the change of the value function
    over one edit of fraction q <= tau. The claimed form
    e^(2 tau) [(1 - a^2) h - q^2 e^(-2q) - 2 l e^(-tau) (1 - a)], a = (1+q) e^(-q), h = 2l - 2 - 2x - y,
    is <= 0 whenever t + tau <= 1 (t the fraction already spent): 0 <= h <= t^2 by induction
    (h_n = (1+q)^2 h_{n-1} + q^2), 1 - a^2 <= 2(1 - a), l >= 1 and t^2 <= (1 - tau)^2 <= e^(-tau).
    So the error of any schedule is at most V(start, Q) = 2e^Q - 1 (docs/theory.md)."""
    V = resample_disjoint_value()
    state = dict(zip(RESAMPLE_DISJOINT_STATE, RESAMPLE_DISJOINT_STEP))
    after = V.subs(TAU, TAU - q).subs(state, simultaneous=True)
    a = (1 + q) * sp.exp(-q)
    h = 2 * _l - 2 - 2 * _x - _y
    claimed = sp.exp(2 * TAU) * ((1 - a**2) * h - q**2 * sp.exp(-2 * q) - 2 * _l * sp.exp(-TAU) * (1 - a))
    return after - V, claimed


def _resample_disjoint_continuum() -> sp.Expr:
    """The error of the continuum schedule of total fraction Q from the start state (0, 0, 1)."""
    start = dict(zip(RESAMPLE_DISJOINT_STATE, (0, 0, 1)))
    return sp.simplify(resample_disjoint_value().subs(start).subs(TAU, Q))


def relative_edit_curve(fractions: np.ndarray, edit_op: str, T, d, mask: str) -> np.ndarray:
    """E_test(w_n)/BASE for n = 0..len(fractions) under editing (see theory.relative_error_curve)."""
    require((T is None) == (d is None), "give both T and d, or neither (d/T -> 0)")
    require(T is None or T > d + 1 >= 2, f"T={T}, d={d}: need d >= 1 and T > d + 1")
    ratio = 0.0 if T is None else d / T
    if edit_op == "perturb":
        return iterate_recurrence(PERTURB_STEP, PERTURB_STATE, (1.0,), fractions, ratio, PERTURB_STATE[0])
    require(edit_op == "resample", f"edit_op={edit_op!r} must be perturb or resample")
    if mask == "random":
        return resample_random_curve(fractions, ratio, T)
    require(mask == "disjoint", f"mask={mask!r}: resample theory exists for random and disjoint masks")
    require(float(fractions.sum()) <= 1 + 1e-12, "disjoint fractions must sum to at most 1")
    if T is not None:
        return resample_disjoint_cavity(fractions, ratio)
    return iterate_recurrence(RESAMPLE_DISJOINT_STEP, RESAMPLE_DISJOINT_STATE, (0.0, 0.0, 1.0), fractions, 0.0,
                    RESAMPLE_DISJOINT_ERROR)


def resample_random_curve(fractions: np.ndarray, ratio: float, samples: Optional[int] = None) -> np.ndarray:
    """E_test(w_n)/BASE, n = 0..N, for resample with random masks: the proportional limit a_n of
    RESAMPLE_RANDOM_STEP at d/T -> ``ratio`` (``samples`` None), or at T = ``samples``, d = ratio T the finite-T
    recursion RESAMPLE_RANDOM_FINITE_STEP (first order in 1/T, exact at generation 1)."""
    if samples is None:
        return iterate_recurrence(RESAMPLE_RANDOM_STEP, RESAMPLE_RANDOM_STATE, (1.0, 1.0), fractions, ratio, _a)
    start = tuple(float(v) for v in RESAMPLE_RANDOM_FINITE_START.subs(gamma, ratio))
    return iterate_recurrence(RESAMPLE_RANDOM_FINITE_STEP.subs(T, samples), RESAMPLE_RANDOM_FINITE_STATE, start,
                              fractions, ratio, _a)


def resample_disjoint_cavity(fractions: np.ndarray, ratio: float) -> np.ndarray:
    """E_test(w_n)/BASE, n = 0..N, for resample with disjoint masks in the proportional limit d/T -> ``ratio`` > 0:
    the one-position (cavity) process of RESAMPLE_DISJOINT_CAVITY, solved generation by generation.

    A position edited at generation i (a share q_i of them; the rest never) has R(m) = e before i and
    R(m) = F(i-1) + e' from i on, e and e' its noises; each F(m) is linear in (xi(0..N), e, e'), one
    coefficient row per class. lambda(m, k) (= tr[(I + Pi_m)...(I + Pi_{k+2}) Pi_{k+1}]/d, Pi_j = Q^T M_j Q) is
    fixed by the response: a source h added to every residual in the fit of generation k moves F(m) by
    gamma lambda(m, k) h on average over positions (lambda(m, m) = 1). The field covariance K is solved one
    row at a time from the closure (row 1), which is linear in that row; E_test/BASE -> mean_t F_t(n)^2 / gamma.
    """
    fit, closure = RESAMPLE_DISJOINT_CAVITY
    c_res, c_field, c_mem = (float(fit.coeff(s).subs(gamma, ratio)) for s in (_R, _xi, _mem))
    factor = float(closure.subs(gamma, ratio))
    N = len(fractions)
    weights = np.append(fractions, 1.0 - fractions.sum())  # classes: edited at 1..N, never edited
    edit_at = np.arange(1, N + 2)
    noise = slice(N + 1, N + 3)  # basis: xi(0..N), e, e'
    F = np.zeros((N + 1, N + 1, N + 3))  # [class, generation, basis]
    r = np.zeros_like(F)  # R - F
    dF = np.zeros((N + 1, N + 1, N + 1))  # [class, m, k]: response of F(m) to a source in the fit of k
    dr = np.zeros_like(dF)
    K = np.zeros((N + 1, N + 1))
    lam = np.eye(N + 1)
    out = np.zeros(N + 1)
    for m in range(N + 1):
        edited = np.flatnonzero(edit_at <= m)
        dR = np.zeros((N + 1, m))
        dR[edited] = dF[edited, edit_at[edited] - 1, :m]
        for k in range(m - 1, -1, -1):
            rest = c_res * dR[:, k] + c_mem * dr[:, k + 1:m, k] @ lam[m, k + 1:m]
            lam[m, k] = weights @ rest / (ratio - c_mem * (1 - c_res))
        R = np.zeros((N + 1, N + 3))
        R[:, N + 1] = 1.0
        R[edited] = F[edited, edit_at[edited] - 1]
        R[edited, N + 2] = 1.0
        F[:, m] = c_res * R + c_mem * np.tensordot(lam[m, :m], r[:, :m], (0, 1))
        F[:, m, m] += c_field
        r[:, m] = R - F[:, m]
        dF[:, m, :m] = c_res * dR + c_mem * np.tensordot(lam[m, :m], dr[:, :m, :m], (0, 1))
        dF[:, m, m] = c_res
        dr[:, m, :m] = dR - dF[:, m, :m]
        dr[:, m, m] = 1 - c_res
        # closure for x = K[m, :m+1]: E[F(m) F(j)] is linear in x (F(m) holds xi(m), F(j < m) does not)
        past, now = F[:, : m + 1], F[:, m]
        coef = np.tensordot(weights * now[:, m], past[:, :, : m + 1], (0, 0))
        coef[:, :m] += (weights[:, None] * past[:, :, m]).T @ now[:, :m]
        known = (np.einsum("ck,cjk->j", weights[:, None] * (now[:, :m] @ K[:m, :m]), past[:, :, :m])
                 + np.einsum("cb,cjb->j", weights[:, None] * now[:, noise], past[:, :, noise]))
        K[m, : m + 1] = K[: m + 1, m] = np.linalg.solve(np.eye(m + 1) - factor * coef, factor * known)
        field = now[:, : N + 1]
        out[m] = weights @ (((field @ K) * field).sum(1) + (now[:, noise] ** 2).sum(1)) / ratio
    return out


def realised_fractions(cfg: SimConfig) -> Optional[np.ndarray]:
    """mean(diag M_n^2) for n = 1..N as the simulator's masks realise them (None for threshold masks, which
    depend on the data): random round(pT)/T (half to even, like jnp.round); disjoint min(round(T p eta^(n-1)),
    positions left)/T; file masks the row means of m^2."""
    if cfg.mask == "threshold":
        return None
    if cfg.mask == "file":
        return np.mean(np.asarray(cfg.masks, np.float64) ** 2, axis=1)
    if cfg.mask == "random":
        return np.full(cfg.generations, np.round(cfg.edit_fraction * cfg.T) / cfg.T)
    left, out = cfg.T, []
    for g in range(1, cfg.generations + 1):
        count = min(int(np.round(cfg.T * cfg.edit_fraction * cfg.decay ** (g - 1))), left)
        left -= count
        out.append(count / cfg.T)
    return np.asarray(out)

