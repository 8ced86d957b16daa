"""Draw figure `double_descent` (caption: README.md): `python paper_figs/double_descent.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "double_descent", *sys.argv[1:]]))
