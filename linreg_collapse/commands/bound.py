"""``linreg-collapse bound``: the symbolic test-error results of a regime, pretty and LaTeX, with their values."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..config import APPLIES_WHEN, COVARIANCES, EDIT_OPS, MASKS, REGIMES, WSTARS, SimConfig
from ..errors import require
from .simulate import given_flags, record_given, refuse_inapplicable

if TYPE_CHECKING:
    from ..theory import Result

DEFAULTS = SimConfig()
# bound's --mask may be left open (every schedule); --total-fraction is the Q of the edit budget bounds.
APPLIES = {**APPLIES_WHEN, "total_fraction": {"regime": ("edit",)}}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bound", help="print the closed-form test error of a regime (pretty, LaTeX) and its value",
        description="Print every symbolic result for a regime with its assumptions, as a pretty formula and as "
                    "LaTeX, and its value at the given T, d, sigma, generation n and edit parameters.")
    record_given(p)
    p.add_argument("--regime", choices=REGIMES, required=True)
    p.add_argument("--T", type=int, default=DEFAULTS.T, help=f"samples per generation (default {DEFAULTS.T})")
    p.add_argument("--d", type=int, default=DEFAULTS.d, help=f"dimension (default {DEFAULTS.d})")
    p.add_argument("--sigma", type=float, default=1.0, help="label noise std (default 1)")
    p.add_argument("--generation", type=int, default=1, help="generation n the value is taken at (default 1)")
    p.add_argument("--edit-op", choices=EDIT_OPS, help="edit: only results for this proposal")
    p.add_argument("--mask", choices=MASKS, help="edit: only results for this mask schedule")
    p.add_argument("--edit-fraction", type=float, default=0.1, help="p = q: fraction edited per generation (0.1)")
    p.add_argument("--decay", type=float, default=0.5, help="eta of the disjoint schedule p eta^(n-1) (0.5)")
    p.add_argument("--total-fraction", type=float, default=1.0, help="Q = sum of the edit fractions (1)")
    p.add_argument("--level", type=float, default=0.95,
                   help="probability level of the error quantiles and tail bounds (0.95)")
    p.add_argument("--ridge", type=float, default=0.0,
                   help="lambda: ridge / minimum-norm results (proportional-limit values) instead of OLS (0)")
    p.add_argument("--cov", choices=COVARIANCES, default="identity", help="Sigma for ridge values (identity)")
    p.add_argument("--alpha", type=float, default=1.0, help="power-law exponent of --cov powerlaw (1)")
    p.add_argument("--wstar", choices=WSTARS, default="flat", help="w* for ridge values (flat)")
    p.add_argument("--wstar-exponent", type=float, default=None, metavar="DELTA",
                   help="source exponent of --wstar powerlaw")
    p.set_defaults(run=run)


def values_from_args(args: argparse.Namespace) -> dict[str, float]:
    """Symbol values for :func:`~linreg_collapse.theory.evaluate` (validated: InputError on bad input, or on
    an editing flag given for a regime or mask schedule it does not apply to)."""
    refuse_inapplicable(args, given_flags(args), APPLIES)
    cfg = SimConfig(regime=args.regime, T=args.T, d=args.d, sigma=args.sigma, edit_fraction=args.edit_fraction,
                    decay=args.decay, ridge=args.ridge, cov=args.cov, alpha=args.alpha, wstar=args.wstar,
                    wstar_exponent=args.wstar_exponent)  # validates
    require(args.generation >= 0, f"--generation {args.generation} must be >= 0")
    require(0 <= args.total_fraction <= 1, f"--total-fraction {args.total_fraction} must lie in [0, 1]")
    require(0 < args.level < 1, f"--level {args.level} must lie in (0, 1)")
    k = round(args.edit_fraction * args.T)
    return dict(sigma=args.sigma, T=args.T, d=args.d, n=args.generation, m=args.generation + 1,
                p=args.edit_fraction, q=k / args.T, k=k, eta=args.decay, gamma=args.d / args.T,
                Q=args.total_fraction, level=args.level, ridge=args.ridge, cov=args.cov, alpha=args.alpha,
                wstar=args.wstar, wstar_exponent=cfg.wstar_exponent, delta=cfg.delta)


def describe(result: Result, values: dict[str, float]) -> str:
    """The block printed for one result."""
    import sympy as sp

    from ..theory import evaluate

    if result.kind == "rate":
        at = {"alpha": values["alpha"], "DELTA": values["delta"]}
        law = result.expr.subs({sp.Symbol(name, positive=True): v for name, v in at.items()})
        value = f"{law}   (alpha={at['alpha']:g}, DELTA={at['DELTA']:g}; up to constant factors)"
    elif result.value is not None:
        number = result.value(values)
        value = "none for these settings (outside the assumptions)" if number is None else \
            f"{number:.6g}   (numerical: T={values['T']:g}, d={values['d']:g}, sigma={values['sigma']:g}, " \
            f"n={values['n']:g}, ridge={values['ridge']:g}, cov={values['cov']}, wstar={values['wstar']})"
    elif result.expr.has(sp.Indexed):
        value = "depends on every fraction p_1..p_n (theory.relative_error_curve); constant p: edit-perturb-random"
    else:
        used = ", ".join(f"{s.name}={values[s.name]:g}" for s in sorted(result.expr.free_symbols, key=str))
        value = f"{evaluate(result, **values):.6g}   ({used})"
    if result.estimator == "ols":
        lead, pretty = "E_test = sigma^2 d/(T-d-1) *", sp.pretty(result.relative, use_unicode=False, wrap_line=False)
    else:
        lead, pretty = "E_test =", sp.pretty(result.expr, use_unicode=False, wrap_line=False)
    return "\n".join([f"== {result.name} [{result.kind}]", f"assumptions: {result.assumptions}",
                      lead, pretty, f"LaTeX: {sp.latex(result.expr)}", f"value: {value}"])


def run(args: argparse.Namespace) -> int:
    values = values_from_args(args)
    from ..theory import estimator_of, evaluate, results_for

    estimator = estimator_of(args.ridge, args.T, args.d)
    chosen = results_for(args.regime, args.edit_op, args.mask, estimator)
    unit = (f"BASE = sigma^2 d/(T-d-1) = {evaluate(chosen[0], **values):.6g}" if estimator == "ols"
            else f"estimator {estimator} (ridge={args.ridge:g}), absolute errors")
    print(f"# regime={args.regime} T={args.T} d={args.d} sigma={args.sigma:g} n={args.generation}; "
          f"generation 0 = the fit on real data; {unit}")
    for result in chosen:
        print()
        print(describe(result, values))
    if len(chosen) == 1:
        what = f"regime {args.regime!r}" + "".join(
            f" with {name} {value!r}" for name, value in (("--edit-op", args.edit_op), ("--mask", args.mask)) if value)
        print(f"\n(no closed form for {what} beyond generation 0)")
    return 0
