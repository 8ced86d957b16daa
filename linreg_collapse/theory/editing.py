"""Token-level editing on a fixed design: ``perturb`` (exact) and ``resample`` (generation 1 exact, limits
beyond), as recurrences in units of BASE that sympy solves, sums and takes to the continuum."""

from __future__ import annotations

from typing import Optional

import numpy as np
import sympy as sp
from sympy.stats import Beta, E as expectation

from ..config import SimConfig
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
    add(Result("edit-resample-random", "edit", "limit", _resample_random_closed_form() * BASE,
               "resample, k = qT positions drawn uniformly afresh every generation, independent of noise and "
               "design; limit T, d -> infinity with d/T -> gamma (finite-T error O(1/T))", "resample", ("random",)))
    b_fixed = sp.solve(sp.Symbol("b") - RESAMPLE_RANDOM_STEP[1].subs(_b, sp.Symbol("b")), sp.Symbol("b"))[0]
    slope = sp.factor(RESAMPLE_RANDOM_STEP[0].subs({_a: 0, _b: b_fixed}))
    add(Result("edit-resample-random-slope", "edit", "limit", slope * BASE,
               "growth per generation of edit-resample-random once b_n reaches its fixed point",
               "resample", ("random",)))
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
        return iterate_recurrence(RESAMPLE_RANDOM_STEP, RESAMPLE_RANDOM_STATE, (1.0, 1.0), fractions, ratio, _a)
    require(mask == "disjoint", f"mask={mask!r}: resample theory exists for random and disjoint masks")
    require(T is None, "resample with disjoint masks has only the d/T -> 0 limit: call with T=None, d=None")
    require(float(fractions.sum()) <= 1 + 1e-12, "disjoint fractions must sum to at most 1")
    return iterate_recurrence(RESAMPLE_DISJOINT_STEP, RESAMPLE_DISJOINT_STATE, (0.0, 0.0, 1.0), fractions, 0.0,
                    RESAMPLE_DISJOINT_ERROR)


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

