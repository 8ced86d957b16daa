"""Shared pieces of the theory: the symbols, BASE, the :class:`Result` record, and numeric evaluation.

Every result is a sympy expression of the absolute test error E||w_n - w*||^2_Sigma in the symbols
``sigma, T, d, n`` (and ``p, eta, q, k, gamma, Q`` where a result needs them); ``BASE`` is
sigma^2 d/(T-d-1).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Optional

import numpy as np
import sympy as sp

from ..errors import require


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
    d/T -> gamma, or as d/T -> 0 where it says so), ``bound`` (an upper bound) or ``rate`` (equal up to a
    constant factor in an asymptotic regime it states: a scaling law).
    ``regime``/``edit_op``/``masks`` name the simulator settings it describes (None or empty = any);
    ``estimator`` the fit: ``ols`` (ridge 0, T >= d + 2), ``minnorm`` (ridge 0, T <= d - 2) or ``ridge``.
    """

    name: str
    regime: Optional[str]
    kind: str
    expr: sp.Expr
    assumptions: str
    edit_op: Optional[str] = None
    masks: tuple[str, ...] = ()
    estimator: str = "ols"
    value: Optional[Callable[[dict], Optional[float]]] = dataclasses.field(default=None, compare=False)
    """A numeric evaluator for results that are not closed forms (fixed points, integrals): values -> E_test,
    None where the values break the result's assumptions."""

    @property
    def relative(self) -> sp.Expr:
        """The result in units of BASE."""
        return sp.simplify(self.expr / BASE)


def generic_branch(expr: sp.Expr) -> sp.Expr:
    """The generic branch of every Piecewise sympy returns (e.g. eta != 1 in a geometric sum)."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[-1][0])


def limit_geometric(expr: sp.Expr, ratio: sp.Symbol) -> sp.Expr:
    """lim_{n->oo} of ``expr`` for 0 < ratio < 1, via ratio = 1/(1 + c), c > 0 (sympy needs the sign)."""
    return sp.simplify(sp.limit(expr.subs(ratio, 1 / (1 + c)), n, sp.oo).subs(c, 1 / ratio - 1))


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


def iterate_recurrence(step: sp.Matrix, state: tuple, start: tuple, fractions, ratio: float, error) -> np.ndarray:
    """Error/BASE after each generation of a recurrence (index 0 = the real-data fit)."""
    advance = _step_function(step, state)
    error_of = sp.lambdify([state], error, modules="numpy")
    s, out = start, [float(error_of(start))]
    for fraction in fractions:
        s = advance(s, float(fraction), ratio)
        out.append(float(error_of(s)))
    return np.asarray(out)


GAUSSIAN = ("rows of X i.i.d. N(0, Sigma), any Sigma; noise N(0, sigma^2 I) independent across generations; "
            "T > d + 1")
"""The assumptions every OLS result shares."""
