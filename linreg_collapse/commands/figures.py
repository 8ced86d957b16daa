"""``linreg-collapse figures``: draw the theorem figures (simulation bands against theory) as PNG and PDF."""

from __future__ import annotations

import argparse

from ..figure_settings import FIGURE_NAMES, FigureSettings
from ..manifest import MANIFEST
from ..progress import add_progress_argument

DEFAULTS = FigureSettings()
DESCRIPTION = ("Draw the theorem figures (simulation bands against theory) as PNG and PDF, deterministic from "
               f"--seed; captions in paper_figs/README.md. A figure already drawn with the same settings by the "
               f"same code (recorded in {MANIFEST} beside it) is reused, not drawn again, unless --redraw.")


def register(subparsers) -> None:
    p = subparsers.add_parser("figures", help="draw the theorem figures as PNG and PDF", description=DESCRIPTION)
    p.add_argument("--out", default="results/figures", help="output directory (default: results/figures)")
    p.add_argument("--only", choices=FIGURE_NAMES, action="append", metavar="NAME",
                   help=f"draw only this figure (repeatable): {', '.join(FIGURE_NAMES)}")
    p.add_argument("--trials", type=int, default=DEFAULTS.trials, help=f"trials per run (default: {DEFAULTS.trials})")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help=f"PRNG seed (default: {DEFAULTS.seed})")
    p.add_argument("--redraw", action="store_true", help="draw every figure even if its files are up to date")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = FigureSettings(trials=args.trials, seed=args.seed)
    from ..figures import write_all

    paths, reused = write_all(args.out, progress=not args.no_progress, settings=settings, names=args.only,
                              reuse=not args.redraw)
    print("\n".join(str(path) for path in paths))
    if reused:
        print(f"reused (already drawn with these settings): {', '.join(reused)}")
    return 0
