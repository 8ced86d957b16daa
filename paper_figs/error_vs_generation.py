"""Draw figure `error_vs_generation` (caption: README.md): `python paper_figs/error_vs_generation.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "error_vs_generation", *sys.argv[1:]]))
