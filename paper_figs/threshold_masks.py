"""Draw figure `threshold_masks` (caption: README.md): `python paper_figs/threshold_masks.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "threshold_masks", *sys.argv[1:]]))
