"""Beyond the mean: the law of the test error for fixed-design ``replace`` and ``accumulate``.

Given X, u_n = A sum_m c_m E_m is Gaussian with Cov(Sigma^{1/2} u_n) = sigma^2 s_n W^{-1}, W = Z^T Z the
whitened Gram matrix, s_n = n + 1 (replace: u_n = A (E_0 + ... + E_n)) or sum_{k<=n+1} k^-2 (accumulate:
increments A E_m/(m+1)). So E_test = sigma^2 s_n xi^T W^{-1} xi with xi ~ N(0, I_d) independent of W;
by rotation invariance xi^T W^{-1} xi = |xi|^2 / chi^2_{T-d+1} with the two chi-squares independent, i.e.

    E_test / (sigma^2 s_n) = B / (1 - B),  B ~ Beta(d/2, (T-d+1)/2)   (a scaled F(d, T-d+1) law),

whose quantiles are exact (``betaincinv`` is scipy.special.betaincinv under lambdify). The tail bound
replaces the quantile by Laurent-Massart chi-square bounds (each side at probability (1 - level)/2).
"""

from __future__ import annotations

import sympy as sp

from .core import GAUSSIAN, Result, T, d, k, n, sigma

level = sp.Symbol("level", positive=True)
"""Probability level in (0, 1): the quantile's order, and 1 - (failure probability) of the tail bound."""

BETA_QUANTILE = sp.Function("betaincinv")
"""betaincinv(a, b, y): the y-quantile of Beta(a, b) (scipy.special.betaincinv when lambdified)."""

_SCALES = {"replace": n + 1, "accumulate": sp.summation(1 / k**2, (k, 1, n + 1))}


def error_quantile(scale: sp.Expr) -> sp.Expr:
    """The ``level``-quantile of sigma^2 scale B/(1-B), B ~ Beta(d/2, (T-d+1)/2)."""
    b = BETA_QUANTILE(d / 2, (T - d + 1) / 2, level)
    return sigma**2 * scale * b / (1 - b)


def tail_bound(scale: sp.Expr) -> sp.Expr:
    """With probability >= level: E_test <= sigma^2 scale (d + 2 sqrt(d L) + 2 L)/(nu - 2 sqrt(nu L)),
    nu = T - d + 1, L = log(2/(1 - level)) (Laurent-Massart for chi^2_d above and chi^2_nu below; valid when
    nu > 4 L; infinite otherwise)."""
    L = sp.log(2 / (1 - level))
    nu = T - d + 1
    bound = sigma**2 * scale * (d + 2 * sp.sqrt(d * L) + 2 * L) / (nu - 2 * sp.sqrt(nu * L))
    return sp.Piecewise((bound, nu > 4 * L), (sp.oo, True))


def results() -> list[Result]:
    """Exact quantiles and a high-probability bound for fixed-design replace and accumulate."""
    out = []
    for regime, scale in _SCALES.items():
        out.append(Result(f"{regime}-quantile", regime, "exact", error_quantile(scale),
                          f"{regime}, fixed design: the level-quantile of the test error, whose law is "
                          f"sigma^2 s_n B/(1-B) with B ~ Beta(d/2, (T-d+1)/2), s_n = {scale}; {GAUSSIAN}"))
        out.append(Result(f"{regime}-tail-bound", regime, "bound", tail_bound(scale),
                          f"{regime}, fixed design: E_test <= this with probability >= level (Laurent-Massart "
                          f"chi-square tails, each side (1-level)/2; needs T - d + 1 > 4 log(2/(1-level))); "
                          f"{GAUSSIAN}"))
    return out
