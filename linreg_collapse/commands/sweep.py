"""``linreg-collapse sweep GRID.toml --out DIR``: every configuration of a grid, batched by shape and
sharded over every JAX device; a tidy results.csv, sweep.json and per-configuration resume."""

from __future__ import annotations

import argparse

from ..grid import parse_grid
from ..progress import add_progress_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a grid of configurations (TOML) into a tidy results.csv, resumable",
        description="Run the Cartesian product of a TOML grid whose keys are simulate's flags (regime = \"edit\", "
                    "edit-fraction = [0.05, 0.1], T = [64, 128], ...). Configurations of one shape share one "
                    "compiled program; trials are sharded over every JAX device. Writes DIR/results.csv (one row "
                    "per configuration and generation), DIR/sweep.json and DIR/runs/; a rerun skips finished "
                    "configurations.")
    p.add_argument("grid", metavar="GRID.toml", help="the grid: simulate's flags as keys, a value or a list each")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory; rerunning continues a sweep")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    n_configs = len(parse_grid(args.grid).points())  # every configuration validated before JAX starts
    from ..sweep import sweep

    table = sweep(args.grid, out=args.out, progress=not args.no_progress)
    print(f"wrote {len(table)} rows ({n_configs} configurations x generations) to {args.out}/results.csv; "
          f"metadata in {args.out}/sweep.json")
    return 0
