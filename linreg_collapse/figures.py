"""Theorem figures: simulation bands against the results of :mod:`linreg_collapse.theory`.

Each ``figure_*`` function takes a :class:`FigureSettings`, runs the simulations it needs (deterministic
from ``settings.seed``) and returns a matplotlib Figure drawn in the package style. Errors are shown
relative to ``base = sigma^2 d/(T-d-1)``, the expected error of one OLS fit on real data; generation 0 is
that fit, so ``replace`` reaches ``n + 1`` at generation n (the ToEdit paper counts it as n).

Artists carry labels that the tests read: a simulated series is markers (a line artist without a line)
plus a 95% t-interval band (a ``PolyCollection``), both labelled with the setting; theory meant to match it
is a dashed line ``"<setting> theory"`` drawn on top of them, so both stay visible; a limit it need not
match (d/T -> 0) is a dotted line ``"<setting> d/T→0 limit"``.
:func:`write_all` writes every figure as PNG and PDF, reusing those already drawn with the same settings.

The simulations share one trial count and a few shapes so that JAX compiles each program once
(1-4 s each on a CPU); each figure's grid runs through :func:`~linreg_collapse.sweep.simulate_many`, which
batches the configurations of one shape (they differ only in p, eta, tau) into one program.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Optional

import matplotlib
import numpy as np
import sympy as sp
from matplotlib import ticker
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import theory
from .theory import ridge as ridge_theory
from .config import SimConfig
from .errors import InputError
from .figure_settings import FigureSettings
from .io import atomic_path, check_writable
from .manifest import MANIFEST, Manifest, code_fingerprint
from .progress import Progress
from .simulate import SimResult, mean_interval, simulate
from .sweep import simulate_many
from .style import BAND_ALPHA, LIMIT_LINESTYLE, SETTING_COLORS, THEORY_LINESTYLE, figure_style

THEORY = "theory"
BASE_LABEL = "σ²d/(T−d−1)"
PAPER_BOUND = "paper's bound: 2 base (Q ≤ 1)"


def setting_name(cfg: SimConfig) -> str:
    """The setting's key in :data:`~linreg_collapse.style.SETTING_COLORS`: the regime, or
    ``"<edit_op> <mask>"`` for editing."""
    return f"{cfg.edit_op} {cfg.mask}" if cfg.regime == "edit" else cfg.regime


def setting_label(cfg: SimConfig) -> str:
    """Legend label: the setting plus its schedule parameters."""
    name = setting_name(cfg)
    if cfg.regime != "edit":
        return name
    if cfg.mask == "random":
        return f"{name}, p={cfg.edit_fraction:.3g}"
    if cfg.mask == "disjoint":
        return f"{name}, p={cfg.edit_fraction:.3g}, η={cfg.decay:.3g}"
    return f"{name}, τ={cfg.threshold:.3g}"


def theory_curve(cfg: SimConfig) -> Optional[tuple[np.ndarray, str]]:
    """Theory's E_test/base at generations 0..N for ``cfg`` and its kind, or None where theory has no
    result (accumulate-subsample, threshold masks).

    Kind :data:`THEORY`: exact, or the proportional limit at gamma = d/T (resample, random and disjoint
    masks). Editing uses the fractions the simulator's masks realise (whole positions).
    """
    expected = theory.expected_relative_error(cfg)
    return None if expected is None else (np.asarray(expected, float), THEORY)


def edit_budget_bound(name: str, budgets: np.ndarray) -> np.ndarray:
    """The theory result ``name`` (in units of base, a function of the total edit budget Q) at ``budgets``."""
    expr = theory.results()[name].relative
    return np.broadcast_to(np.asarray(sp.lambdify(theory.Q, expr, modules="numpy")(budgets), float), budgets.shape)


# ---------------------------------------------------------------------------------------------------
# Drawing helpers


def draw_band(ax, x, mean, low, high, label: str, color: str, marker: str = "o") -> None:
    """Simulation mean (markers, no line) and its interval (band), both labelled ``label``."""
    ax.fill_between(x, low, high, color=color, alpha=BAND_ALPHA, linewidth=0, label=label)
    ax.plot(x, mean, marker=marker, linestyle="none", color=color, label=label, markersize=4,
            markeredgecolor="white", markeredgewidth=0.5, zorder=2.5)


def draw_theory(ax, x, values, label: str, color: str, kind: str = THEORY) -> None:
    """Theory line ``"<label> <kind>"`` (dashed) on top of the simulation markers."""
    ax.plot(x, values, THEORY_LINESTYLE, color=color, label=f"{label} {kind}", linewidth=1.4, zorder=3)


def style_handles(kinds=(THEORY,), simulation: str = "simulation mean, 95% CI band") -> list:
    """Legend entries for the line styles: simulation, then each kind of theory line drawn."""
    handles = [Line2D([], [], color="0.3", marker="o", markersize=4, linestyle="none", label=simulation)]
    return handles + [Line2D([], [], color="0.3", linestyle=THEORY_LINESTYLE, label=k) for k in kinds]


def plain_log_ticks(ax, axis: str = "y") -> None:
    """Log scale on ``axis`` with ticks written as plain numbers (2, 5 rather than 2×10⁰)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_formatter(ticker.FormatStrFormatter("%g"))
    target.set_minor_formatter(ticker.FuncFormatter(
        lambda v, _: f"{v:g}" if round(v / 10 ** np.floor(np.log10(v)), 6) in (2, 3, 5) else ""))


def relative(result: SimResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and interval of the run's test error divided by base."""
    return result.mean / result.base, result.ci_low / result.base, result.ci_high / result.base


def draw_run(ax, result: SimResult, kinds: set) -> None:
    """One run against generation: band, plus its theory line where theory has one (kind added to ``kinds``)."""
    label, color = setting_label(result.config), SETTING_COLORS[setting_name(result.config)]
    draw_band(ax, result.generation, *relative(result), label, color)
    curve = theory_curve(result.config)
    if curve is not None:
        draw_theory(ax, result.generation, curve[0], label, color, curve[1])
        kinds.add(curve[1])


# ---------------------------------------------------------------------------------------------------
# Figures


def generation_configs(s: FigureSettings) -> list[SimConfig]:
    """Every regime, and editing with both proposals and both schedules at a total edit budget of about 1."""
    disjoint = dict(regime="edit", mask="disjoint", edit_fraction=0.5, decay=0.5)
    random = dict(regime="edit", mask="random", edit_fraction=1.0 / s.generations)
    return [
        s.config("replace"),
        s.config("accumulate"),
        s.config("accumulate-subsample"),
        s.config(**random, edit_op="perturb"),
        s.config(**random, edit_op="resample"),
        s.config(**disjoint, edit_op="perturb"),
        s.config(**disjoint, edit_op="resample"),
    ]


def draw_ratio(ax, result: SimResult) -> None:
    """Simulation / theory against generation (markers and band), for a run theory has a curve for."""
    curve = theory_curve(result.config)
    if curve is None:
        return
    label, color = setting_label(result.config), SETTING_COLORS[setting_name(result.config)]
    ratio = [values / curve[0] for values in relative(result)]
    draw_band(ax, result.generation, *ratio, f"{label} (÷ {curve[1]})", color)


def figure_error_vs_generation(s: FigureSettings = FigureSettings()) -> Figure:
    """Test error / base against generation: retraining regimes (top) and token-level editing (bottom).
    Left: simulation bands with theory lines on top. Right: simulation / theory with its band, so that a
    gap too small to see on the left (or a limit the simulation need not reach) is read off against 1."""
    results = simulate_many(generation_configs(s))
    rows = {"retraining": [r for r in results if r.config.regime != "edit"],
            "token-level editing": [r for r in results if r.config.regime == "edit"]}
    with figure_style():
        fig = Figure(figsize=(10.0, 7.0))
        axes = fig.subplots(2, 2)
        for (ax_error, ax_ratio), (title, row_results) in zip(axes, rows.items()):
            kinds: set = set()
            for result in row_results:
                draw_run(ax_error, result, kinds)
                draw_ratio(ax_ratio, result)
            ax_error.set_ylabel(f"test error / {BASE_LABEL}")
            ax_error.set_title(f"{title}: test error")
            ax_ratio.axhline(1.0, color="0.4", linewidth=0.8, zorder=1)
            ax_ratio.set_ylabel("simulation / theory")
            ax_ratio.set_title(f"{title}: simulation / theory (95% CI)")
            for ax in (ax_error, ax_ratio):
                ax.set_xlabel("generation n (0 = fit on real data)")
                ax.xaxis.get_major_locator().set_params(integer=True)
            colours = [Patch(color=SETTING_COLORS[setting_name(r.config)], label=setting_label(r.config))
                       for r in row_results]
            ax_ratio.legend(handles=colours + style_handles(kinds), loc="center left", bbox_to_anchor=(1.02, 0.5))
        fig.suptitle(f"Test error across generations (T={s.T}, d={s.d}, σ={s.sigma:g}, {s.trials} trials)")
    return fig


def edit_budget_configs(s: FigureSettings, edit_op: str, mask: str) -> list[SimConfig]:
    """Schedules of growing total edit budget sum_n p_n: random masks with p = B/N for B in [0, 2]
    (positions edited repeatedly once B > 1) or disjoint masks with eta = 1/2 (B <= 1)."""
    if mask == "random":
        return [s.config("edit", edit_op=edit_op, mask=mask, edit_fraction=float(b / s.generations))
                for b in np.linspace(0.0, 2.0, 11)]
    return [s.config("edit", edit_op=edit_op, mask=mask, edit_fraction=float(p), decay=0.5)
            for p in np.linspace(0.0, 0.5, 6)]


# Bounds drawn against the edit budget Q (each assumes every position is edited at most once, Q <= 1).
EDIT_BUDGET_BOUNDS = {
    "perturb": {"edit-perturb-paper-bound": PAPER_BOUND},
    "resample": {"edit-perturb-paper-bound": PAPER_BOUND,
                 "edit-resample-disjoint-sup": "sup over disjoint schedules 2e$^{Q}$ − 1 (d/T→0, Q ≤ 1)",
                 "edit-resample-gronwall": "Grönwall bound e$^{2Q}$ (d/T→0, Q ≤ 1)"},
}


def figure_error_vs_edit_budget(s: FigureSettings = FigureSettings()) -> Figure:
    """Final test error / base against the realised total edit budget Q = sum_n p_n, perturb against
    resample, random and disjoint masks, with theory at each schedule and the bounds of linreg_collapse.theory.
    Each panel has its own y range, fitted to its data and bounds; a bound that leaves it is clipped and its
    end value written where it leaves."""
    with figure_style():
        fig = Figure(figsize=(10.5, 5.6))
        axes = fig.subplots(1, 2)
        budget_axis = np.linspace(0.0, 1.0, 101)
        bound_colors = ("#D55E00", "0.35", "0.6")
        for ax, op in zip(axes, ("perturb", "resample")):
            kinds: set = set()
            for mask, marker in (("random", "o"), ("disjoint", "s")):
                results = simulate_many(edit_budget_configs(s, op, mask))
                budget = np.array([r.edit_fraction[1:].sum() for r in results])
                final = np.array([[v[-1] for v in relative(r)] for r in results])
                label, color = f"{op}, {mask} masks", SETTING_COLORS[f"{op} {mask}"]
                draw_band(ax, budget, *final.T, label, color, marker=marker)
                curves = [theory_curve(r.config) for r in results]
                draw_theory(ax, budget, [c[0][-1] for c in curves], label, color, curves[0][1])
                kinds.add(curves[0][1])
            low, top = min(ax.dataLim.y0, 1.0), 1.1 * max(ax.dataLim.y1, 2.0)  # data, bands, theory; the paper's 2
            for (name, label), color in zip(EDIT_BUDGET_BOUNDS[op].items(), bound_colors):
                values = edit_budget_bound(name, budget_axis)
                ax.plot(budget_axis, values, "-", color=color, linewidth=1.0, label=label, zorder=1.5)
                if values[-1] > top:  # clipped: say where it goes
                    leaves = budget_axis[np.argmax(values > top)]
                    ax.annotate(f"→ {values[-1]:.2f} at Q = 1", (leaves, top), xytext=(3, -10),
                                textcoords="offset points", color=color, fontsize=7)
            ax.set_ylim(low - 0.03 * (top - low), top)
            ax.set_title(f"{op} proposal")
            ax.set_xlabel("total edit budget Q = Σₙ pₙ (realised)")
            ax.set_ylabel(f"test error / {BASE_LABEL} after N={s.generations}")
            handles = [line for line in ax.get_lines() if not line.get_label().endswith(THEORY)]
            ax.legend(handles=handles + style_handles(kinds)[1:], loc="upper center", bbox_to_anchor=(0.5, -0.17),
                      ncols=2)  # below the panel: the data fill the frame
        fig.suptitle(f"Final error against the total edit budget (T={s.T}, d={s.d}, N={s.generations}, {s.trials} trials)")
    return fig


def samples_ratio_configs(s: FigureSettings) -> list[SimConfig]:
    """One configuration per regime (editing: both proposals, disjoint masks) and value of T/d."""
    settings = [dict(regime="replace"), dict(regime="accumulate"), dict(regime="accumulate-subsample"),
                dict(regime="edit", edit_op="perturb", mask="disjoint", edit_fraction=0.5, decay=0.5),
                dict(regime="edit", edit_op="resample", mask="disjoint", edit_fraction=0.5, decay=0.5)]
    return [s.config(T=T, **options) for options in settings for T in s.samples_T]


def figure_error_vs_samples_ratio(s: FigureSettings = FigureSettings()) -> Figure:
    """Test error / sigma^2 after N generations against T/d for each regime: simulation points with
    95% intervals and theory curves over every integer T in the range. Each regime has its own marker
    and its points are set slightly apart in x (by a few per cent, symmetric about the true T/d) so that
    series with close values do not hide one another."""
    groups: dict[str, list[SimResult]] = {}
    for result in simulate_many(samples_ratio_configs(s)):
        groups.setdefault(setting_label(result.config), []).append(result)
    T_axis = np.arange(int(0.8 * min(s.samples_T)), int(1.2 * max(s.samples_T)) + 1)
    T_axis = T_axis[T_axis > s.d + 1]
    with figure_style():
        fig = Figure(figsize=(6.8, 4.6))
        ax = fig.subplots()
        kinds: set = set()
        markers = dict(zip(groups, SERIES_MARKERS))
        for i, (label, group) in enumerate(groups.items()):
            color = SETTING_COLORS[setting_name(group[0].config)]
            ratio = np.array([r.config.T / s.d for r in group])
            dodge = 10 ** (DODGE_DECADES * (i - (len(groups) - 1) / 2))
            mean, low, high = (np.array([getattr(r, k)[-1] for r in group]) / s.sigma**2
                               for k in ("mean", "ci_low", "ci_high"))
            ax.errorbar(ratio * dodge, mean, yerr=[mean - low, high - mean], fmt=markers[label], color=color,
                        capsize=2, markersize=4.5, label=label, zorder=2.5)
            curves = [(theory_curve(cfg), cfg.base) for cfg in
                      (dataclasses.replace(group[0].config, T=int(T)) for T in T_axis)]
            if curves[0][0] is not None:
                kind = curves[0][0][1]
                draw_theory(ax, T_axis / s.d, [c[0][-1] * base / s.sigma**2 for c, base in curves], label, color, kind)
                kinds.add(kind)
        plain_log_ticks(ax, "x")
        plain_log_ticks(ax, "y")
        ax.set_xlabel("samples per dimension T/d")
        ax.set_ylabel(f"test error / σ² after N={s.generations} generations")
        ax.set_title(f"Error against T/d (d={s.d}, {s.trials} trials)")
        handles = [Line2D([], [], color=SETTING_COLORS[setting_name(g[0].config)], marker=markers[label],
                          linestyle="", label=label) for label, g in groups.items()]
        ax.legend(handles=handles + style_handles(kinds, "simulation mean, 95% CI")[1:], loc="upper right")
    return fig


SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X")  # one per series where series share x values
DODGE_DECADES = 0.012  # horizontal offset between neighbouring series on a log axis (2.8% of x)


def figure_edit_heatmap(s: FigureSettings = FigureSettings()) -> Figure:
    """Error / base: after N generations for disjoint schedules over (p, eta), both proposals, and per
    generation for constant-p random schedules (resample). Simulation in colour (``grid_size`` values of p,
    and of eta or one row per generation), theory as white contours on a grid four times finer, at the colour
    bar's ticks; colours and contours share one scale."""
    p_grid, eta_grid = np.linspace(0.0, 1.0, s.grid_size), np.linspace(0.1, 1.0, s.grid_size)
    p_fine, eta_fine = np.linspace(0.0, 1.0, 4 * s.grid_size), np.linspace(0.1, 1.0, 4 * s.grid_size)
    generations = np.arange(s.generations + 1)

    def disjoint(op, p, eta):
        return s.config("edit", edit_op=op, mask="disjoint", edit_fraction=float(p), decay=float(eta))

    def random(p):
        return s.config("edit", edit_op="resample", mask="random", edit_fraction=float(p))

    with figure_style():
        fig = Figure(figsize=(12.5, 4.0))
        axes = fig.subplots(1, 3)
        for ax, op in zip(axes, ("perturb", "resample")):
            runs = simulate_many([disjoint(op, p, eta) for eta in eta_grid for p in p_grid])
            sim = np.reshape([relative(run)[0][-1] for run in runs], (len(eta_grid), len(p_grid)))
            curves = [[theory_curve(disjoint(op, p, eta)) for p in p_fine] for eta in eta_fine]
            th = [[curve[-1] for curve, _ in row] for row in curves]
            draw_heatmap(fig, ax, (p_grid, eta_grid, sim), (p_fine, eta_fine, th), curves[0][0][1],
                         f"{op}, disjoint masks, generation {s.generations}", "first-generation edit fraction p",
                         "decay η")
        sim = np.transpose([relative(run)[0] for run in simulate_many([random(p) for p in p_grid])])
        curves = [theory_curve(random(p)) for p in p_fine]
        draw_heatmap(fig, axes[2], (p_grid, generations, sim), (p_fine, generations, np.transpose([c for c, _ in curves])),
                     curves[0][1], "resample, random masks", "edit fraction p (every generation)", "generation n")
        fig.suptitle(f"Test error / {BASE_LABEL} (T={s.T}, d={s.d}, {s.trials} trials). Colours: simulation; "
                     "white contours: theory (dashed)")
    return fig


def draw_heatmap(fig, ax, simulated, predicted, kind: str, title: str, xlabel: str, ylabel: str) -> None:
    """Simulated (x, y, values) as cells with a colour bar; predicted (x, y, values) as contours labelled
    with their level at the bar's ticks, dashed. The colour scale spans
    both, so every contour level is on the bar (marked there too); labels that would overlap are dropped."""
    values = np.asarray(predicted[2])
    low, high = values.min(), values.max()
    norm = Normalize(min(low, np.min(simulated[2])), max(high, np.max(simulated[2])))
    mesh = ax.pcolormesh(*simulated, shading="nearest", cmap="viridis", norm=norm, label="simulation")
    bar = fig.colorbar(mesh, ax=ax)
    bar.set_label(f"simulated test error / {BASE_LABEL}")
    levels = [v for v in bar.get_ticks() if low + 0.02 * (high - low) < v < high - 0.02 * (high - low)]
    contours = ax.contour(*predicted, levels=levels, colors="white", linestyles=THEORY_LINESTYLE, linewidths=1.1)
    contours.set_label(kind)
    bar.add_lines(contours)
    labels = ax.clabel(contours, fontsize=7, fmt="%g", inline=False)
    drop_crowded_labels(ax, labels)
    for label in labels:
        label.set_bbox(dict(boxstyle="round,pad=0.1", facecolor="black", alpha=0.35, linewidth=0))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(False)


def drop_crowded_labels(ax, labels, min_gap: float = 0.09) -> None:
    """Remove contour labels closer than ``min_gap`` (axes fraction, both directions) to one kept before."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    kept = []
    for label in list(labels):
        x, y = label.get_position()
        at = ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0))
        if any(abs(at[0] - x) < min_gap and abs(at[1] - y) < min_gap / 2 for x, y in kept):
            label.remove()
            labels.remove(label)
        else:
            kept.append(at)


def figure_threshold_masks(s: FigureSettings = FigureSettings()) -> Figure:
    """Threshold masks (edit position t iff |residual| <= tau sigma, resample proposal): realised edit
    fraction (left) and test error / base (right) per generation, one series per tau. Theory has no
    result for masks that depend on the data; the dotted lines are random masks at the same fractions."""
    results = simulate_many([s.config("edit", edit_op="resample", mask="threshold", threshold=tau)
                             for tau in s.thresholds])
    colors = matplotlib.colormaps["plasma"](np.linspace(0.1, 0.8, len(results)))
    with figure_style():
        fig = Figure(figsize=(9.5, 4.0))
        ax_frac, ax_err = fig.subplots(1, 2)
        for result, color in zip(results, colors):
            label, cfg = setting_label(result.config), result.config
            mean, _, low, high = mean_interval(result.edit_fractions[:, 1:])
            draw_band(ax_frac, result.generation[1:], mean, low, high, label, color)
            draw_band(ax_err, result.generation, *relative(result), label, color)
            random_masks = theory.relative_error_curve("edit", mean, edit_op="resample", mask="random", T=cfg.T, d=cfg.d)
            ax_err.plot(result.generation, random_masks, LIMIT_LINESTYLE, color=color, linewidth=1.5, zorder=3,
                        label=f"{label} random masks at these fractions (theory)")
        ax_frac.set_xlabel("generation n")
        ax_frac.set_ylabel("realised edit fraction pₙ")
        ax_frac.set_title("share of positions edited")
        ax_err.set_xlabel("generation n (0 = fit on real data)")
        ax_err.set_ylabel(f"test error / {BASE_LABEL}")
        ax_err.set_title("test error")
        for ax in (ax_frac, ax_err):
            ax.xaxis.get_major_locator().set_params(integer=True)
        handles = [Patch(color=c, label=setting_label(r.config)) for r, c in zip(results, colors)]
        handles += [style_handles()[0], Line2D([], [], color="0.3", linestyle=LIMIT_LINESTYLE,
                                               label="theory: random masks at the same fractions")]
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
        fig.suptitle(f"Threshold masks, resample proposal (T={s.T}, d={s.d}, {s.trials} trials)")
    return fig


# ---------------------------------------------------------------------------------------------------
# Ridge and minimum-norm figures: simulation bands against the proportional-limit equivalents of
# theory.ridge (dashed, labelled "<setting> limit") and the exact min-norm / OLS forms (dashed, "theory").

RIDGE_LIMIT = "limit"
GENERATION_COLORS = ("#000000", "#0072B2", "#E69F00", "#D55E00")
SCALING = dict(cov="powerlaw", alpha=1.5, wstar="powerlaw", wstar_exponent=1.0, sigma=0.05)
"""The scaling-law setting: eigenvalues k^-1.5, w*_k^2 ∝ k^-1, sigma = 0.05 (noise floor visible by n = 5)."""


def _generation_color(i: int) -> str:
    return GENERATION_COLORS[i % len(GENERATION_COLORS)]


def scaling_configs(s: FigureSettings) -> dict[str, list[SimConfig]]:
    """Minimum-norm (ridge 0, T < d) on a fixed power-law design, per regime and T."""
    regimes = {"replace": dict(regime="replace"), "accumulate": dict(regime="accumulate"),
               "perturb random, p=0.1": dict(regime="edit", edit_op="perturb", edit_fraction=0.1)}
    G = max(s.ridge_generations)
    return {name: [s.config(T=T, d=s.ridge_d, generations=G, **SCALING, **options) for T in s.ridge_T]
            for name, options in regimes.items()}


def figure_ridge_scaling(s: FigureSettings = FigureSettings()) -> Figure:
    """Error against T (log-log) for minimum-norm retraining on a power-law spectrum, generations
    ``ridge_generations``: simulation bands and the limit B_0 + c_n V_0 (theory.ridge) over every T."""
    runs = {name: [simulate(cfg) for cfg in cfgs] for name, cfgs in scaling_configs(s).items()}
    T_axis = np.unique(np.geomspace(min(s.ridge_T), max(s.ridge_T), 40).astype(int))
    with figure_style():
        fig = Figure(figsize=(10.5, 3.8))
        axes = fig.subplots(1, len(runs), sharey=True)
        for ax, (name, results_) in zip(axes, runs.items()):
            T_runs = np.array([r.config.T for r in results_])
            theory_T = [ridge_theory.expected_error(dataclasses.replace(results_[0].config, T=int(T)))[0]
                        for T in T_axis]
            for i, g in enumerate(s.ridge_generations):
                label, color = f"{name}, n={g}", _generation_color(i)
                draw_band(ax, T_runs, *(np.array([getattr(r, k)[g] for r in results_])
                                        for k in ("mean", "ci_low", "ci_high")), label, color)
                ax.plot(T_axis, [c[g] for c in theory_T], THEORY_LINESTYLE, color=color,
                        label=f"{label} {RIDGE_LIMIT}", linewidth=1.3, zorder=3)
            plain_log_ticks(ax, "x")
            plain_log_ticks(ax, "y")
            ax.set_xlabel("samples per generation T")
            ax.set_title(name)
        axes[0].set_ylabel("test error ||w_n − w*||²_Σ")
        axes[0].legend(handles=[Line2D([], [], color=_generation_color(i), label=f"n = {g}")
                                for i, g in enumerate(s.ridge_generations)]
                       + style_handles()[:1] + [Line2D([], [], color="0.3", linestyle=THEORY_LINESTYLE,
                                                       label="proportional limit")], loc="lower left")
        fig.suptitle(f"Scaling law under collapse: min-norm, λ_k ∝ k^-1.5, w*_k² ∝ k^-1, σ={SCALING['sigma']}, "
                     f"d={s.ridge_d}, {s.trials} trials")
    return fig


def figure_ridge_lambda(s: FigureSettings = FigureSettings()) -> Figure:
    """Error against lambda per generation (replace, fresh design, power-law spectrum, T = 50, d = 100):
    simulation bands, the limit curve and its minimiser (the optimal lambda, a marker per generation)."""
    G = max(s.ridge_generations)
    base = s.config("replace", design="fresh", T=50, d=100, generations=G, cov="powerlaw", alpha=1.5,
                    wstar="powerlaw", wstar_exponent=1.0, sigma=0.5)
    grid = np.geomspace(1e-3, 3.0, s.ridge_lambdas)
    fine = np.geomspace(1e-3, 3.0, 60)
    runs = [simulate(dataclasses.replace(base, ridge=float(lam))) for lam in grid]
    curves = np.array([ridge_theory.expected_error(dataclasses.replace(base, ridge=float(lam)))[0] for lam in fine])
    best = ridge_theory.optimal_ridge(dataclasses.replace(base, ridge=1.0), bounds=(1e-3, 3.0))
    with figure_style():
        fig = Figure(figsize=(6.8, 4.6))
        ax = fig.subplots()
        for i, g in enumerate(s.ridge_generations):
            label, color = f"replace (fresh), n={g}", _generation_color(i)
            draw_band(ax, grid, *(np.array([getattr(r, k)[g] for r in runs]) for k in ("mean", "ci_low", "ci_high")),
                      label, color)
            ax.plot(fine, curves[:, g], THEORY_LINESTYLE, color=color, label=f"{label} {RIDGE_LIMIT}", linewidth=1.3)
            at_best = ridge_theory.expected_error(dataclasses.replace(base, ridge=float(best[g])))[0][g]
            ax.plot([best[g]], [at_best], "*", color=color, markersize=11, label=f"{label} optimal λ={best[g]:.3g}")
        plain_log_ticks(ax, "y")
        ax.set_xscale("log")
        ax.set_xlabel("ridge λ (penalty λ T ||w||²)")
        ax.set_ylabel("test error ||w_n − w*||²_Σ")
        ax.legend(handles=[Line2D([], [], color=_generation_color(i), label=f"n = {g}, optimal λ = {best[g]:.3g}")
                           for i, g in enumerate(s.ridge_generations)] + style_handles()[:1]
                  + [Line2D([], [], color="0.3", linestyle=THEORY_LINESTYLE, label="proportional limit"),
                     Line2D([], [], color="0.3", marker="*", linestyle="", markersize=9, label="its minimiser")],
                  loc="upper left", fontsize=8)
        ax.set_title("Error against λ per generation (T=50, d=100, σ=0.5, λ_k ∝ k^-1.5; ★ optimal λ)")
    return fig


def figure_double_descent(s: FigureSettings = FigureSettings()) -> Figure:
    """Minimum-norm / OLS (ridge 0) across T/d under replace, d = 50, isotropic: simulation (median and
    mean bands) against the exact forms (1 - T/d) + (n+1) sigma^2 T/(d-T-1) and (n+1) sigma^2 d/(T-d-1)."""
    d_, sigma_ = 50, 0.5
    G = max(s.ridge_generations)
    Ts = [T for T in s.double_descent_T if abs(T - d_) > 1]
    runs = [simulate(s.config("replace", T=T, d=d_, sigma=sigma_, generations=G)) for T in Ts]
    T_axis = np.array([T for T in range(2, 3 * d_ + 1) if abs(T - d_) > 3])
    r = theory.results()
    with figure_style():
        fig = Figure(figsize=(6.8, 4.6))
        ax = fig.subplots()
        for i, g in enumerate(s.ridge_generations):
            label, color = f"replace, n={g}", _generation_color(i)
            ratio = np.array(Ts) / d_
            for side in (ratio < 1, ratio > 1):  # no band across the interpolation threshold T = d
                draw_band(ax, ratio[side], *(np.array([getattr(run, k)[g] for run, keep in zip(runs, side) if keep])
                                             for k in ("mean", "ci_low", "ci_high")), label, color)
            values = dict(sigma=sigma_, d=d_, n=g)
            exact = [theory.evaluate(r["minnorm-replace" if T < d_ else "replace"], T=int(T), **values) for T in T_axis]
            for side in (T_axis < d_, T_axis > d_):
                ax.plot(T_axis[side] / d_, np.asarray(exact)[side], THEORY_LINESTYLE, color=color,
                        label=f"{label} {THEORY}", linewidth=1.3)
        ax.axvline(1.0, color="0.6", linewidth=0.8)
        plain_log_ticks(ax, "y")
        ax.set_xlabel("samples per dimension T/d (min-norm left of 1, OLS right)")
        ax.set_ylabel("test error ||w_n − w*||²")
        ax.set_ylim(0.1, 50)
        ax.legend(handles=[Line2D([], [], color=_generation_color(i), label=f"n = {g}")
                           for i, g in enumerate(s.ridge_generations)] + style_handles(), loc="upper right")
        ax.set_title(f"Double descent under collapse (replace, d={d_}, σ={sigma_}, {s.trials} trials)")
    return fig


# Keyed by FIGURE_NAMES (the CLI's --only choices, importable without matplotlib), in that order.
FIGURES: dict[str, Callable[[FigureSettings], Figure]] = {
    "error_vs_generation": figure_error_vs_generation,
    "error_vs_edit_budget": figure_error_vs_edit_budget,
    "error_vs_samples_ratio": figure_error_vs_samples_ratio,
    "edit_heatmap": figure_edit_heatmap,
    "threshold_masks": figure_threshold_masks,
    "ridge_scaling": figure_ridge_scaling,
    "ridge_lambda": figure_ridge_lambda,
    "double_descent": figure_double_descent,
}


# ---------------------------------------------------------------------------------------------------
# Output


def save_figure(fig: Figure, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write ``fig`` as ``<name>.png`` and ``<name>.pdf`` in ``out_dir``, atomically and without
    timestamps (the same seed gives the same files)."""
    paths = []
    with figure_style():
        for fmt, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
            path = Path(out_dir) / f"{name}.{fmt}"
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, metadata=metadata)
            paths.append(path)
    return paths


def write_figure(name: str, out_dir: str | os.PathLike, settings: FigureSettings = FigureSettings()) -> list[Path]:
    """Draw the figure ``name`` of :data:`FIGURES` and write it to ``out_dir`` as PNG and PDF."""
    if name not in FIGURES:
        raise InputError(f"figure {name!r} is not one of {', '.join(FIGURES)}")
    check_writable("--out", Path(out_dir) / f"{name}.png")
    return save_figure(FIGURES[name](settings), out_dir, name)


def write_all(out_dir: str | os.PathLike, progress: bool = True, settings: FigureSettings = FigureSettings(),
              names=None, reuse: bool = True) -> tuple[list[Path], list[str]]:
    """Write the figures ``names`` (default: every figure of :data:`FIGURES`) to ``out_dir`` as PNG and PDF.

    With ``reuse``, a figure whose files ``out_dir/manifest.json`` records as drawn with the same settings
    by the same code, and which are still there unchanged, is not drawn again. Returns (the paths of every figure, the names
    of those reused).
    """
    names = list(FIGURES) if names is None else list(names)
    for name in names:
        if name not in FIGURES:
            raise InputError(f"figure {name!r} is not one of {', '.join(FIGURES)}")
    check_writable("--out", Path(out_dir) / f"{names[0]}.png")
    manifest = Manifest(Path(out_dir) / MANIFEST)
    paths, reused = [], []
    with Progress(len(names), "figures", "figure", enabled=progress) as bar:
        for name in names:
            inputs = {"figure": name, "settings": dataclasses.asdict(settings), "code": code_fingerprint()}
            found = manifest.reusable(name, inputs) if reuse else None
            if found is not None:
                reused.append(name)
            else:
                found = write_figure(name, out_dir, settings)
                manifest.record(name, inputs, found)
            paths += found
            bar.update(1, note=f"{name} (reused)" if reused[-1:] == [name] else name)
    return paths, reused
