"""Draw figure `error_vs_edit_budget` (caption: README.md): `python paper_figs/error_vs_edit_budget.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "error_vs_edit_budget", *sys.argv[1:]]))
