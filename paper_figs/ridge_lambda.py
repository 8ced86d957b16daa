"""Draw figure `ridge_lambda` (caption: README.md): `python paper_figs/ridge_lambda.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "ridge_lambda", *sys.argv[1:]]))
