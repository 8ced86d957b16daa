"""Accumulating data: a fresh design every generation (exact), and accumulate-subsample (d/T -> 0 limit).

* ``accumulate``, fresh design: u_n = u_{n-1} + G_n^{-1} X_n^T E_n with G_n = sum_{m<=n} X_m^T X_m. Whitened,
  G_n ~ Wishart(d, (n+1) T) and its n + 1 blocks are exchangeable, so
  E tr(G_n^{-1} X_n^T X_n G_n^{-1}) = E tr(G_n^{-1})/(n + 1) = d/((n+1)((n+1)T - d - 1)) and
  E_test/BASE = (T-d-1) sum_{k=1}^{n+1} 1/(k (kT - d - 1)), summed by partial fractions into digammas.
* ``accumulate-subsample``: w_n is fit on T points drawn from the (n+1)T pooled points. As d/T -> 0,
  u_n = nu_n + (1/(n+1)) sum_{m<n} u_m with Cov(nu_n, nu_m) = BASE/(n+1) (m < n: the expected overlap of
  the two subsamples), which solves to u_n = nu_n + sum_{m<n} nu_m/(m+2) and
  E_test/BASE = 3 sum_{k=1}^{n+1} k^-2 - 2 -> pi^2/2 - 2.
"""

from __future__ import annotations

import sympy as sp

from .core import BASE, GAUSSIAN, Result, T, d, k, n

_shift = (d + 1) / T
ACCUMULATE_FRESH = (T - d - 1) / (d + 1) * (sp.digamma(n + 2 - _shift) - sp.digamma(1 - _shift)
                                           - sp.digamma(n + 2) + sp.digamma(1))
"""E_test/BASE of fresh-design accumulate: (T-d-1) sum_{k<=n+1} 1/(k(kT-d-1)) with
1/(k(kT-c)) = (1/c)(1/(k - c/T) - 1/k), c = d + 1, and sum_{k<=N} 1/(k+z) = psi(N+1+z) - psi(1+z)."""


def results() -> list[Result]:
    """Fresh-design accumulate (exact, and its supremum over n); accumulate-subsample as d/T -> 0 and its plateau."""
    fresh_sup = sp.simplify(sp.limit(ACCUMULATE_FRESH, n, sp.oo))
    subsample = 3 * sp.summation(1 / k**2, (k, 1, n + 1)) - 2
    return [
        Result("accumulate-fresh", "accumulate", "exact", ACCUMULATE_FRESH * BASE,
               f"fresh design every generation, fit on all data so far; {GAUSSIAN}; the n+1 design blocks of "
               "G_n ~ Wishart(d, (n+1)T) are exchangeable"),
        Result("accumulate-fresh-sup", "accumulate", "bound", fresh_sup * BASE,
               "supremum over n of accumulate-fresh (its n -> infinity limit; the sum increases with n)"),
        Result("accumulate-subsample", "accumulate-subsample", "limit", subsample * BASE,
               f"fit on T points drawn without replacement from the (n+1)T pooled points, fixed or fresh design; "
               f"{GAUSSIAN}; limit d/T -> 0 (finite-d/T error O(d/T)): subsample shares of each generation "
               "-> 1/(n+1), Gram matrices -> T I"),
        Result("accumulate-subsample-plateau", "accumulate-subsample", "limit",
               sp.limit(subsample, n, sp.oo) * BASE,
               "n -> infinity of accumulate-subsample: the error plateaus (no log n growth), at 3 pi^2/6 - 2"),
    ]
