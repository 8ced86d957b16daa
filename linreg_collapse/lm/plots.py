"""Figures of the language-model experiment, in the package style, written atomically as PNG.

* ``lm_excess_vs_theory.png``: excess loss KL(source || model) per generation, relative to generation 0,
  beside the linear model's E_test(w_n) / (sigma^2 d/(T-d-1)) for replace, accumulate and editing with
  the LM run's realised edit fractions (generation 0 = one fit on real data = 1 in both panels).
* ``lm_data_stats.png``: n-gram statistics of each generation's training data and its perplexity under
  the generation-0 model.
* ``lm_mixing.png``: held-out cross-entropy and excess loss against the synthetic share of the data.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .. import theory
from ..io import atomic_path
from ..style import LIMIT_LINESTYLE, SETTING_COLORS, THEORY_LINESTYLE, figure_style

REGIME_COLORS = {
    "human": "#999999",
    "replace": SETTING_COLORS["replace"],
    "accumulate": SETTING_COLORS["accumulate"],
    "toedit": SETTING_COLORS["resample random"],
}
def series(results: dict, regime: str, key: str) -> np.ndarray:
    return np.array([g[key] for g in results["generations"][regime]], dtype=float)


def realised_edit_fractions(results: dict) -> list[float]:
    """Fraction of tokens the ToEdit regime revised at generations 1..N (the diagonal mean of M_n)."""
    return [g["fraction_revised"] for g in results["generations"]["toedit"][1:]]


def theory_curves(results: dict) -> dict:
    """Linear-model E_test(w_n)/(sigma^2 d/(T-d-1)) at generations 0..N (d/T -> 0) beside each LM regime.

    ToEdit resamples edited tokens from the model (``edit_op="resample"``) with the LM run's realised edit
    fractions; its masks are data-dependent, so both theory cases are shown: masks drawn afresh each
    generation (``random``) and each token edited at most once (``disjoint``, defined if the fractions
    sum to at most 1).
    """
    fractions = realised_edit_fractions(results)
    placeholder = [0.0] * len(fractions)  # replace and accumulate take only N from them
    curves = {
        "replace": theory.relative_error_curve("replace", placeholder),
        "accumulate": theory.relative_error_curve("accumulate", placeholder),
        "toedit, random masks": theory.relative_error_curve("edit", fractions, edit_op="resample", mask="random"),
    }
    if sum(fractions) <= 1:
        curves["toedit, disjoint masks"] = theory.relative_error_curve(
            "edit", fractions, edit_op="resample", mask="disjoint")
    return {name: np.asarray(values, float).tolist() for name, values in curves.items()}


def _save(fig, path: Path) -> str:
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return str(path)


def figure_excess_vs_theory(results: dict):
    fig, (ax_lm, ax_lin) = plt.subplots(1, 2, figsize=(9, 3.6), sharey=False)
    generations = np.arange(results["preset"]["generations"] + 1)
    for regime, color in REGIME_COLORS.items():
        excess = series(results, regime, "excess_loss")
        ax_lm.plot(generations, excess / excess[0], marker="o", color=color, label=regime)
    for name, values in results["theory"].items():
        style = LIMIT_LINESTYLE if "disjoint" in name else THEORY_LINESTYLE
        ax_lin.plot(generations, values, style, color=REGIME_COLORS[name.split(",")[0]], label=f"{name} theory")
    ax_lin.axhline(1.0, color=REGIME_COLORS["human"], linewidth=0.8)
    fractions = ", ".join(f"{p:.2f}" for p in realised_edit_fractions(results))
    ax_lm.set(xlabel="generation", ylabel="KL(source || model) / generation 0", title="language model (bytes)")
    ax_lin.set(xlabel="generation", ylabel=r"$E_{test}(w_n)\,/\,(\sigma^2 d/(T-d-1))$",
               title=f"linear model (edit fractions {fractions})")
    for ax in (ax_lm, ax_lin):
        ax.legend(fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def figure_data_stats(results: dict):
    panels = [
        ("unigram_kl_to_human", "word-unigram KL to human data"),
        ("distinct_2", "distinct-2 (word bigrams)"),
        ("top10_share_2", "share of the 10 most frequent bigrams"),
        ("gen0_perplexity", "perplexity under generation 0 (median, 10-90%)"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6))
    generations = np.arange(results["preset"]["generations"] + 1)
    for ax, (key, title) in zip(axes.flat, panels):
        for regime, color in REGIME_COLORS.items():
            if key == "gen0_perplexity":
                q = {k: series_quantile(results, regime, k) for k in ("0.1", "0.5", "0.9")}
                ax.fill_between(generations, q["0.1"], q["0.9"], color=color, alpha=0.15, linewidth=0)
                ax.plot(generations, q["0.5"], marker="o", color=color, label=regime)
            else:
                ax.plot(generations, series(results, regime, key), marker="o", color=color, label=regime)
        ax.set(title=title, xlabel="generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.flat[-1].set_yscale("log")
    axes.flat[0].legend(fontsize="small")
    return fig


def series_quantile(results, regime, quantile: str) -> np.ndarray:
    return np.array([g["gen0_perplexity_quantiles"][quantile] for g in results["generations"][regime]])


def figure_mixing(results: dict):
    shares = [100 * m["synthetic_share"] for m in results["mixing"]]
    fig, (ax_ce, ax_kl) = plt.subplots(1, 2, figsize=(8, 3.4))
    ax_ce.plot(shares, [m["heldout_cross_entropy"] for m in results["mixing"]], marker="o", color="k")
    ax_ce.axhline(results["source_entropy_per_byte"], color="0.5", linestyle=":", label="source entropy")
    ax_kl.plot(shares, [m["excess_loss"] for m in results["mixing"]], marker="o", color="k")
    ax_ce.set(xlabel="synthetic share (%)", ylabel="held-out cross-entropy (nats/byte)")
    ax_kl.set(xlabel="synthetic share (%)", ylabel="excess loss KL (nats/byte)")
    ax_ce.legend(fontsize="small")
    return fig


def write_figures(results: dict, out_dir) -> list[str]:
    """Write the three figures into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    with figure_style():
        return [
            _save(figure_excess_vs_theory(results), out / "lm_excess_vs_theory.png"),
            _save(figure_data_stats(results), out / "lm_data_stats.png"),
            _save(figure_mixing(results), out / "lm_mixing.png"),
        ]
