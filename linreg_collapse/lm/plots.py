"""Figures of the language-model experiment, in the package style, written atomically as PNG, each with
its caption printed under it (and listed in ``captions.md``). Markers are means over seeds, error bars
95% Student-t intervals.

* ``lm_excess_vs_theory.png``: excess loss KL(source || model) per generation relative to generation 0,
  beside the linear model's E_test(w_n) / (sigma^2 d/(T-d-1)) for the same regimes.
* ``lm_excess_vs_edit_share.png``: the editing regimes' relative excess loss against the cumulative
  edited share sum_{i<=n} p_i, with the linear theory at the same shares (perturb 1 + sum p; resample).
* ``lm_data_stats.png``: n-gram statistics of each generation's training data and its perplexity under
  the generation-0 model.
* ``lm_mixing.png``: held-out cross-entropy and excess loss against the synthetic share of the data.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .. import theory
from ..io import atomic_path, write_text
from ..style import LIMIT_LINESTYLE, SETTING_COLORS, THEORY_LINESTYLE, figure_style

REGIME_COLORS = {
    "human": "#999999",
    "replace": SETTING_COLORS["replace"],
    "accumulate": SETTING_COLORS["accumulate"],
    "toedit": SETTING_COLORS["resample random"],
    "toedit_heavy": SETTING_COLORS["perturb disjoint"],
}
EDIT_REGIMES = ("toedit", "toedit_heavy")  # the experiment's editing regimes (lm.experiment builds on these)


def summary_series(results: dict, regime: str, key: str):
    """(mean, low, high) arrays over generations 0..N of a summarised metric."""
    rows = results["summary"]["generations"][regime]
    return tuple(np.array([r[key][part] if key in r else np.nan for r in rows]) for part in ("mean", "low", "high"))


def realised_edit_fractions(results: dict, regime: str) -> np.ndarray:
    """Mean share of tokens revised at generations 1..N (the diagonal mean of M_n)."""
    return summary_series(results, regime, "fraction_revised")[0][1:]


def theory_curves(results: dict) -> dict:
    """Linear-model E_test(w_n)/(sigma^2 d/(T-d-1)) at generations 0..N (d/T -> 0) for each LM regime:
    replace n + 1, accumulate sum k^-2, and for each editing regime, at its realised mean edit
    fractions, perturb (1 + sum p, exact) and resample with masks drawn afresh each generation."""
    n = results["preset"]["generations"]
    curves = {
        "replace": theory.relative_error_curve("replace", [0.0] * n),
        "accumulate": theory.relative_error_curve("accumulate", [0.0] * n),
    }
    for regime in EDIT_REGIMES:
        p = realised_edit_fractions(results, regime)
        curves[regime] = {
            "fractions": p,
            "perturb": theory.relative_error_curve("edit", p, edit_op="perturb"),
            "resample": theory.relative_error_curve("edit", p, edit_op="resample", mask="random"),
        }
    return _to_lists(curves)


def _to_lists(obj):
    if isinstance(obj, dict):
        return {k: _to_lists(v) for k, v in obj.items()}
    return np.asarray(obj, float).tolist()


def _errorbar(ax, x, series, color, label, offset=0.0):
    mean, low, high = series
    ax.errorbar(np.asarray(x, float) + offset, mean, yerr=[mean - low, high - mean], marker="o", color=color,
                label=label, capsize=2, linewidth=1)


def _caption(fig, text: str):
    """The caption under the figure, wrapped to its width (``savefig.bbox: tight`` keeps it in the image)."""
    width_chars = int(fig.get_figwidth() * 17)
    fig.text(0.0, -0.01, textwrap.fill(text, width_chars), ha="left", va="top", fontsize=7.5)
    return fig


def figure_excess_vs_theory(results: dict):
    fig, (ax_lm, ax_lin) = plt.subplots(1, 2, figsize=(10, 4.6))
    generations = np.arange(results["preset"]["generations"] + 1)
    offsets = np.linspace(-0.12, 0.12, len(REGIME_COLORS))
    for offset, (regime, color) in zip(offsets, REGIME_COLORS.items()):
        _errorbar(ax_lm, generations, summary_series(results, regime, "relative_excess_loss"), color, regime, offset)
    th = results["theory"]
    ax_lin.plot(generations, th["replace"], THEORY_LINESTYLE, color=REGIME_COLORS["replace"], label="replace")
    ax_lin.plot(generations, th["accumulate"], THEORY_LINESTYLE, color=REGIME_COLORS["accumulate"], label="accumulate")
    for regime in EDIT_REGIMES:
        ax_lin.plot(generations, th[regime]["resample"], THEORY_LINESTYLE, color=REGIME_COLORS[regime],
                    label=f"{regime}: resample")
        ax_lin.plot(generations, th[regime]["perturb"], LIMIT_LINESTYLE, color=REGIME_COLORS[regime],
                    label=f"{regime}: perturb 1 + sum p")
    ax_lin.axhline(1.0, color=REGIME_COLORS["human"], linewidth=0.8)
    ax_lm.set(xlabel="generation", ylabel="KL(source || model) / generation 0", title="language model (bytes)")
    ax_lin.set(xlabel="generation", ylabel=r"$E_{test}(w_n)\,/\,(\sigma^2 d/(T-d-1))$",
               title="linear model at the LM's edit shares (d/T -> 0)")
    for ax in (ax_lm, ax_lin):
        ax.legend(fontsize="x-small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _caption(fig, CAPTIONS["lm_excess_vs_theory"](results))


def figure_excess_vs_edit_share(results: dict):
    fig, ax = plt.subplots(figsize=(7, 4.8))
    th = results["theory"]
    for regime in EDIT_REGIMES:
        color = REGIME_COLORS[regime]
        share = np.concatenate([[0.0], np.cumsum(th[regime]["fractions"])])
        _errorbar(ax, share, summary_series(results, regime, "relative_excess_loss"), color, f"{regime} (LM)")
        ax.plot(share, th[regime]["perturb"], LIMIT_LINESTYLE, color=color, label=f"{regime}: perturb 1 + sum p")
        ax.plot(share, th[regime]["resample"], THEORY_LINESTYLE, color=color, label=f"{regime}: resample theory")
    ax.axhline(1.0, color=REGIME_COLORS["human"], linewidth=0.8)
    ax.set(xlabel=r"cumulative edited share $\sum_{i \leq n} p_i$", ylabel="excess loss / generation 0",
           title="ToEdit: excess loss against the edited share")
    ax.legend(fontsize="x-small")
    return _caption(fig, CAPTIONS["lm_excess_vs_edit_share"](results))


def figure_data_stats(results: dict):
    panels = [
        ("unigram_kl_to_human", "word-unigram KL to human data", "KL (nats)"),
        ("distinct_2", "distinct-2 (word bigrams)", "distinct / all bigrams"),
        ("top10_share_2", "share of the 10 most frequent bigrams", "share of all bigrams"),
        ("gen0_perplexity", "perplexity under generation 0 (median, 10-90% of documents)", "perplexity (bytes)"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    generations = np.arange(results["preset"]["generations"] + 1)
    offsets = np.linspace(-0.15, 0.15, len(REGIME_COLORS))
    per_seed = results["per_seed"]
    for ax, (key, title, ylabel) in zip(axes.flat, panels):
        for offset, (regime, color) in zip(offsets, REGIME_COLORS.items()):
            runs = [r["generations"][regime] for r in per_seed]
            if key == "gen0_perplexity":
                q = {k: np.mean([[g["gen0_perplexity_quantiles"][k] for g in run] for run in runs], 0)
                     for k in ("0.1", "0.5", "0.9")}
                _errorbar(ax, generations, (q["0.5"], q["0.1"], q["0.9"]), color, regime, offset)
            else:
                values = np.array([[g[key] for g in run] for run in runs])
                mean = values.mean(0)
                ax.plot(generations + offset, mean, marker="o", color=color, label=regime, linewidth=1)
        ax.set(title=title, xlabel="generation", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.flat[0].legend(fontsize="x-small")
    return _caption(fig, CAPTIONS["lm_data_stats"](results))


def figure_mixing(results: dict):
    mixing = results["summary"]["mixing"]
    shares = [100 * m["synthetic_share"] for m in mixing]
    fig, (ax_ce, ax_kl) = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, key in ((ax_ce, "heldout_cross_entropy"), (ax_kl, "excess_loss")):
        series = tuple(np.array([m[key][part] for m in mixing]) for part in ("mean", "low", "high"))
        _errorbar(ax, shares, series, "k", "model")
    ax_ce.axhline(results["source_entropy_per_byte"], color="0.5", linestyle=":", label="source entropy")
    ax_ce.set(xlabel="synthetic share (%)", ylabel="held-out cross-entropy (nats/byte)")
    ax_kl.set(xlabel="synthetic share (%)", ylabel="excess loss KL (nats/byte)")
    ax_ce.legend(fontsize="small")
    fig.suptitle("mixing: one model trained on human data with a share replaced by generation-0 samples")
    return _caption(fig, CAPTIONS["lm_mixing"](results))


def _setting(results) -> str:
    p = results["preset"]
    return (f"{results['seeds']} seeds, mean and 95% t interval; {p['n_docs']} documents per generation, "
            f"{p['train']['steps']} training steps, byte-level transformer (d={p['model']['d_model']}, "
            f"{p['model']['n_layers']} layers)")


def _shares(results) -> str:
    return "; ".join(f"{r} edits " + ", ".join(f"{x:.3f}" for x in realised_edit_fractions(results, r))
                     + " of tokens at generations 1..N" for r in EDIT_REGIMES)


def theory_values(results: dict, regime: str, n: int) -> tuple[float, float]:
    """(smallest, largest) linear-theory value at generation n: one curve for replace and accumulate, the
    perturb and resample curves for an editing regime."""
    th = results["theory"][regime]
    values = (th["perturb"][n], th["resample"][n]) if regime in EDIT_REGIMES else (th[n],)
    return min(values), max(values)


def theory_verdict(results: dict, regimes) -> str:
    """Plain words on where each regime's LM markers sit against the linear theory: per generation n >= 1,
    whether the 95% interval of KL / generation 0 lies above the theory, below it, or covers it (for an
    editing regime: overlaps the range between its perturb and resample values). With few seeds
    "consistent" means "not rejected", not "confirmed"."""
    parts = []
    for regime in regimes:
        mean, low, high = summary_series(results, regime, "relative_excess_loss")
        words = []
        for n in range(1, len(mean)):
            lo_th, hi_th = theory_values(results, regime, n)
            where = ("above the theory" if low[n] > hi_th else "below the theory" if high[n] < lo_th
                     else "consistent with the theory")
            shown = f"{lo_th:.2f}" if lo_th == hi_th else f"{lo_th:.2f}-{hi_th:.2f}"
            words.append(f"gen {n}: {mean[n]:.2f} [{low[n]:.2f}, {high[n]:.2f}] vs {shown}, {where}")
        parts.append(f"{regime}: " + "; ".join(words))
    human_mean, human_low, human_high = summary_series(results, "human", "relative_excess_loss")
    control = ", ".join(f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in
                        zip(human_mean[1:], human_low[1:], human_high[1:]))
    return ". ".join(parts) + f". Human control (fresh human data, theory 1): {control}."


CAPTIONS = {
    "lm_excess_vs_theory": lambda r: (
        "Left: excess loss KL(source || model) per byte on held-out human text, divided by the same seed's "
        "generation 0 (" + _setting(r) + "). Right: the linear-regression prediction for the same regimes at "
        "the LM's realised edit shares (" + _shares(r) + "). A byte model is not a linear fit, and ToEdit "
        "picks its tokens by confidence (p above a threshold) where the theory's masks are random; LM against "
        "theory: " + theory_verdict(r, ("replace", "accumulate"))),
    "lm_excess_vs_edit_share": lambda r: (
        "Relative excess loss of the editing regimes against the cumulative share of tokens revised so far, "
        "with the linear theory at the same shares: perturb (1 + sum p, dotted) and resample with fresh random "
        "masks (dashed). LM against theory (95% interval against the two theory values): "
        + theory_verdict(r, EDIT_REGIMES) + " (" + _setting(r) + ")."),
    "lm_data_stats": lambda r: (
        "Training data of each generation, mean over seeds: word-unigram KL to held-out human text, share of "
        "distinct word bigrams, share of the ten most frequent bigrams, and per-document perplexity under the "
        "generation-0 model (median with 10-90% range). Regimes are offset horizontally so their ranges do "
        "not hide each other (" + _setting(r) + ")."),
    "lm_mixing": lambda r: (
        "Non-iterative mixing (the paper's experiment): a model trained on human documents with the given share "
        "replaced by samples of the generation-0 model; held-out cross-entropy (left, dotted: source entropy) "
        "and excess loss (right) (" + _setting(r) + ")."),
}


def _save(fig, path: Path) -> str:
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return str(path)


FIGURES = {
    "lm_excess_vs_theory": figure_excess_vs_theory,
    "lm_excess_vs_edit_share": figure_excess_vs_edit_share,
    "lm_data_stats": figure_data_stats,
    "lm_mixing": figure_mixing,
}
"""Every figure of the experiment by file stem, in drawing order."""


def figure_files(out_dir) -> list[Path]:
    """The files :func:`write_figures` writes into ``out_dir``: the figures, then ``captions.md``."""
    return [Path(out_dir) / f"{name}.png" for name in FIGURES] + [Path(out_dir) / "captions.md"]


def write_figures(results: dict, out_dir) -> list[str]:
    """Write the four figures and ``captions.md`` into ``out_dir``; returns the figure paths."""
    out = Path(out_dir)
    with figure_style():
        paths = [_save(draw(results), out / f"{name}.png") for name, draw in FIGURES.items()]
    write_text(out / "captions.md", "".join(f"**{name}.png**: {CAPTIONS[name](results)}\n\n" for name in FIGURES))
    return paths
