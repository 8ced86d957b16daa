"""``linreg-collapse simulate``: run one regime and print its per-generation table."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from ..config import (COVARIANCES, DEFAULT_WSTAR_EXPONENT, DESIGNS, DTYPES, EDIT_OPS, MASKS, REGIMES, WSTARS,
                      SimConfig, load_masks)
from ..errors import require
from ..io import check_writable, write_json
from ..simulate import SimResult, base_unit, simulate

DEFAULTS = SimConfig()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate one retraining regime and print the error per generation",
        description="Simulate a regression model (OLS, ridge or minimum-norm) retrained generation after "
                    "generation; print mean / base per generation (base = sigma^2 d/(T-d-1) for OLS, the exact "
                    "generation-0 error where one exists, else absolute errors); generation 0 = the fit on real data.")
    add_config_arguments(p)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON (atomically)")
    p.set_defaults(run=run)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """The SimConfig flags, shared by every command that takes one configuration."""
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
    p.add_argument("--ridge", type=float, default=d.ridge,
                   help="lambda >= 0: w = (X^T X + lambda N I)^{-1} X^T Y on N samples; 0 = OLS (T >= d) or "
                        "minimum-norm (T < d) (default 0)")
    p.add_argument("--wstar", choices=WSTARS, default=d.wstar,
                   help="w* in Sigma's eigenbasis, unit norm: flat (1/sqrt(d) each) or powerlaw (k^(-DELTA/2))")
    p.add_argument("--wstar-exponent", type=float, default=None, metavar="DELTA",
                   help=f"source exponent DELTA of --wstar powerlaw (default {DEFAULT_WSTAR_EXPONENT:g})")
    p.add_argument("--allow-infinite-mean", action="store_true",
                   help="run ridge 0 with d-1 <= T <= d+1, where the mean error is infinite (min-norm / OLS fit)")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """A validated SimConfig from parsed flags (raises InputError on bad input)."""
    masks = None
    if args.masks_file is not None:
        require(args.regime == "edit" and args.mask == "file",
                "--masks-file needs --regime edit --mask file")
        masks = load_masks(args.masks_file)
    names = {f.name for f in dataclasses.fields(SimConfig)} - {"masks"}
    return SimConfig(masks=masks, **{k: getattr(args, k) for k in names})


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.json:
        check_writable("--json", args.json)
    checkpoint = f"{args.json}.partial.npz" if args.json else None
    result = simulate(cfg, progress=True, checkpoint=checkpoint)
    print(format_table(result))
    if args.json:
        write_json(args.json, result.to_json_dict())
        Path(checkpoint).unlink(missing_ok=True)
    return 0


def format_table(result: SimResult) -> str:
    """Per-generation table in the unit of :func:`~linreg_collapse.simulate.base_unit`: mean, the 95% interval,
    the median and, when editing, the edit fraction."""
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
             + "; generation 0 = fit on real data" + (" (replace: mean/base = n+1)" if cfg.is_ols else ""),
             f"{'generation':>10}  {'mean' + name:>10}  {'95% interval' + name:>22}  {'median' + name:>12}"
             + (f"  {'edit fraction':>13}" if result.edit_fraction is not None else "")]
    for n in result.generation:
        row = (f"{n:>10d}  {result.mean[n] / scale:>10.4f}  "
               f"[{result.ci_low[n] / scale:>9.4f}, {result.ci_high[n] / scale:>9.4f}]  {result.median[n] / scale:>12.4f}")
        if result.edit_fraction is not None:
            row += f"  {result.edit_fraction[n]:>13.4f}"
        lines.append(row)
    return "\n".join(lines)
