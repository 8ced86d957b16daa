"""Draw figure `ridge_scaling` (caption: README.md): `python paper_figs/ridge_scaling.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "ridge_scaling", *sys.argv[1:]]))
