"""Scaling laws: test error against T for eigenvalues l_k ∝ k^-alpha and source w*_k^2 ∝ k^-DELTA, without
collapse and after n generations, as rates (up to constants) whose exponents sympy derives.

From the deterministic equivalent (:mod:`.ridge`), with d >> T and small kappa, one fit has
bias ≍ sum_k l_k w*_k^2 min(1, (kappa/l_k)^2) ≍ kappa^a, a = (alpha + DELTA - 1)/alpha (if a < 2; the bias
saturates at kappa^2 beyond), and variance ≍ sigma^2 kappa^(-b)/T, b = 1/alpha (df2 ≍ kappa^(-1/alpha)).

* Ridgeless on a fixed design (minimum norm, T < d): exactly E = B_0 + c_n V_0 (:func:`.ridge.fixed_structure`)
  with kappa ≍ T^-alpha (df1(kappa) = T), so E ≍ T^-(alpha + DELTA - 1) + c_n sigma^2 V_inf, c_n = n + 1
  (replace), sum_(k<=n+1) k^-2 (accumulate), 1 + n p (perturb): the law stops at
  T_stop ≍ (c_n sigma^2)^(-1/(alpha + DELTA - 1)).
* Tuned ridge: E ≍ (c_b kappa)^a + c_v sigma^2 kappa^(-b)/T with, for replace, c_b = n + 1 (1 - h^(n+1) ≈
  (n+1)(1 - h) where (n+1) kappa << l_k) and c_v = (n+1)^(1-b) (each direction keeps min(n+1, l_k/(2 kappa))
  noise draws, the older ones shrunk by h^2 per generation; summed over the spectrum this is
  (n+1) ((n+1) kappa)^-b); accumulate c_b = H_(n+1), c_v = sum_(k<=n+1) k^-2; perturb editing c_b = 1,
  c_v = 1 + n p. Minimising over kappa (sympy) gives E* ≍ c_b^(ab/(a+b)) c_v^(a/(a+b)) (sigma^2/T)^(a/(a+b)):
  the exponent (alpha + DELTA - 1)/(alpha + DELTA) of T survives; under replace E* ≍ ((n+1) sigma^2/T)^that
  (the data of n + 1 generations count as T/(n+1) real samples), at kappa* ≍ (n+1)^(-DELTA/(alpha+DELTA))
  T^(-alpha/(alpha+DELTA)): the optimal regularisation falls with n.
"""

from __future__ import annotations

import functools

import sympy as sp

from .core import Result, T, n, p, sigma

alpha, DELTA, kap, c_b, c_v = sp.symbols("alpha DELTA kappa c_b c_v", positive=True)
BIAS_EXPONENT = (alpha + DELTA - 1) / alpha
"""a: bias ≍ kappa^a (unsaturated: a < 2, i.e. DELTA < alpha + 1)."""
VARIANCE_EXPONENT = 1 / alpha
"""b: variance ≍ sigma^2 kappa^-b / T."""
MULTIPLIERS = {
    "replace": (n + 1, (n + 1) ** (1 - VARIANCE_EXPONENT)),
    "accumulate": (sp.harmonic(n + 1), sp.harmonic(n + 1, 2)),
    "edit": (sp.Integer(1), 1 + n * p),
}
"""(c_b, c_v) of tuned ridge per regime (edit = perturb editing with fraction p every generation)."""
FIXED_NOISE = {"replace": n + 1, "accumulate": sp.harmonic(n + 1, 2), "edit": 1 + n * p}
"""c_n of the exact fixed-design minimum-norm structure E = B_0 + c_n V_0."""


@functools.cache
def optimal() -> tuple[sp.Expr, sp.Expr]:
    """(kappa*, E*) minimising (c_b kappa)^a + c_v sigma^2 kappa^-b / T over kappa: the stationarity condition
    times kappa^(b+1) is linear in u = kappa^(a+b), which sympy solves (solving for kappa itself, with symbolic
    exponents, takes 20 times as long)."""
    a, b = BIAS_EXPONENT, VARIANCE_EXPONENT
    error = (c_b * kap) ** a + c_v * sigma**2 * kap ** (-b) / T
    u = sp.Symbol("u", positive=True)
    stationary = (kap ** (b + 1) * sp.diff(error, kap)).subs(kap, u ** (1 / (a + b)))
    linear = sp.powsimp(sp.expand(stationary, force=True), force=True).replace(
        lambda e: e.is_Pow, lambda e: e.base ** sp.cancel(e.exp))
    best = sp.solve(linear, u)[0] ** sp.cancel(1 / (a + b))
    return sp.powsimp(best, force=True), error.subs(kap, best)


def exponent(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """d log expr / d log symbol, simplified: the exponent of a power law in ``symbol``."""
    return sp.simplify(sp.expand_log(symbol * sp.diff(expr, symbol) / expr, force=True))


def ridgeless_rate(regime: str) -> sp.Expr:
    """E ≍ T^-(alpha + DELTA - 1) + c_n sigma^2 V_inf (V_inf a constant of alpha): lambda = 0, T < d, fixed design."""
    return T ** (-(alpha + DELTA - 1)) + FIXED_NOISE[regime] * sigma**2 * sp.Symbol("V_inf", positive=True)


@functools.cache
def tuned_exponents() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(e_b, e_v, e_T): the exponents of c_b, c_v and T in E* of :func:`optimal` (the same for every regime)."""
    best = optimal()[1]
    return tuple(exponent(best, s) for s in (c_b, c_v, T))


def tuned_rate(regime: str) -> sp.Expr:
    """E* ≍ c_b^e_b c_v^e_v (sigma^2/T)^e_T at the optimal lambda, the exponents read off :func:`optimal` (the
    error depends on sigma^2 and T only through c_v sigma^2/T), with the regime's multipliers."""
    e_b, e_v, e_t = tuned_exponents()
    cb, cv = MULTIPLIERS[regime]
    return cb**e_b * cv**e_v * (sigma**2 / T) ** (-e_t)


def results() -> list[Result]:
    """Rates (kind "rate": equal up to a constant factor as T -> infinity with d >> T) per regime."""
    common = ("eigenvalues k^-alpha, w*_k^2 ∝ k^-DELTA, d >> T, alpha > 1, DELTA < alpha + 1 (unsaturated bias); "
              "from the proportional-limit equivalents (theory.ridge), up to constant factors")
    out = []
    for regime, (cb, cv) in MULTIPLIERS.items():
        what = "perturb editing, fraction p" if regime == "edit" else regime
        edit = {"edit_op": "perturb"} if regime == "edit" else {}
        out.append(Result(f"scaling-ridgeless-{regime}", regime, "rate", ridgeless_rate(regime),
                          f"{what}, lambda = 0 (minimum norm), fixed design: the T^-(alpha+DELTA-1) law stops at the "
                          f"noise floor c_n sigma^2 V_inf, c_n = {FIXED_NOISE[regime]}; {common}", estimator="ridge",
                          **edit))
        out.append(Result(f"scaling-tuned-{regime}", regime, "rate", tuned_rate(regime),
                          f"{what}, lambda tuned per T and n: exponent of T (alpha+DELTA-1)/(alpha+DELTA) kept, "
                          f"prefactor c_b^(ab/(a+b)) c_v^(a/(a+b)), c_b = {cb}, c_v = {cv}; {common}",
                          estimator="ridge", **edit))
    return out
