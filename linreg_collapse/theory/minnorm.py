"""Minimum-norm interpolation (ridge 0, T <= d - 2) with an isotropic design: exact closed forms.

Isotropic rows (Sigma = I) make the row space of X a uniformly random T-dimensional subspace, so
E P_row = (T/d) I, and X X^T ~ Wishart_T(d, I) gives E tr((X X^T)^{-1}) = T/(d - T - 1). With ||w*|| = 1
(the simulator's w*, any direction) one fit has bias 1 - T/d and variance V = sigma^2 T/(d - T - 1).
Derivations: docs/theory.md, section "Ridge and minimum-norm".
"""

from __future__ import annotations

import sympy as sp

from .core import Result, T, d, i, n, p_i, sigma

RATIO = T / d
"""E P_row = (T/d) I: the share of w* a fit on an isotropic design can see."""
VARIANCE = sigma**2 * T / (d - T - 1)
"""sigma^2 E tr((X X^T)^{-1}): the noise one minimum-norm fit absorbs."""
ISOTROPIC = ("minimum-norm fit (ridge 0) on T <= d - 2 samples, rows of X i.i.d. N(0, I) (isotropic), "
             "||w*|| = 1 in any direction, noise N(0, sigma^2 I) independent across generations")


ONE_FIT = Result("minnorm", None, "exact", (1 - RATIO) + VARIANCE, f"one fit on real data; {ISOTROPIC}",
                 estimator="minnorm")


def _fresh_replace() -> sp.Expr:
    """Fresh designs: w_n = P_n w_{n-1} + X_n^+ E_n with P_n independent of w_{n-1}, so
    E||w_n - w*||^2 = a_n - 2 E<w_n, w*> + 1 with a_n = E||w_n||^2 = (T/d) a_{n-1} + V (a_{-1} = 1, rsolve)
    and E<w_n, w*> = (T/d)^(n+1)."""
    a, r, v = sp.Function("a"), sp.Symbol("r", positive=True), sp.Symbol("V", positive=True)
    a_n = sp.rsolve(a(n + 1) - r * a(n) - v, a(n), {a(0): r + v})
    error = sp.collect(sp.expand(sp.simplify(a_n - 2 * r ** (n + 1) + 1)), v, sp.factor)
    return error.subs({r: RATIO, v: VARIANCE})


def results() -> list[Result]:
    """One fit, replace (fixed and fresh design), fixed-design accumulate and editing (either proposal)."""
    bias = 1 - RATIO
    return [
        ONE_FIT,
        Result("minnorm-replace", "replace", "exact", bias + (n + 1) * VARIANCE,
               f"replace, fixed design: the bias stays P_null w*, the noise adds; {ISOTROPIC}", estimator="minnorm"),
        Result("minnorm-replace-fresh", "replace", "exact", _fresh_replace(),
               f"replace, fresh design: each fit projects w_(n-1) onto a new random row space; {ISOTROPIC}",
               estimator="minnorm"),
        Result("minnorm-accumulate", "accumulate", "exact",
               bias + sp.summation(1 / i**2, (i, 1, n + 1)) * VARIANCE,
               f"accumulate, fixed design: w_n = w_(n-1) + X^+ E_n/(n+1); {ISOTROPIC}", estimator="minnorm"),
        Result("minnorm-edit", "edit", "exact", bias + (1 + sp.Sum(p_i[i], (i, 1, n))) * VARIANCE,
               "edit with either proposal (an interpolator reproduces its labels, H = I, so resample = perturb), "
               f"masks independent of noise and design, p_i = mean of diag M_i^2; {ISOTROPIC}",
               masks=("random", "disjoint", "file"), estimator="minnorm"),
    ]
