"""Draw every figure (captions: README.md): `python paper_figs/all_figures.py [--out DIR] [--seed S]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", *sys.argv[1:]]))
