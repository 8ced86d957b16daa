"""Retraining without editing: one OLS fit, ``replace`` and ``accumulate`` (fixed design)."""

from __future__ import annotations

import sympy as sp

from .core import BASE, GAUSSIAN, Result, k, m_paper, n


def results() -> list[Result]:
    """One fit, replace (both countings) and fixed-design accumulate with its supremum."""
    accumulate = sp.summation(1 / k**2, (k, 1, n + 1)) * BASE
    return [
        Result("ols", None, "exact", BASE, f"one OLS fit on real data; {GAUSSIAN}"),
        Result("replace", "replace", "exact", (n + 1) * BASE,
               f"design fixed or fresh; {GAUSSIAN}. Counting: generation 0 = the fit on real data, so "
               "generation n has error (n+1) BASE; the paper writes BASE * n counting the first model as 1 "
               "(paper's n = our n + 1)"),
        Result("replace-paper-convention", "replace", "exact", m_paper * BASE,
               "replace in the paper's counting: m = n + 1 counts the first model as 1 (same values as replace)"),
        Result("accumulate", "accumulate", "exact", accumulate,
               f"fixed design (every generation labels the same X); {GAUSSIAN}"),
        Result("accumulate-sup", "accumulate", "bound", sp.limit(accumulate, n, sp.oo),
               "supremum over n of the fixed-design accumulate error"),
    ]
