"""``linreg-collapse simulate``: run one regime and print its per-generation table."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import (APPLIES_WHEN, COVARIANCES, DEFAULT_WSTAR_EXPONENT, DESIGNS, DTYPES, EDIT_OPS, MASKS, REGIMES,
                      SAMPLERS, WSTARS, SimConfig, inapplicable, load_masks)
from ..errors import InputError
from ..io import check_writable, write_json
from ..memory import check_fits
from ..progress import add_progress_argument

if TYPE_CHECKING:
    from ..simulate import SimResult

DEFAULTS = SimConfig()
GIVEN = "given_flags"  # attribute of the parsed namespace: dests of the flags given on the command line
FLAG_NAMES = {"masks": "--masks-file"}  # SimConfig fields whose flag is not --<field with dashes>


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate one retraining regime and print the error per generation",
        description="Simulate a regression model (OLS, ridge or minimum-norm) retrained generation after "
                    "generation; print mean / base per generation (base = sigma^2 d/(T-d-1) for OLS, the exact "
                    "generation-0 error where one exists, else absolute errors); generation 0 = the fit on real data.")
    add_config_arguments(p)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON (atomically); a rerun whose "
                   "file already holds this configuration's finished result prints it without recomputing")
    add_progress_argument(p)
    p.set_defaults(run=run)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The SimConfig flags, shared by every command that takes one configuration.

    Every flag added to ``p`` afterwards is recorded in the namespace when given (see :func:`record_given`),
    so :func:`config_from_args` can refuse flags that do not apply (config.APPLIES_WHEN).
    """
    record_given(p)
    d = DEFAULTS
    p.add_argument("--regime", choices=REGIMES, default=d.regime)
    p.add_argument("--T", type=int, default=d.T, help=f"samples per generation (default {d.T})")
    p.add_argument("--d", type=int, default=d.d, help=f"dimension (default {d.d})")
    p.add_argument("--sigma", type=float, default=d.sigma, help=f"label noise std (default {d.sigma})")
    p.add_argument("--generations", type=int, default=d.generations, help=f"N (default {d.generations})")
    p.add_argument("--trials", type=int, default=d.trials, help=f"independent trials (default {d.trials})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--design", choices=DESIGNS, default=d.design)
    p.add_argument("--cov", choices=COVARIANCES, default=d.cov)
    p.add_argument("--alpha", type=float, default=d.alpha, help="power-law exponent for --cov powerlaw")
    p.add_argument("--edit-op", choices=EDIT_OPS, default=d.edit_op)
    p.add_argument("--mask", choices=MASKS, default=d.mask)
    p.add_argument("--edit-fraction", type=float, default=d.edit_fraction, help="p (random, disjoint)")
    p.add_argument("--decay", type=float, default=d.decay, help="eta: disjoint fraction p eta^(n-1)")
    p.add_argument("--threshold", type=float, default=d.threshold, help="tau: edit iff |residual| <= tau sigma")
    p.add_argument("--masks-file", metavar="PATH", help="masks [generations, T] in [0, 1] (.npy, .csv or text)")
    p.add_argument("--dtype", choices=DTYPES, default=d.dtype)
    p.add_argument("--sampler", choices=SAMPLERS, default=d.sampler,
                   help="stats: draw X^T X and X^T Y from their exact law (replace, accumulate; faster); "
                        "labels: every label, draw for draw like a NumPy loop (default: stats where it applies)")

    p.add_argument("--ridge", type=float, default=d.ridge,
                   help="lambda >= 0: w = (X^T X + lambda N I)^{-1} X^T Y on N samples; 0 = OLS (T >= d) or "
                        "minimum-norm (T < d) (default 0)")
    p.add_argument("--wstar", choices=WSTARS, default=d.wstar,
                   help="w* in Sigma's eigenbasis, unit norm: flat (1/sqrt(d) each) or powerlaw (k^(-DELTA/2))")
    p.add_argument("--wstar-exponent", type=float, default=None, metavar="DELTA",
                   help=f"source exponent DELTA of --wstar powerlaw (default {DEFAULT_WSTAR_EXPONENT:g})")
    p.add_argument("--allow-infinite-mean", action="store_true",
                   help="run ridge 0 with d-1 <= T <= d+1, where the mean error is infinite (min-norm / OLS fit)")


class _GivenStore(argparse._StoreAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        setattr(namespace, GIVEN, getattr(namespace, GIVEN, frozenset()) | {self.dest})


class _GivenStoreTrue(argparse._StoreTrueAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        setattr(namespace, GIVEN, getattr(namespace, GIVEN, frozenset()) | {self.dest})


def record_given(p: argparse.ArgumentParser) -> None:
    """Make the plain and ``store_true`` flags added to ``p`` from now on record, when given on the command
    line, their dest in ``args.given_flags``: "given explicitly" as against "left at its default"."""
    p.register("action", None, _GivenStore)
    p.register("action", "store", _GivenStore)
    p.register("action", "store_true", _GivenStoreTrue)


def given_flags(args: argparse.Namespace) -> frozenset:
    """Dests of the flags given on the command line (see :func:`record_given`)."""
    return getattr(args, GIVEN, frozenset())


def flag_name(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def refuse_inapplicable(settings, given, table: dict = APPLIES_WHEN) -> None:
    """InputError naming the first flag of ``given`` (dests) that has no effect under ``settings``."""
    found = inapplicable(settings, given, table)
    if found is not None:
        field, setting, allowed = found
        raise InputError(f"{flag_name(field)} has no effect here: it applies only with {flag_name(setting)} "
                         f"{allowed} (this run has {flag_name(setting)} {getattr(settings, setting)}); drop it")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """A validated SimConfig from parsed flags (raises InputError on bad input, or on a flag given
    explicitly that the configuration does not use)."""
    names = {f.name for f in dataclasses.fields(SimConfig)} - {"masks"}
    refuse_inapplicable(args, {"masks" if k == "masks_file" else k for k in given_flags(args)})
    masks = None if args.masks_file is None else load_masks(args.masks_file)
    return SimConfig(masks=masks, **{k: getattr(args, k) for k in names})


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    check_fits(cfg)  # before anything is written or compiled
    from ..simulate import simulate, stored_result

    if args.json:
        check_writable("--json", args.json)
        stored = stored_result(args.json, cfg)
        if stored is not None:
            print(f"reused {args.json}: it holds the finished result of this configuration "
                  "(delete it to recompute)", file=sys.stderr)
            print(format_table(stored))
            return 0
    checkpoint = f"{args.json}.partial.npz" if args.json else None
    result = simulate(cfg, progress=not args.no_progress, checkpoint=checkpoint)
    print(format_table(result))
    if args.json:
        write_json(args.json, result.to_json_dict())
        Path(checkpoint).unlink(missing_ok=True)
    return 0


def theory_note(cfg: SimConfig) -> str:
    """What theory says about this run's mean / base, or where to find it (``bound``)."""
    if not cfg.is_ols:
        return f"theory: linreg-collapse bound --regime {cfg.regime} --ridge {cfg.ridge:g} --T {cfg.T} --d {cfg.d}"
    if cfg.regime == "replace":
        return "theory: mean/base = n + 1"
    if cfg.regime == "accumulate" and cfg.design == "fixed":
        return "theory: mean/base = sum_{k=1}^{n+1} 1/k^2 < pi^2/6"
    if cfg.regime == "edit" and cfg.edit_op == "perturb" and cfg.mask in ("random", "disjoint"):
        return "theory: mean/base = 1 + sum of the edit fractions so far"
    command = f"linreg-collapse bound --regime {cfg.regime}"
    if cfg.regime == "edit":
        command += f" --edit-op {cfg.edit_op} --mask {cfg.mask}"
    return f"theory: {command}"


def format_table(result: SimResult) -> str:
    """Per-generation table in the unit of :func:`~linreg_collapse.simulate.base_unit`: mean, the 95% interval,
    the median and, when editing, the edit fraction."""
    from ..simulate import base_unit

    cfg = result.config
    base, unit = base_unit(cfg)
    scaled = base is not None and base > 0  # sigma = 0 (OLS): every error is 0, print it unscaled
    scale, name = (base, "/base") if scaled else (1.0, "")
    w = "flat" if cfg.wstar == "flat" else f"powerlaw(DELTA={cfg.delta:g})"
    lines = [f"# regime={cfg.regime} T={cfg.T} d={cfg.d} sigma={cfg.sigma:g} trials={cfg.trials} "
             f"design={cfg.design} cov={cfg.cov}" + (f"(alpha={cfg.alpha:g})" if cfg.cov == "powerlaw" else "")
             + f" ridge={cfg.ridge:g} wstar={w}"
             + (f" edit_op={cfg.edit_op} mask={cfg.mask}" if cfg.regime == "edit" else ""),
             (f"# base = {unit} = {base:.6g}" if scaled else f"# unit: {unit if base is None else 'absolute'}")
             + f"; generation 0 = fit on real data; {theory_note(cfg)}",
             f"{'generation':>10}  {'mean' + name:>10}  {'95% interval' + name:>22}  {'median' + name:>12}"
             + (f"  {'edit fraction':>13}" if result.edit_fraction is not None else "")]
    for n in result.generation:
        row = (f"{n:>10d}  {result.mean[n] / scale:>10.4f}  "
               f"[{result.ci_low[n] / scale:>9.4f}, {result.ci_high[n] / scale:>9.4f}]  "
               f"{result.median[n] / scale:>12.4f}")
        if result.edit_fraction is not None:
            row += f"  {result.edit_fraction[n]:>13.4f}"
        lines.append(row)
    return "\n".join(lines)
