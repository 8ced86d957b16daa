"""The one look of every figure: a matplotlib style file plus a colour per retraining setting."""

from __future__ import annotations

from pathlib import Path

import matplotlib.style

STYLE_FILE = Path(__file__).parent / "data" / "linreg_collapse.mplstyle"

# Okabe-Ito colours (colour-blind safe), one per setting; the theory line of a setting takes its colour.
SETTING_COLORS = {
    "replace": "#D55E00",
    "accumulate": "#0072B2",
    "accumulate-subsample": "#56B4E9",
    "perturb random": "#009E73",
    "perturb disjoint": "#E69F00",
    "resample random": "#CC79A7",
    "resample disjoint": "#000000",
}
THEORY_LINESTYLE = "--"  # theory meant to match the simulation (exact, or proportional limit at d/T)
LIMIT_LINESTYLE = ":"  # limits and bounds the simulation need not match (d/T -> 0, sup over schedules)
BAND_ALPHA = 0.2


def figure_style():
    """Context manager applying the package style: ``with figure_style(): fig = ...``."""
    return matplotlib.style.context(STYLE_FILE)
