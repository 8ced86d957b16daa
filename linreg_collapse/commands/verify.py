"""``linreg-collapse verify``: the default grid of theory-vs-simulation checks; exit 0 only when all pass."""

from __future__ import annotations

import argparse

from ..errors import require
from ..io import check_writable, write_json
from ..progress import add_progress_argument
from ..verify import LEVEL, default_checks, format_table, run_checks


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="check every closed form and bound against simulation; exit 0 only when all pass",
        description="Run the default grid (several T, d, sigma, both covariances, every regime and schedule with a "
                    "closed form), compare the exact conditional estimator's 99% intervals with the symbolic "
                    "values, print a table and write JSON. Exit code 0 only when every check passes, else 1.")
    p.add_argument("--seed", type=int, default=0, help="seed of every configuration (default 0)")
    p.add_argument("--json", metavar="PATH", default="results/verify.json",
                   help="where to write the results (default results/verify.json)")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require(args.seed >= 0, f"--seed {args.seed} must be >= 0")
    check_writable("--json", args.json)
    outcomes, wall = run_checks(default_checks(args.seed), progress=not args.no_progress)
    print(format_table(outcomes))
    print(f"wall time {wall:.1f} s")
    passed = all(o.passed for o in outcomes)
    write_json(args.json, {"passed": passed, "level": LEVEL, "wall_seconds": wall, "seed": args.seed,
                           "checks": [o.to_dict() for o in outcomes]})
    return 0 if passed else 1
