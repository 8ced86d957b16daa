"""Draw figure `edit_heatmap` (caption: README.md): `python paper_figs/edit_heatmap.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "edit_heatmap", *sys.argv[1:]]))
