"""Symbolic test errors, one set per simulator regime, with their assumptions (derivations: docs/theory.md).

Every result is a sympy expression of the absolute test error E||w_n - w*||^2_Sigma in the symbols
``sigma, T, d, n`` (and ``p, eta, q, k, gamma, Q`` where a result needs them); ``BASE`` is
sigma^2 d/(T-d-1). sympy does the algebra: sums, limits, recurrences and the ODE of the continuum
limit are solved here, not typed in. Numbers come from lambdified expressions:

* :func:`relative_error_curve` -- E_test(w_n)/BASE for n = 0..N given per-generation edit fractions;
* :func:`expected_relative_error` -- the same for a :class:`~linreg_collapse.config.SimConfig`
  (None where no closed form exists), with :func:`theory_kind` saying "exact" or "limit";
* :func:`relative_bounds` -- the finite bounds as numbers.

Common assumptions: rows of X i.i.d. N(0, Sigma) (any Sigma), labels Y_0 = X w* + E_0 with
E_0 ~ N(0, sigma^2 I), OLS on T > d + 1 samples; edit masks independent of the noise and the design.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import numpy as np
import sympy as sp
from sympy.stats import Beta, E as expectation

from .config import SimConfig
from .errors import require

sigma, T, d = sp.symbols("sigma T d", positive=True)
n = sp.Symbol("n", integer=True, nonnegative=True)
i = sp.Symbol("i", integer=True, positive=True)
p, eta, q, gamma, Q, c = sp.symbols("p eta q gamma Q c", positive=True)
k = sp.Symbol("k", integer=True, positive=True)
m_paper = sp.Symbol("m", integer=True, positive=True)  # the paper's generation index, m = n + 1
p_i = sp.IndexedBase("p")

BASE = sigma**2 * d / (T - d - 1)
"""One OLS fit on real data: E||w_0 - w*||^2_Sigma = sigma^2 d/(T-d-1) (trace of the inverse-Wishart mean)."""


@dataclasses.dataclass(frozen=True)
class Result:
    """One symbolic result.

    ``kind``: ``exact`` (an equality for every T > d + 1), ``limit`` (exact as T, d -> infinity with
    d/T -> gamma, or as d/T -> 0 where it says so), or ``bound`` (an upper bound).
    ``regime``/``edit_op``/``masks`` name the simulator settings it describes (None or empty = any).
    """

    name: str
    regime: Optional[str]
    kind: str
    expr: sp.Expr
    assumptions: str
    edit_op: Optional[str] = None
    masks: tuple[str, ...] = ()

    @property
    def relative(self) -> sp.Expr:
        """The result in units of BASE."""
        return sp.simplify(self.expr / BASE)


def _generic(expr: sp.Expr) -> sp.Expr:
    """The generic branch of every Piecewise sympy returns (e.g. eta != 1 in a geometric sum)."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[-1][0])


def _limit_geometric(expr: sp.Expr, ratio: sp.Symbol) -> sp.Expr:
    """lim_{n->oo} of ``expr`` for 0 < ratio < 1, via ratio = 1/(1 + c), c > 0 (sympy needs the sign)."""
    return sp.simplify(sp.limit(expr.subs(ratio, 1 / (1 + c)), n, sp.oo).subs(c, 1 / ratio - 1))


# --- Recurrences in units of BASE: one generation maps the state with edit fraction q (and gamma). ---------

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
    a_n = 1 + sum_{m<n} (a_{m+1} - a_m) by summation (generic branch rho = (1-q)(1-q gamma) != 1),
    collected as c_0 + n * slope + c_rho * rho^n."""
    f = sp.Function("b")
    b_n = _generic(sp.rsolve(f(n + 1) - RESAMPLE_RANDOM_STEP[1].subs(_b, f(n)), f(n), {f(0): 1}))
    m = sp.Symbol("m", integer=True, nonnegative=True)
    increment = (RESAMPLE_RANDOM_STEP[0] - _a).subs(_b, b_n.subs(n, m))
    a_n = sp.simplify(_generic(1 + sp.summation(increment, (m, 0, n - 1))))
    rho = sp.Dummy("rho")
    ratio = sp.expand((1 - q) * (1 - q * gamma))
    terms = sp.collect(sp.expand(a_n.subs(ratio, rho)), [rho**n, n], evaluate=False)
    return sp.Add(*(sp.factor(coeff) * term for term, coeff in terms.items())).subs(rho, sp.factor(ratio))


@functools.cache
def results() -> dict[str, Result]:
    """All results by name (built once; sympy derives the sums, limits and recurrences here)."""
    out: list[Result] = []
    add = out.append
    gauss = "rows of X i.i.d. N(0, Sigma), any Sigma; noise N(0, sigma^2 I) independent across generations; T > d + 1"

    add(Result("ols", None, "exact", BASE, f"one OLS fit on real data; {gauss}"))
    add(Result("replace", "replace", "exact", (n + 1) * BASE,
               f"design fixed or fresh; {gauss}. Counting: generation 0 = the fit on real data, so "
               "generation n has error (n+1) BASE; the paper writes BASE * n counting the first model as 1 "
               "(paper's n = our n + 1)"))

    add(Result("replace-paper-convention", "replace", "exact", m_paper * BASE,
               "replace in the paper's counting: m = n + 1 counts the first model as 1 (same values as replace)"))

    accumulate = sp.summation(1 / k**2, (k, 1, n + 1)) * BASE
    add(Result("accumulate", "accumulate", "exact", accumulate,
               f"fixed design (every generation labels the same X); {gauss}"))
    add(Result("accumulate-sup", "accumulate", "bound", sp.limit(accumulate, n, sp.oo),
               "supremum over n of the fixed-design accumulate error"))

    perturb_any = (1 + sp.Sum(p_i[i], (i, 1, n))) * BASE
    add(Result("edit-perturb", "edit", "exact", perturb_any,
               "perturb, fixed design, masks M_i independent of noise and design (p_i = mean of diag M_i^2; "
               f"= the edit fraction for 0/1 masks), any fractions; {gauss}", "perturb", ("random", "disjoint", "file")))
    add(Result("edit-perturb-random", "edit", "exact", perturb_any.xreplace({p_i[i]: p}).doit(),
               "perturb with edit fraction p every generation (random masks); assumptions of edit-perturb",
               "perturb", ("random",)))
    add(Result("edit-perturb-paper-bound", "edit", "bound", perturb_any.xreplace({sp.Sum(p_i[i], (i, 1, n)): 1}),
               "perturb with sum_i p_i <= 1 (each position edited at most once); the paper's 2 BASE",
               "perturb", ("disjoint", "file")))
    disjoint = _generic(perturb_any.xreplace({p_i[i]: p * eta ** (i - 1)}).doit())
    add(Result("edit-perturb-disjoint", "edit", "exact", sp.simplify(disjoint),
               "perturb, disjoint schedule with fractions p eta^(i-1) (T p eta^(i-1) integer, sum <= 1), "
               "eta != 1; assumptions of edit-perturb", "perturb", ("disjoint",)))
    add(Result("edit-perturb-disjoint-limit", "edit", "bound", _limit_geometric(disjoint, eta),
               "n -> infinity of edit-perturb-disjoint, 0 < eta < 1, p <= 1 - eta", "perturb", ("disjoint",)))

    add(Result("edit-resample-first", "edit", "exact", _resample_first_generation() * BASE,
               f"resample, generation 1 only, a 0/1 mask of k positions chosen uniformly (q = k/T), independent "
               f"of noise and design; {gauss}", "resample", ("random", "disjoint")))
    add(Result("edit-resample-random", "edit", "limit", _resample_random_closed_form() * BASE,
               "resample, k = qT positions drawn uniformly afresh every generation, independent of noise and "
               "design; limit T, d -> infinity with d/T -> gamma (finite-T error O(1/T))", "resample", ("random",)))
    b_fixed = sp.solve(sp.Symbol("b") - RESAMPLE_RANDOM_STEP[1].subs(_b, sp.Symbol("b")), sp.Symbol("b"))[0]
    slope = sp.factor(RESAMPLE_RANDOM_STEP[0].subs({_a: 0, _b: b_fixed}))
    add(Result("edit-resample-random-slope", "edit", "limit", slope * BASE,
               "growth per generation of edit-resample-random once b_n reaches its fixed point",
               "resample", ("random",)))
    continuum = _resample_disjoint_continuum()
    add(Result("edit-resample-disjoint-sup", "edit", "limit", continuum * BASE,
               "resample, each position edited at most once, total edited fraction Q = sum_i p_i; the "
               "continuum of infinitesimal edits (sup of the d/T -> 0 recurrence over schedules, numerically); "
               "at Q = 1 this replaces the paper's 2", "resample", ("disjoint", "file")))
    add(Result("edit-resample-gronwall", "edit", "bound", sp.exp(2 * Q) * BASE,
               "resample, each position edited at most once, d/T -> 0: ||u_n|| <= 1 + sum_i q_i ||u_{i-1}|| "
               "(Minkowski) gives E_test/BASE <= prod (1 + q_i)^2 <= e^(2Q) (Gronwall)",
               "resample", ("disjoint", "file")))
    return {r.name: r for r in out}


def _resample_first_generation() -> sp.Expr:
    """E_test(w_1)/BASE for resample with a k-subset mask:
    E tr(H C_1)/d with C_1/sigma^2 = I - MP - PM + MPM + M (P = I - H), E tr(HM) = k d/T and
    E tr(HMHM) = k E[H_tt^2] + k(k-1) E[H_st^2], H_tt ~ Beta(d/2, (T-d)/2), sum_s H_st^2 = H_tt."""
    h_tt = Beta("h", d / 2, (T - d) / 2)
    diag_sq = sp.factor(sp.gammasimp(expectation(h_tt**2)))
    off_sq = sp.factor((d / T - diag_sq) / (T - 1))
    trace_hmhm = k * diag_sq + k * (k - 1) * off_sq
    return sp.factor((d + 2 * k * d / T - trace_hmhm) / d)


def _resample_disjoint_continuum() -> sp.Expr:
    """Continuum limit of RESAMPLE_DISJOINT_STEP: (step - state)/q as q -> 0 gives an ODE in t = sum q_i,
    solved by sympy's dsolve; the error at t = Q."""
    t = sp.Symbol("t", nonnegative=True)
    fx, fy, fl = (sp.Function(name)(t) for name in ("x", "y", "l"))
    rates = [sp.limit((RESAMPLE_DISJOINT_STEP[m] - s) / q, q, 0) for m, s in enumerate(RESAMPLE_DISJOINT_STATE)]
    subs = dict(zip(RESAMPLE_DISJOINT_STATE, (fx, fy, fl)))
    odes = [sp.Eq(f.diff(t), rate.subs(subs)) for f, rate in zip((fx, fy, fl), rates)]
    sol = sp.dsolve(odes, [fx, fy, fl], ics={fx.subs(t, 0): 0, fy.subs(t, 0): 0, fl.subs(t, 0): 1})
    values = {s.lhs: s.rhs for s in sol}
    return sp.simplify(RESAMPLE_DISJOINT_ERROR.subs({_x: values[fx], _y: values[fy]}).subs(t, Q))


def results_for(regime: str, edit_op: Optional[str] = None, mask: Optional[str] = None) -> list[Result]:
    """Results describing ``regime`` (plus the one-fit result), filtered by edit_op / mask when given."""
    return [r for r in results().values()
            if r.regime in (None, regime)
            and (edit_op is None or r.edit_op in (None, edit_op))
            and (mask is None or not r.masks or mask in r.masks)]


def evaluate(result: Result, **values: float) -> float:
    """Numeric value of ``result`` at the given symbol values (names as in the expression)."""
    expr = result.expr
    require(not expr.has(sp.Indexed), f"{result.name} depends on every fraction p_i: use relative_error_curve")
    missing = sorted(s.name for s in expr.free_symbols if s.name not in values)
    require(not missing, f"{result.name} needs values for {', '.join(missing)}")
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    return float(_lambdified(expr, tuple(symbols))(*(values[s.name] for s in symbols)))


@functools.lru_cache(maxsize=None)
def _lambdified(expr: sp.Expr, symbols: tuple):
    return sp.lambdify(symbols, expr.rewrite(sp.zeta), modules=["scipy", "numpy"])


@functools.lru_cache(maxsize=None)
def _step_function(step: sp.Matrix, state: tuple):
    fn = sp.lambdify((state, q, gamma), list(step), modules="numpy")
    return lambda s, fraction, ratio: tuple(float(v) for v in fn(s, fraction, ratio))


def _iterate(step: sp.Matrix, state: tuple, start: tuple, fractions, ratio: float, error) -> np.ndarray:
    """Error/BASE after each generation of a recurrence (index 0 = the real-data fit)."""
    advance = _step_function(step, state)
    error_of = sp.lambdify([state], error, modules="numpy")
    s, out = start, [float(error_of(start))]
    for fraction in fractions:
        s = advance(s, float(fraction), ratio)
        out.append(float(error_of(s)))
    return np.asarray(out)


def relative_error_curve(regime: str, fractions=None, *, edit_op: str = "perturb", T=None, d=None,
                         mask: str = "random") -> np.ndarray:
    """E_test(w_n) / (sigma^2 d/(T-d-1)) for n = 0..N, N = len(fractions).

    * ``replace``: n + 1; ``accumulate`` (fixed design): sum_{k=1}^{n+1} k^-2 (fractions only set N);
    * ``edit`` with ``edit_op="perturb"``: 1 + sum_{i<=n} p_i, exact, any mask independent of the data
      (``fractions[i]`` = mean of diag M_{i+1}^2, the edit fraction for 0/1 masks);
    * ``edit`` with ``edit_op="resample"`` and ``mask="random"`` (masks drawn afresh each generation):
      the proportional limit a_n of RESAMPLE_RANDOM_STEP with gamma = d/T (gamma = 0 when T, d are None);
    * ``edit`` with ``edit_op="resample"`` and ``mask="disjoint"`` (each position edited at most once):
      the d/T -> 0 limit 1 + 2 x_n + y_n of RESAMPLE_DISJOINT_STEP (T, d must be None: no finite-gamma
      result exists).
    """
    require(fractions is not None, "relative_error_curve needs fractions (their number sets N)")
    fractions = np.asarray(fractions, dtype=np.float64).ravel()
    require(bool(np.all((fractions >= 0) & (fractions <= 1))), "fractions must lie in [0, 1]")
    generations = np.arange(len(fractions) + 1)
    if regime in ("replace", "accumulate"):
        rel = sp.lambdify(n, results()[regime].relative.rewrite(sp.zeta), modules=["scipy", "numpy"])
        return np.asarray(rel(generations), dtype=np.float64) * np.ones(len(generations))
    require(regime == "edit", f"regime={regime!r}: relative_error_curve knows replace, accumulate, edit")
    require((T is None) == (d is None), "give both T and d, or neither (d/T -> 0)")
    require(T is None or T > d + 1 >= 2, f"T={T}, d={d}: need d >= 1 and T > d + 1")
    ratio = 0.0 if T is None else d / T
    if edit_op == "perturb":
        return _iterate(PERTURB_STEP, PERTURB_STATE, (1.0,), fractions, ratio, PERTURB_STATE[0])
    require(edit_op == "resample", f"edit_op={edit_op!r} must be perturb or resample")
    if mask == "random":
        return _iterate(RESAMPLE_RANDOM_STEP, RESAMPLE_RANDOM_STATE, (1.0, 1.0), fractions, ratio, _a)
    require(mask == "disjoint", f"mask={mask!r}: resample theory exists for random and disjoint masks")
    require(T is None, "resample with disjoint masks has only the d/T -> 0 limit: call with T=None, d=None")
    require(float(fractions.sum()) <= 1 + 1e-12, "disjoint fractions must sum to at most 1")
    return _iterate(RESAMPLE_DISJOINT_STEP, RESAMPLE_DISJOINT_STATE, (0.0, 0.0, 1.0), fractions, 0.0,
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


def theory_kind(cfg: SimConfig) -> Optional[str]:
    """"exact", "limit" (proportional limit at gamma = d/T) or None: what :func:`expected_relative_error` gives."""
    if cfg.regime == "replace" or (cfg.regime == "accumulate" and cfg.design == "fixed"):
        return "exact"
    if cfg.regime != "edit" or cfg.mask == "threshold":
        return None
    if cfg.edit_op == "perturb":
        return "exact"
    return "limit" if cfg.mask == "random" else None


def expected_relative_error(cfg: SimConfig) -> Optional[np.ndarray]:
    """E_test(w_n)/BASE for n = 0..cfg.generations from :func:`relative_error_curve` with the realised
    fractions, or None where no closed form exists (accumulate with fresh design, accumulate-subsample,
    threshold masks, resample with disjoint or file masks at finite d/T)."""
    kind = theory_kind(cfg)
    if kind is None:
        return None
    if cfg.regime != "edit":
        return relative_error_curve(cfg.regime, np.zeros(cfg.generations))
    return relative_error_curve("edit", realised_fractions(cfg), edit_op=cfg.edit_op, T=cfg.T, d=cfg.d,
                                mask=cfg.mask)


def relative_bounds() -> dict[str, float]:
    """The finite bounds in units of BASE: accumulate pi^2/6; perturb with sum p_i <= 1: 2 (the paper's);
    resample with sum p_i <= 1 (d/T -> 0): 2e - 1 (continuum sup) and e^2 (Gronwall, proven)."""
    r = results()
    return {
        "accumulate-sup": float(r["accumulate-sup"].relative),
        "edit-perturb-paper-bound": float(r["edit-perturb-paper-bound"].relative),
        "edit-resample-disjoint-sup": float(r["edit-resample-disjoint-sup"].relative.subs(Q, 1)),
        "edit-resample-gronwall": float(r["edit-resample-gronwall"].relative.subs(Q, 1)),
    }

