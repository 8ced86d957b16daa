"""Symbolic test errors, one set per simulator regime, with their assumptions (derivations: docs/theory.md).

A package split by idea, every module contributing :class:`Result` records keyed by the simulator's
regime names: :mod:`.core` (symbols, BASE, evaluation), :mod:`.ols` (one fit, replace, accumulate),
:mod:`.editing` (perturb and resample token-level editing), :mod:`.accumulate` (fresh-design accumulate,
accumulate-subsample), :mod:`.distribution` (quantiles and tail bounds of the error), :mod:`.minnorm`
(minimum-norm interpolation, exact isotropic closed forms), :mod:`.ridge` (ridge and minimum-norm
deterministic equivalents in the proportional limit, any spectrum), :mod:`.scaling` (scaling-law exponents).
sympy does the algebra: sums, limits, recurrences and the ODE of the continuum limit are solved there, not
typed in. Numbers come from
lambdified expressions:

* :func:`relative_error_curve` -- E_test(w_n)/BASE for n = 0..N given per-generation edit fractions;
* :func:`expected_relative_error` -- the same for a :class:`~linreg_collapse.config.SimConfig`
  (None where no closed form exists), with :func:`theory_kind` saying "exact" or "limit";
* :func:`relative_bounds` -- the finite bounds as numbers.

Common assumptions: rows of X i.i.d. N(0, Sigma) (any Sigma), labels Y_0 = X w* + E_0 with
E_0 ~ N(0, sigma^2 I), OLS on T > d + 1 samples; edit masks independent of the noise and the design.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np
import sympy as sp

from ..config import SimConfig
from ..errors import require
from . import accumulate, distribution, editing, minnorm, ols, ridge, scaling
# Re-exported: the symbols and recurrences are the package's public vocabulary (notebooks, tests, docs).
from .core import (BASE, GAUSSIAN, Q, Result, T, c, d, eta, evaluate, gamma, i, k, m_paper, n, p, p_i, q,
                   sigma)  # noqa: F401
from .editing import (PERTURB_STATE, PERTURB_STEP, RESAMPLE_DISJOINT_ERROR, RESAMPLE_DISJOINT_STATE,
                      RESAMPLE_DISJOINT_STEP, RESAMPLE_RANDOM_STATE, RESAMPLE_RANDOM_STEP, realised_fractions)  # noqa: F401

MODULES = (ols, accumulate, editing, distribution, minnorm, ridge, scaling)
"""Every module whose ``results()`` the registry collects, in the order ``bound`` lists them."""


@functools.cache
def results() -> dict[str, Result]:
    """All results by name (built once; sympy derives the sums, limits and recurrences here)."""
    out: dict[str, Result] = {}
    for module in MODULES:
        for result in module.results():
            require(result.name not in out, f"theory result {result.name!r} is defined twice")
            out[result.name] = result
    return out


def results_for(regime: str, edit_op: Optional[str] = None, mask: Optional[str] = None,
                estimator: str = "ols") -> list[Result]:
    """Results describing ``regime`` (plus the one-fit result) for ``estimator`` (ols, minnorm, ridge; see
    :func:`estimator_of`), filtered by edit_op / mask when given."""
    return [r for r in results().values()
            if r.regime in (None, regime) and r.estimator == estimator
            and (edit_op is None or r.edit_op in (None, edit_op))
            and (mask is None or not r.masks or mask in r.masks)]


def estimator_of(ridge: float, T: int, d: int) -> str:
    """``ols`` (ridge 0, T > d + 1), ``minnorm`` (ridge 0, T < d - 1) or ``ridge`` (ridge > 0; also the limit
    formulas used at ridge 0 between those)."""
    if ridge == 0 and T > d + 1:
        return "ols"
    return "minnorm" if ridge == 0 and T < d - 1 else "ridge"


def relative_error_curve(regime: str, fractions=None, *, edit_op: str = "perturb", T=None, d=None,
                         mask: str = "random") -> np.ndarray:
    """E_test(w_n) / (sigma^2 d/(T-d-1)) for n = 0..N, N = len(fractions).

    * ``replace``: n + 1; ``accumulate`` (fixed design): sum_{k=1}^{n+1} k^-2 (fractions only set N);
    * ``edit`` with ``edit_op="perturb"``: 1 + sum_{i<=n} p_i, exact, any mask independent of the data
      (``fractions[i]`` = mean of diag M_{i+1}^2, the edit fraction for 0/1 masks);
    * ``edit`` with ``edit_op="resample"`` and ``mask="random"`` (masks drawn afresh each generation):
      at T, d the finite-T recursion RESAMPLE_RANDOM_FINITE_STEP (first order in 1/T, exact at n = 1; the
      proportional limit of RESAMPLE_RANDOM_STEP is :func:`.editing.resample_random_curve` without T), and
      the d/T -> 0 limit when T, d are None;
    * ``edit`` with ``edit_op="resample"`` and ``mask="disjoint"`` (each position edited at most once):
      the proportional limit at gamma = d/T of the cavity process RESAMPLE_DISJOINT_CAVITY
      (:func:`.editing.resample_disjoint_cavity`); with T, d None the d/T -> 0 limit 1 + 2 x_n + y_n of
      RESAMPLE_DISJOINT_STEP.
    """
    require(fractions is not None, "relative_error_curve needs fractions (their number sets N)")
    fractions = np.asarray(fractions, dtype=np.float64).ravel()
    require(bool(np.all((fractions >= 0) & (fractions <= 1))), "fractions must lie in [0, 1]")
    generations = np.arange(len(fractions) + 1)
    if regime in ("replace", "accumulate"):
        ols_result = {r.name: r for r in ols.results()}[regime]  # not results(): no editing derivations (~20 s)
        rel = sp.lambdify(n, ols_result.relative.rewrite(sp.zeta), modules=["scipy", "numpy"])
        return np.asarray(rel(generations), dtype=np.float64) * np.ones(len(generations))
    require(regime == "edit", f"regime={regime!r}: relative_error_curve knows replace, accumulate, edit")
    return editing.relative_edit_curve(fractions, edit_op, T, d, mask)


def theory_kind(cfg: SimConfig) -> Optional[str]:
    """"exact", "limit" (proportional limit at gamma = d/T; resample with random masks: its first-order finite-T
    correction, remainder O(1/T^2)) or None: what :func:`expected_relative_error` gives
    (OLS configurations only; ridge and minimum-norm: :func:`.ridge.expected_error`)."""
    if not cfg.is_ols:
        return None
    if cfg.regime in ("replace", "accumulate"):
        return "exact"
    if cfg.regime != "edit" or cfg.mask == "threshold":
        return None
    if cfg.edit_op == "perturb":
        return "exact"
    return "limit" if cfg.mask in ("random", "disjoint") else None


def expected_relative_error(cfg: SimConfig) -> Optional[np.ndarray]:
    """E_test(w_n)/BASE for n = 0..cfg.generations from :func:`relative_error_curve` with the realised
    fractions (fresh-design accumulate: accumulate-fresh), or None where no finite-T closed form exists
    (accumulate-subsample has only a d/T -> 0 limit; resample with file masks and threshold masks have none)."""
    kind = theory_kind(cfg)
    if kind is None:
        return None
    if cfg.regime == "accumulate" and cfg.design == "fresh":
        values = dict(sigma=1.0, T=cfg.T, d=cfg.d)
        return np.array([evaluate(results()["accumulate-fresh"], n=g, **values) / evaluate(results()["ols"], **values)
                         for g in range(cfg.generations + 1)])
    if cfg.regime != "edit":
        return relative_error_curve(cfg.regime, np.zeros(cfg.generations))
    return relative_error_curve("edit", realised_fractions(cfg), edit_op=cfg.edit_op, T=cfg.T, d=cfg.d,
                                mask=cfg.mask)


def relative_bounds() -> dict[str, float]:
    """The finite bounds in units of BASE: accumulate pi^2/6; perturb with sum p_i <= 1: 2 (the paper's);
    resample with sum p_i <= 1 (d/T -> 0): 2e - 1 (the proven supremum) and e^2 (Gronwall, weaker)."""
    r = results()
    return {
        "accumulate-sup": float(r["accumulate-sup"].relative),
        "edit-perturb-paper-bound": float(r["edit-perturb-paper-bound"].relative),
        "edit-resample-disjoint-sup": float(r["edit-resample-disjoint-sup"].relative.subs(Q, 1)),
        "edit-resample-gronwall": float(r["edit-resample-gronwall"].relative.subs(Q, 1)),
    }

