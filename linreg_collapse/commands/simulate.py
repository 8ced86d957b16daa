"""``linreg-collapse simulate``: run one regime and print its per-generation table."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from ..config import COVARIANCES, DESIGNS, DTYPES, EDIT_OPS, MASKS, REGIMES, SAMPLERS, SimConfig, load_masks
from ..errors import require
from ..io import check_writable, write_json
from ..simulate import SimResult, simulate

DEFAULTS = SimConfig()


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulate", help="simulate one retraining regime and print the error per generation",
        description="Simulate OLS retrained generation after generation; print mean / base per generation, "
                    "base = sigma^2 d/(T-d-1), generation 0 = the fit on real data.")
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
    p.add_argument("--sampler", choices=SAMPLERS, default=d.sampler,
                   help="stats: draw X^T X and X^T Y from their exact law (replace, accumulate; faster); "
                        "labels: every label, draw for draw like a NumPy loop (default: stats where it applies)")


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
    """Per-generation table: mean / base, the 95% interval / base and, when editing, the edit fraction."""
    cfg, base = result.config, result.base
    lines = [f"# regime={cfg.regime} T={cfg.T} d={cfg.d} sigma={cfg.sigma:g} trials={cfg.trials} "
             f"design={cfg.design} cov={cfg.cov}"
             + (f" edit_op={cfg.edit_op} mask={cfg.mask}" if cfg.regime == "edit" else ""),
             f"# base = sigma^2 d/(T-d-1) = {base:.6g}; generation 0 = fit on real data (replace: mean/base = n+1)",
             f"{'generation':>10}  {'mean/base':>10}  {'95% interval / base':>22}"
             + (f"  {'edit fraction':>13}" if result.edit_fraction is not None else "")]
    scale = base if base > 0 else 1.0  # sigma = 0: every error is 0, print it unscaled
    for n in result.generation:
        row = (f"{n:>10d}  {result.mean[n] / scale:>10.4f}  "
               f"[{result.ci_low[n] / scale:>9.4f}, {result.ci_high[n] / scale:>9.4f}]")
        if result.edit_fraction is not None:
            row += f"  {result.edit_fraction[n]:>13.4f}"
        lines.append(row)
    return "\n".join(lines)
