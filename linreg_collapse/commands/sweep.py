"""``linreg-collapse sweep GRID.toml --out DIR``: every configuration of a grid, batched by shape and
sharded over every JAX device; a tidy results.csv, sweep.json and per-configuration resume."""

from __future__ import annotations

import argparse
import sys

from ..grid import parse_grid
from ..progress import add_progress_argument

EXIT_SKIPPED = 3  # the sweep ran, but some configurations were skipped (too large for memory, or JAX failed)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a grid of configurations (TOML) into a tidy results.csv, resumable",
        description="Run the Cartesian product of a TOML grid whose keys are simulate's flags (regime = \"edit\", "
                    "edit-fraction = [0.05, 0.1], T = [64, 128], ...). Configurations of one shape share one "
                    "compiled program; trials are sharded over every JAX device. Writes DIR/results.csv (one row "
                    "per configuration and generation), DIR/sweep.json and DIR/runs/; a rerun skips finished "
                    "configurations. A configuration whose single trial cannot fit in memory, or whose run JAX "
                    "fails (out of memory, a device lost), is skipped with one line on stderr and listed in "
                    "sweep.json; the others still run and are written, and a rerun (e.g. with more memory) runs "
                    "only what is missing. Exit codes: 0 every configuration done; 2 bad grid or --out, nothing "
                    f"run; {EXIT_SKIPPED} some configurations skipped, the rest written.")
    p.add_argument("grid", metavar="GRID.toml", help="the grid: simulate's flags as keys, a value or a list each")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory; rerunning continues a sweep")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    n_configs = len(parse_grid(args.grid).points())  # every configuration validated before JAX starts
    from ..sweep import SKIPPED, sweep

    table = sweep(args.grid, out=args.out, progress=not args.no_progress)
    skipped = len(table.attrs[SKIPPED])
    print(f"wrote {len(table)} rows ({n_configs - skipped} configurations x generations) to {args.out}/results.csv; "
          f"metadata in {args.out}/sweep.json")
    if skipped:
        print(f"sweep: {skipped} of {n_configs} configurations skipped (each reported above, listed in "
              f"{args.out}/sweep.json); rerun the same command once they fit to run only those", file=sys.stderr)
        return EXIT_SKIPPED
    return 0
