"""Draw figure `error_vs_samples_ratio` (caption: README.md): `python paper_figs/error_vs_samples_ratio.py [--out DIR]`."""

import sys

from linreg_collapse.cli import main

sys.exit(main(["figures", "--only", "error_vs_samples_ratio", *sys.argv[1:]]))
