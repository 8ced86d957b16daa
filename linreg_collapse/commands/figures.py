"""``linreg-collapse figures``: draw the theorem figures (simulation bands against theory) as PNG and PDF.

Deterministic from ``--seed``; captions in paper_figs/README.md."""

from __future__ import annotations

import argparse

from ..figure_settings import FIGURE_NAMES, FigureSettings

DEFAULTS = FigureSettings()


def register(subparsers) -> None:
    p = subparsers.add_parser("figures", help="draw the theorem figures as PNG and PDF", description=__doc__)
    p.add_argument("--out", default="results/figures", help="output directory (default: results/figures)")
    p.add_argument("--only", choices=FIGURE_NAMES, action="append", metavar="NAME",
                   help=f"draw only this figure (repeatable): {', '.join(FIGURE_NAMES)}")
    p.add_argument("--trials", type=int, default=DEFAULTS.trials, help=f"trials per run (default: {DEFAULTS.trials})")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help=f"PRNG seed (default: {DEFAULTS.seed})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = FigureSettings(trials=args.trials, seed=args.seed)
    from ..figures import write_all, write_figure

    if args.only:
        paths = [path for name in args.only for path in write_figure(name, args.out, settings)]
    else:
        paths = write_all(args.out, progress=True, settings=settings)
    print("\n".join(str(path) for path in paths))
    return 0
