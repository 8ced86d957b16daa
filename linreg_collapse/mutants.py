"""Registered mutations of the theory: plausible mistakes that ``verify --mutants`` must catch.

A :class:`Mutant` replaces some results' expressions (a function of the original :class:`Result` keyed by
result name) and/or some recurrences of :mod:`.theory.editing`; :func:`applied` swaps them in for the
duration of a ``with`` block (``theory.results`` and the module's step matrices), editing no source file.
Everything that reads the theory through ``theory.results()`` and ``relative_error_curve`` sees the mutation.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable

import sympy as sp

from . import theory
from .theory import editing
from .theory.core import BASE, Q, Result, T, d, gamma, k, n, p, q, sigma
from .theory.distribution import BETA_QUANTILE, error_quantile, level

Change = Callable[[Result], sp.Expr]


@dataclasses.dataclass(frozen=True)
class Mutant:
    """``results``: (result name, new expression from the original result); ``steps``: (attribute of
    :mod:`.theory.editing`, replacement step matrix)."""

    name: str
    mistake: str
    results: tuple[tuple[str, Change], ...] = ()
    steps: tuple[tuple[str, sp.ImmutableMatrix], ...] = ()


@contextlib.contextmanager
def applied(mutant: Mutant):
    """Within the block, ``theory.results()`` and the editing recurrences are the mutated ones."""
    original = theory.results
    table = dict(original())
    for name, change in mutant.results:
        table[name] = dataclasses.replace(table[name], expr=change(table[name]))
    saved = {attr: getattr(editing, attr) for attr, _ in mutant.steps}
    theory.results = lambda: table
    for attr, step in mutant.steps:
        setattr(editing, attr, step)
    try:
        yield
    finally:
        theory.results = original
        for attr, step in saved.items():
            setattr(editing, attr, step)


def _row(step: sp.ImmutableMatrix, index: int, expr: sp.Expr) -> sp.ImmutableMatrix:
    rows = list(step)
    rows[index] = expr
    return sp.ImmutableMatrix(rows)


def registry() -> tuple[Mutant, ...]:
    """Every registered mutant (one mistake each)."""
    (r,) = editing.PERTURB_STATE
    a, b = editing.RESAMPLE_RANDOM_STATE
    x, y, l = editing.RESAMPLE_DISJOINT_STATE
    random_step, disjoint_step = editing.RESAMPLE_RANDOM_STEP, editing.RESAMPLE_DISJOINT_STEP
    cavity = editing.RESAMPLE_DISJOINT_CAVITY
    h2 = lambda upper: sp.harmonic(upper, 2)  # noqa: E731
    return (
        Mutant("ols-d/(T-d)", "d/(T-d) instead of d/(T-d-1)", (("ols", lambda _: sigma**2 * d / (T - d)),)),
        Mutant("replace-n", "n instead of n+1", (("replace", lambda _: n * BASE),)),
        Mutant("replace-paper-m+1", "paper's m counted as n + 2", (("replace-paper-convention",
                                                                     lambda res: res.expr + BASE),)),
        Mutant("accumulate-1/k", "wrong exponent: sum 1/k", (("accumulate", lambda _: sp.harmonic(n + 1) * BASE),)),
        Mutant("accumulate-to-n", "sum to n instead of n+1", (("accumulate", lambda _: h2(n) * BASE),)),
        Mutant("accumulate-sup-3/2", "bound constant made smaller (pi^2/6 -> 3/2)",
               (("accumulate-sup", lambda _: sp.Rational(3, 2) * BASE),)),
        Mutant("accumulate-fresh-as-fixed", "dropped finite-T term: fresh design as fixed (1/k^2)",
               (("accumulate-fresh", lambda _: h2(n + 1) * BASE),)),
        Mutant("accumulate-fresh-sup-small", "bound made smaller: the supremum of the fresh sum to 1 + 1/4",
               (("accumulate-fresh-sup", lambda _: sp.Rational(5, 4) * BASE),)),
        Mutant("subsample-2H-1", "wrong constants: 2 sum k^-2 - 1", (("accumulate-subsample",
                                                                      lambda _: (2 * h2(n + 1) - 1) * BASE),)),
        Mutant("subsample-plateau-pi^2/6", "limit made smaller (accumulate's pi^2/6)",
               (("accumulate-subsample-plateau", lambda _: sp.pi**2 / 6 * BASE),)),
        Mutant("perturb-random-n+1", "(n+1) p instead of n p", (("edit-perturb-random",
                                                                 lambda _: (1 + (n + 1) * p) * BASE),)),
        Mutant("perturb-step-q^2", "wrong exponent: r + q^2",
               steps=(("PERTURB_STEP", sp.ImmutableMatrix([r + q**2])),)),
        Mutant("perturb-bound-3/2", "bound constant made smaller (2 -> 3/2)",
               (("edit-perturb-paper-bound", lambda _: sp.Rational(3, 2) * BASE),)),
        Mutant("resample-first-(d/T)^2", "dropped finite-T term: E H_tt^2 -> (d/T)^2",
               (("edit-resample-first", lambda _: editing.resample_first_generation((d / T) ** 2) * BASE),)),
        Mutant("resample-first-sign", "sign of the (d+2)/(T+2) correction",
               (("edit-resample-first", lambda res: res.expr + 2 * (k / T) * (d + 2) / (T + 2) * BASE),)),
        Mutant("resample-random-b", "random-mask b-update without (1 - q gamma)",
               steps=(("RESAMPLE_RANDOM_STEP", _row(random_step, 1, b * (1 - q) + q)),)),
        Mutant("resample-random-gamma0", "proportional limit taken at gamma = 0",
               steps=(("RESAMPLE_RANDOM_STEP", random_step.subs(gamma, 0)),)),
        Mutant("resample-second-limit-moments", "dropped finite-T terms: nu_j -> (1 - d/T)^j at generation 2",
               (("edit-resample-second", lambda _: editing.resample_random_reduction(2).subs(
                   {editing.NU[j]: (1 - d / T) ** j for j in range(4)}) * BASE),)),
        Mutant("resample-random-finite-as-limit", "dropped finite-T terms: the proportional limit used at finite T",
               steps=(("RESAMPLE_RANDOM_FINITE_STEP", editing.RESAMPLE_RANDOM_FINITE_STEP.applyfunc(
                   lambda row: sp.limit(row, T, sp.oo))),)),
        Mutant("resample-disjoint-no-q^2", "dropped q^2 term of the x update",
               steps=(("RESAMPLE_DISJOINT_STEP", _row(disjoint_step, 0, x + q * (1 + x) - q * (l - 1))),)),
        Mutant("disjoint-sup-2e^Q", "supremum made larger (2e^Q - 1 -> 2e^Q)",
               (("edit-resample-disjoint-sup", lambda _: 2 * sp.exp(Q) * BASE),)),
        Mutant("disjoint-sup-e^Q+1", "supremum made smaller (2e^Q - 1 -> e^Q + 1)",
               (("edit-resample-disjoint-sup", lambda _: (sp.exp(Q) + 1) * BASE),)),
        Mutant("gronwall-e^Q", "bound constant made smaller (e^{2Q} -> e^Q)",
               (("edit-resample-gronwall", lambda _: sp.exp(Q) * BASE),)),
        Mutant("quantile-dof-T-d-1", "chi^2_{T-d-1} instead of chi^2_{T-d+1}",
               (("accumulate-quantile", lambda _: sp.harmonic(n + 1, 2) * sigma**2 * _odds(
                   BETA_QUANTILE(d / 2, (T - d - 1) / 2, level))),)),
        Mutant("accumulate-quantile-replace-scale", "accumulate's law with replace's scale n + 1",
               (("accumulate-quantile", lambda _: error_quantile(n + 1)),)),
        Mutant("resample-disjoint-no-memory", "disjoint-mask cavity process without its memory term (naive mean field)",
               steps=(("RESAMPLE_DISJOINT_CAVITY", _row(cavity, 0, cavity[0].subs(sp.Symbol("mem"), 0))),)),
    )


def _odds(beta: sp.Expr) -> sp.Expr:
    return beta / (1 - beta)
