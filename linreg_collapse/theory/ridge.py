"""Ridge (and minimum-norm) under retraining: deterministic equivalents in the proportional limit.

Notation (docs/theory.md, section "Ridge and minimum-norm"): K = X^T X / T, h(x) = x/(x + lambda) the
shrinkage of one fit, S = h(K); Sigma = diag(l_k), w* in Sigma's eigenbasis. The effective regularisation
kappa > 0 solves the fixed-point equation lambda = kappa (1 - df1(kappa)/T), df_j(kappa) = sum_k
l_k^j/(l_k + kappa)^j (at lambda = 0 and T < d: df1(kappa) = T; at lambda = 0 and T > d: kappa = 0).

* One fit, any spectrum: E_test -> (kappa^2 sum_k l_k w*_k^2/(l_k + kappa)^2 + sigma^2 df2/T)/(1 - df2/T).
* ``replace`` with a fresh design, any spectrum: with s_k = E w_{n,k}^2 and m_k = E w_{n,k} (w_{-1} = w*),
  m_k <- h_k m_k and s_k <- h_k^2 s_k + l_k eps/(l_k + kappa)^2, eps = (kappa^2 sum_j l_j s_j/(l_j +
  kappa)^2 + sigma^2)/(T - df2), h_k = l_k/(l_k + kappa); E_test = sum_k l_k (s_k - 2 m_k w*_k + w*_k^2).
* Fixed design, isotropic Sigma: E[E_test | spectrum of K] = ||w*||^2 tr(phi_n(K)^2)/d + (sigma^2/T)
  tr(g_n(K)) exactly (the eigenvectors of K are Haar), with phi_n, g_n of :func:`fixed_design_functions`;
  the spectrum of K tends to Marchenko-Pastur with ratio gamma = d/T.

Results are numbers from scipy (fixed points by ``brentq``, Marchenko-Pastur integrals by Gauss-Legendre
quadrature, the optimal lambda by ``minimize_scalar``); the sympy expressions of the records are the
formulas they evaluate, for display.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional

import numpy as np
import sympy as sp
from scipy import optimize

from ..config import SimConfig
from ..design import covariance_eigenvalues, ground_truth
from ..errors import InputError, require
from .core import Result, T, gamma, k, n, p, sigma
from .editing import realised_fractions

lam, x, kappa = sp.symbols("lambda x kappa", nonnegative=True)
H = x / (x + lam)
"""h(x): the shrinkage of one ridge fit on an eigenvalue x of X^T X / T."""
QUADRATURE_NODES = 400


def effective_regularisation(eig: np.ndarray, T: int, ridge: float) -> float:
    """kappa solving ridge = kappa (1 - df1(kappa)/T) on the branch df1 < T (brentq); 0 for OLS (ridge = 0, d < T)."""
    if ridge == 0 and len(eig) < T:
        return 0.0
    gap = lambda kap: kap * (1 - float(np.sum(eig / (eig + kap))) / T) - ridge  # noqa: E731
    lo = ridge if ridge > 0 else 1e-15 * float(eig.min())  # df1 < T at kappa = ridge, so gap(lo) < 0 or = 0
    hi = 2 * (ridge + float(eig.sum()) / T) + float(eig.max())
    while gap(hi) <= 0:
        hi *= 2
    if ridge == 0:  # kappa (1 - df1/T) = 0 with kappa > 0: df1 = T, found on the rescaled gap
        return optimize.brentq(lambda kap: T - float(np.sum(eig / (eig + kap))), lo, hi, rtol=1e-14)
    return optimize.brentq(gap, lo, hi, rtol=1e-14)


def _degrees(eig: np.ndarray, kap: float) -> float:
    return float(np.sum(eig**2 / (eig + kap) ** 2))


def one_fit(eig: np.ndarray, w_star: np.ndarray, sigma_: float, T_: int, ridge: float) -> tuple[float, float]:
    """(bias, variance) of one fit in the proportional limit: kappa^2 w*^T Sigma (Sigma + kappa)^-2 w*/(1 - df2/T)
    and sigma^2 df2/(T - df2) (OLS: 0 and sigma^2 d/(T - d))."""
    kap = effective_regularisation(eig, T_, ridge)
    df2 = _degrees(eig, kap)
    bias = kap**2 * float(np.sum(eig * w_star**2 / (eig + kap) ** 2)) / (1 - df2 / T_)
    return bias, sigma_**2 * df2 / (T_ - df2)


def limit_tolerance(cfg: SimConfig) -> float:
    """Relative finite-size tolerance of a proportional-limit value: 2/(T - df2). For OLS the limit variance
    sigma^2 d/(T - d) differs from the exact sigma^2 d/(T - d - 1) by the factor 1 + 1/(T - d - 1); the ridge
    and min-norm variance sigma^2 df2/(T - df2) carries a correction of the same order, and the bias one of
    that order again (factor 2)."""
    eig = covariance_eigenvalues(cfg.cov, cfg.d, cfg.alpha)
    return 2 / (cfg.T - _degrees(eig, effective_regularisation(eig, cfg.T, cfg.ridge)))


def fresh_replace_curve(eig: np.ndarray, w_star: np.ndarray, sigma_: float, T_: int, ridge: float,
                        generations: int) -> np.ndarray:
    """E_test(w_n), n = 0..generations, of ``replace`` with a fresh design (proportional limit, any spectrum)."""
    kap = effective_regularisation(eig, T_, ridge)
    df2 = _degrees(eig, kap)
    shrink = eig / (eig + kap)
    spread = eig / (eig + kap) ** 2
    m, s, out = w_star.copy(), w_star**2, []
    for _ in range(generations + 1):
        eps = (kap**2 * float(np.sum(eig * s / (eig + kap) ** 2)) + sigma_**2) / (T_ - df2)
        m, s = shrink * m, shrink**2 * s + spread * eps
        out.append(float(np.sum(eig * (s - 2 * m * w_star + w_star**2))))
    return np.asarray(out)


def fixed_design_functions(regime: str, generations: int) -> list[tuple[sp.Expr, sp.Expr]]:
    """(phi_n, g_n) of x for n = 0..generations: with a fixed design E_test(w_n) = w*^T phi(K) Sigma phi(K) w*
    + (sigma^2/T) tr(Sigma g(K)), from w_n - w* = F_n (w_{n-1} - w*) + (F_n - I) w* + J_n E_n:

    * replace: F_n = S, J_n = A, so phi_n = 1 - h^(n+1), g_n = sum_{m<=n} h^(2(n-m)) x/(x+lambda)^2;
    * accumulate: F_0 = S, F_m = 1 - (1 - h)/(m+1), J_m = A/(m+1), so phi_n = 1 - prod_m F_m and
      g_n = sum_m (prod_{j>m} F_j)^2 x/((x+lambda)^2 (m+1)^2).
    """
    var_one = x / (x + lam) ** 2
    out = []
    for g in range(generations + 1):
        if regime == "replace":
            out.append((1 - H ** (g + 1), sum(H ** (2 * (g - m)) * var_one for m in range(g + 1))))
        elif regime == "accumulate":
            factors = [H] + [1 - (1 - H) / (m + 1) for m in range(1, g + 1)]
            tails = [sp.Mul(*factors[m + 1:]) for m in range(g + 1)]
            out.append((1 - sp.Mul(*factors), sum(t**2 * var_one / (m + 1) ** 2 for m, t in enumerate(tails))))
        else:
            raise InputError(f"regime={regime!r}: the fixed-design functions are for replace and accumulate")
    return out


def marchenko_pastur(ratio: float, nodes: int = QUADRATURE_NODES) -> tuple[np.ndarray, np.ndarray, float]:
    """(points, weights, atom): quadrature of the Marchenko-Pastur law of X^T X / T (Sigma = I, d/T = ratio)
    on its bulk [(1 - sqrt r)^2, (1 + sqrt r)^2], density sqrt((x+ - x)(x - x-))/(2 pi r x), plus the mass
    max(0, 1 - 1/r) of its atom at 0. x = c + h cos(theta) removes the square-root edges."""
    lo, hi = (1 - np.sqrt(ratio)) ** 2, (1 + np.sqrt(ratio)) ** 2
    theta, wts = np.polynomial.legendre.leggauss(nodes)
    theta = (theta + 1) * np.pi / 2
    centre, half = (hi + lo) / 2, (hi - lo) / 2
    points = centre + half * np.cos(theta)
    weights = wts * np.pi / 2 * (half * np.sin(theta)) ** 2 / (2 * np.pi * ratio * points)
    return points, weights, max(0.0, 1 - 1 / ratio)


def isotropic_fixed_curve(regime: str, sigma_: float, T_: int, d_: int, ridge: float,
                          generations: int) -> np.ndarray:
    """E_test(w_n), n = 0..generations, with a fixed isotropic design in the proportional limit: the
    Marchenko-Pastur integral of ||w*||^2 phi_n^2 + sigma^2 gamma g_n (||w*|| = 1). On the atom at 0 (T < d)
    phi = 1 and g = 0 (directions no fit sees), so it adds its mass 1 - T/d."""
    points, weights, atom = marchenko_pastur(d_ / T_)
    integrands = [_lambdified(phi**2 + sigma**2 * gamma * g) for phi, g in
                  fixed_design_functions(regime, generations)]
    return np.asarray([float(np.sum(weights * f(points, ridge, sigma_, d_ / T_))) + atom for f in integrands])


@functools.lru_cache(maxsize=None)
def _lambdified(expr: sp.Expr) -> Callable:
    return sp.lambdify((x, lam, sigma, gamma), expr, "numpy")



def spectrum(cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(Sigma's eigenvalues, w*) of a configuration."""
    return covariance_eigenvalues(cfg.cov, cfg.d, cfg.alpha), ground_truth(cfg.wstar, cfg.d, cfg.delta)


def fixed_structure(regime: str, generations: int, fractions=None) -> np.ndarray:
    """c_n with E_test(w_n) = B_0 + c_n V_0 for an OLS or minimum-norm fit on a fixed design, any Sigma:
    S is the projection onto the row space and A A^T lies in it, so the bias P_null w* never moves and the
    noise adds: replace n + 1, accumulate sum_{k<=n+1} k^-2, edit (either proposal) 1 + sum_{i<=n} p_i."""
    g = np.arange(generations + 1)
    if regime == "replace":
        return g + 1.0
    if regime == "accumulate":
        return np.cumsum(1 / (g + 1.0) ** 2)
    return 1 + np.concatenate([[0.0], np.cumsum(np.asarray(fractions, np.float64)[:generations])])


def expected_error(cfg: SimConfig) -> Optional[tuple[np.ndarray, str]]:
    """(E_test(w_n) for n = 0..cfg.generations, kind) from the proportional limit ("limit"), or None where this
    module has no result: fixed design (replace, accumulate, perturb editing) with Sigma = I at any lambda,
    or any Sigma at lambda = 0 with T < d (and resample editing there, where H = I); replace with a fresh
    design at any lambda and Sigma; perturb editing at any lambda and Sigma (B_0 + (1 + sum p) V_0)."""
    eig, w_star = spectrum(cfg)
    G = cfg.generations
    fractions = realised_fractions(cfg) if cfg.regime == "edit" else None
    if cfg.regime == "edit" and (cfg.mask == "threshold" or (cfg.edit_op == "resample" and cfg.T >= cfg.d)):
        return None
    if cfg.regime == "replace" and cfg.design == "fresh":
        return fresh_replace_curve(eig, w_star, cfg.sigma, cfg.T, cfg.ridge, G), "limit"
    if cfg.design == "fresh" or cfg.regime == "accumulate-subsample":
        return None
    if cfg.ridge == 0 or cfg.regime == "edit":
        bias, variance = one_fit(eig, w_star, cfg.sigma, cfg.T, cfg.ridge)
        if cfg.ridge == 0 or cfg.edit_op == "perturb":
            return bias + fixed_structure(cfg.regime, G, fractions) * variance, "limit"
        return None
    if cfg.cov != "identity":
        return None
    return isotropic_fixed_curve(cfg.regime, cfg.sigma, cfg.T, cfg.d, cfg.ridge, G), "limit"


def optimal_ridge(cfg: SimConfig, bounds: tuple[float, float] = (1e-6, 1e2)) -> np.ndarray:
    """argmin over lambda of the limit E_test(w_n) of :func:`expected_error`, for each generation n
    (minimize_scalar on log lambda, bounded; numerical)."""
    require(cfg.regime in ("replace", "accumulate", "edit"), f"regime={cfg.regime!r} has no ridge theory here")

    def error(log_ridge, g):
        curve = expected_error(_with_ridge(cfg, float(np.exp(log_ridge))))
        require(curve is not None, "no ridge theory for this configuration")
        return curve[0][g]

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    return np.asarray([float(np.exp(optimize.minimize_scalar(error, bounds=(lo, hi), args=(g,), method="bounded",
                                                              options={"xatol": 1e-4}).x))
                       for g in range(cfg.generations + 1)])


def _with_ridge(cfg: SimConfig, ridge: float) -> SimConfig:
    return dataclasses.replace(cfg, ridge=ridge)


def _value(regime: str, design: str = "fixed", edit_op: str = "perturb") -> Callable[[dict], Optional[float]]:
    """Evaluator of :func:`expected_error` at generation n for the values ``bound`` passes (None where the
    result's assumptions exclude them, e.g. a fixed-design Marchenko-Pastur result with Sigma != I)."""
    def value(v: dict) -> float:
        cfg = SimConfig(regime=regime, design=design, edit_op=edit_op, T=int(v["T"]), d=int(v["d"]),
                        sigma=v["sigma"], generations=int(v["n"]), ridge=v["ridge"], cov=v["cov"], alpha=v["alpha"],
                        wstar=v["wstar"], wstar_exponent=v["wstar_exponent"], edit_fraction=v["p"],
                        allow_infinite_mean=True)
        curve = expected_error(cfg)
        return None if curve is None else float(curve[0][-1])
    return value


def results() -> list[Result]:
    """Deterministic equivalents (kind "limit"): one fit; replace with a fresh design (any spectrum); fixed-design
    replace and accumulate (Sigma = I) and perturb editing (any Sigma); the formulas are shown with kappa,
    df2 and the Marchenko-Pastur law mu_gamma as symbols, the values computed numerically."""
    df2, bias_sum, mp = sp.Function("df_2")(kappa), sp.Function("b")(kappa), sp.Function("mu_gamma")(x)
    one_fit_expr = (kappa**2 * bias_sum + sigma**2 * df2 / T) / (1 - df2 / T)
    fixed = ("kappa solves lambda = kappa (1 - df1(kappa)/T); b(kappa) = sum_k l_k w*_k^2/(l_k + kappa)^2, "
             "df_j = sum_k l_k^j/(l_k + kappa)^j; limit T, d -> infinity with d/T -> gamma, relative finite-size "
             "error O(1/(T - df2))")
    mp_note = ("fixed isotropic design (Sigma = I, ||w*|| = 1), mu_gamma the Marchenko-Pastur law of X^T X/T "
               "(atom 1 - 1/gamma at 0 when gamma > 1); h = x/(x + lambda); limit T, d -> infinity with d/T -> gamma")
    var_one = x / (x + lam) ** 2
    replace_integrand = ((1 - H ** (n + 1)) ** 2 + sigma**2 * gamma * sp.Sum(H ** (2 * k) * var_one, (k, 0, n))) * mp
    return [
        Result("ridge", None, "limit", one_fit_expr, f"one ridge fit on real data, any Sigma, w*; {fixed}",
               estimator="ridge", value=_one_fit_value),
        Result("ridge-replace-fixed", "replace", "limit", sp.Integral(replace_integrand, (x, 0, sp.oo)),
               f"replace, {mp_note}: w_n - w* = S (w_(n-1) - w*) - (I - S) w* + A E_n compounds the shrinkage",
               estimator="ridge", value=_value("replace")),
        Result("ridge-replace-fresh", "replace", "limit",
               sp.Function("s_k")(n) - 2 * sp.Function("m_k")(n) + 1,
               "replace, fresh design, any Sigma and w*: per eigen-direction m_k <- h_k m_k, s_k <- h_k^2 s_k + "
               "l_k eps/(l_k + kappa)^2 with h_k = l_k/(l_k + kappa), eps = (kappa^2 sum_j l_j s_j/(l_j + kappa)^2 "
               f"+ sigma^2)/(T - df2); E_test = sum_k l_k (s_k - 2 m_k w*_k + w*_k^2) (shown per unit w*_k); {fixed}",
               estimator="ridge", value=_value("replace", "fresh")),
        Result("ridge-accumulate-fixed", "accumulate", "limit",
               sp.Integral((sp.Function("phi_n")(x) ** 2 + sigma**2 * gamma * sp.Function("g_n")(x)) * mp,
                           (x, 0, sp.oo)),
               f"accumulate on the pool (penalty lambda (n+1) T), {mp_note}; phi_n = 1 - prod_m F_m, F_0 = h, "
               "F_m = 1 - (1 - h)/(m+1), g_n = sum_m (prod_(j>m) F_j)^2 x/((x + lambda)^2 (m+1)^2)",
               estimator="ridge", value=_value("accumulate")),
        Result("ridge-edit-perturb", "edit", "limit",
               (kappa**2 * bias_sum + (1 + n * p) * sigma**2 * df2 / T) / (1 - df2 / T),
               "perturb editing, fixed design, any Sigma and w*, masks independent of noise and design: exactly "
               "B_0 + (1 + sum_i p_i) V_0 with B_0, V_0 of one fit (exchangeable rows), here with edit fraction p "
               f"every generation and B_0, V_0 in the limit; {fixed}",
               edit_op="perturb", masks=("random", "disjoint", "file"), estimator="ridge", value=_value("edit")),
    ]


def _one_fit_value(v: dict) -> float:
    return _value("replace", "fresh")({**v, "n": 0})
