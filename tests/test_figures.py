"""The theorem figures draw the expected series, with finite data, theory over the simulation bands,
and are written (PNG + PDF, deterministic) by the CLI; small settings that reuse a few compiled programs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from matplotlib.collections import PolyCollection
from matplotlib.contour import ContourSet

from linreg_collapse import figures
from linreg_collapse.cli import main

# One T for every figure (T/d at the same T), so the figures share seven compiled programs plus one.
SMALL = figures.FigureSettings(T=30, d=5, generations=4, trials=200, seed=1, samples_T=(30,), grid_size=3,
                               thresholds=(0.5, 2.0), ridge_d=40, ridge_T=(8, 16), ridge_generations=(0, 2),
                               ridge_lambdas=3, double_descent_T=(10, 100))


@pytest.fixture(scope="module")
def drawn():
    return {name: make(SMALL) for name, make in figures.FIGURES.items()}


def labelled_lines(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def band(ax, label: str) -> dict[float, tuple[float, float]]:
    """x -> (low, high) of the interval band labelled ``label``."""
    (coll,) = [c for c in ax.collections if isinstance(c, PolyCollection) and c.get_label() == label]
    vertices = coll.get_paths()[0].vertices
    out = {}
    for x, y in vertices:
        low, high = out.get(round(x, 9), (np.inf, -np.inf))
        out[round(x, 9)] = (min(low, y), max(high, y))
    return out


Z_TOLERANCE = 4.0  # standard errors: a drawn 95% band at every point of several series would fail by chance
T_95 = stats.t.ppf(0.975, SMALL.trials - 1)  # the drawn band's half-width in standard errors


def theory_inside_bands(ax) -> list[str]:
    """Labels of the dashed theory lines more than Z_TOLERANCE standard errors from their simulation at some
    x (the drawn 95% band, widened from T_95 to Z_TOLERANCE standard errors about its centre)."""
    outside = []
    for label, line in labelled_lines(ax).items():
        if not label.endswith(f" {figures.THEORY}"):
            continue
        intervals = band(ax, label.removesuffix(f" {figures.THEORY}"))
        for x, y in zip(*line.get_data()):
            low, high = intervals[round(float(x), 9)]
            centre, half = (low + high) / 2, (high - low) / 2 * Z_TOLERANCE / T_95
            if not centre - half <= y <= centre + half:
                outside.append(label)
                break
    return outside


def assert_finite_lines(ax) -> None:
    for label, line in labelled_lines(ax).items():
        x, y = (np.asarray(v, float) for v in line.get_data())
        assert len(x) > 0 and np.all(np.isfinite(x)) and np.all(np.isfinite(y)), label


def test_every_figure_has_labelled_axes_finite_data_and_a_legend(drawn):
    for name, fig in drawn.items():
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            shares_y = len(ax.get_shared_y_axes().get_siblings(ax)) > 1
            assert ax.get_xlabel() and ax.get_title() and (ax.get_ylabel() or shares_y), name
            assert_finite_lines(ax)
        assert fig.legends or any(ax.get_legend() for ax in fig.axes) or name == "edit_heatmap", name
    assert drawn["error_vs_edit_budget"].axes[0].get_ylabel()


def test_error_vs_generation_draws_every_regime_with_theory_inside_its_band(drawn):
    fig = drawn["error_vs_generation"]
    retraining, editing = fig.axes[0], fig.axes[2]
    assert {"replace", "accumulate", "accumulate-subsample"} <= set(labelled_lines(retraining))
    assert {"replace theory", "accumulate theory"} <= set(labelled_lines(retraining))
    assert "accumulate-subsample theory" not in labelled_lines(retraining)  # theory has no result for it
    edit_labels = set(labelled_lines(editing))
    for setting in ("perturb random, p=0.25", "resample random, p=0.25", "perturb disjoint, p=0.5, η=0.5",
                    "resample disjoint, p=0.5, η=0.5"):
        assert {setting, f"{setting} theory"} <= edit_labels
    for ax in fig.axes:
        assert theory_inside_bands(ax) == []
    # the right panels show simulation / theory: the replace band holds 1 at every generation (4 SE)
    ratio = fig.axes[1]
    assert set(band(ratio, "replace (÷ theory)").values()) and all(
        abs((low + high) / 2 - 1) <= (high - low) / 2 * Z_TOLERANCE / T_95
        for low, high in band(ratio, "replace (÷ theory)").values())
    assert "accumulate-subsample (÷ theory)" not in labelled_lines(ratio)
    # replace grows linearly: (n + 1) base at generation n
    np.testing.assert_allclose(labelled_lines(retraining)["replace theory"].get_ydata(), np.arange(1, 6))


def test_band_check_fails_for_a_wrong_theory(drawn):
    """Negative control: the paper's counting (n instead of n + 1) leaves the replace band."""
    ax = drawn["error_vs_generation"].axes[0]
    line = labelled_lines(ax)["replace theory"]
    original = line.get_ydata().copy()
    try:
        line.set_ydata(original - 1)
        assert theory_inside_bands(ax) == ["replace theory"]
    finally:
        line.set_ydata(original)


def test_edit_budget_figure_has_both_proposals_bounds_and_exact_perturb_theory(drawn):
    perturb, resample = drawn["error_vs_edit_budget"].axes
    assert perturb.get_ylim()[1] < resample.get_ylim()[1] < 7, "own y range; e^{2Q} is clipped, not scaled to"
    for ax, op in ((perturb, "perturb"), (resample, "resample")):
        labels = set(labelled_lines(ax))
        assert {f"{op}, random masks", f"{op}, disjoint masks", figures.PAPER_BOUND} <= labels
        budget = labelled_lines(ax)[f"{op}, random masks"].get_xdata()
        assert budget.max() == pytest.approx(2.0, abs=0.15)  # random masks reach a budget of 2
    np.testing.assert_allclose(labelled_lines(perturb)[figures.PAPER_BOUND].get_ydata(), 2.0)
    assert set(figures.EDIT_BUDGET_BOUNDS["resample"].values()) <= set(labelled_lines(resample))
    assert theory_inside_bands(perturb) == []
    # perturb's theory is exact: final error = 1 + budget
    line = labelled_lines(perturb)["perturb, random masks theory"]
    np.testing.assert_allclose(line.get_ydata(), 1 + line.get_xdata())


def test_samples_ratio_figure_has_a_theory_curve_through_each_exact_regime(drawn):
    (ax,) = drawn["error_vs_samples_ratio"].axes
    lines = labelled_lines(ax)
    for regime in ("replace", "accumulate", "perturb disjoint, p=0.5, η=0.5"):
        x, y = (np.asarray(v) for v in lines[f"{regime} theory"].get_data())
        at = np.argmin(abs(x - SMALL.T / SMALL.d))
        container = next(c for c in ax.containers if c.get_label() == regime)
        (segment,) = container.lines[2][0].get_segments()
        low, high = sorted(segment[:, 1])
        centre, half = (low + high) / 2, (high - low) / 2 * Z_TOLERANCE / T_95
        assert abs(y[at] - centre) <= half, regime
        assert np.all(np.diff(y) < 0), regime  # error falls as T grows
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_heatmap_has_simulation_cells_and_theory_contours(drawn):
    panels = [ax for ax in drawn["edit_heatmap"].axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3
    for ax in panels:
        (mesh,) = [c for c in ax.collections if c.get_label() == "simulation"]
        cells = np.asarray(mesh.get_array(), float)
        assert cells.size >= SMALL.grid_size**2 and np.all(np.isfinite(cells)) and cells.min() >= 0.9
        assert any(isinstance(c, ContourSet) and c.get_label() == figures.THEORY
                   for c in ax.collections)


def test_threshold_figure_shows_fractions_and_errors_per_tau(drawn):
    ax_frac, ax_err = drawn["threshold_masks"].axes
    for tau in SMALL.thresholds:
        label = f"resample threshold, τ={tau:g}"
        fractions = labelled_lines(ax_frac)[label].get_ydata()
        assert np.all((fractions >= 0) & (fractions <= 1))
        assert label in labelled_lines(ax_err)
    small, large = (labelled_lines(ax_frac)[f"resample threshold, τ={t:g}"].get_ydata() for t in SMALL.thresholds)
    assert np.all(small < large)  # a larger tau edits more positions


def test_cli_writes_png_and_pdf_deterministically_and_reuses_them(tmp_path, capsys, monkeypatch):
    args = ["figures", "--only", "threshold_masks", "--trials", "200", "--seed", "1", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    for suffix in ("png", "pdf"):
        first, second = (tmp_path / run / f"threshold_masks.{suffix}" for run in "ab")
        assert first.stat().st_size > 1000
        assert first.read_bytes() == second.read_bytes()
    assert not list((tmp_path / "a").glob(".*"))  # no temporary files left behind
    capsys.readouterr()

    def must_not_draw(*args, **kwargs):
        raise AssertionError("an up-to-date figure was drawn again")

    monkeypatch.setattr(figures, "write_figure", must_not_draw)
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert "reused (already drawn with these settings): threshold_masks" in capsys.readouterr().out
    (tmp_path / "a" / "threshold_masks.png").write_bytes(b"changed")
    with pytest.raises(AssertionError, match="drawn again"):  # a changed file is drawn again
        main(args + ["--out", str(tmp_path / "a")])
    with pytest.raises(AssertionError, match="drawn again"):  # other settings too
        main(args + ["--out", str(tmp_path / "b"), "--seed", "2"])


def test_cli_rejects_an_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["figures", "--out", str(blocker / "figures")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linreg-collapse: error: --out") and "\n" not in err
