"""`linreg-collapse sweep`: rows equal `simulate` runs, 4 devices equal 1, resume skips finished
configurations, bad grids are one line with exit 2 before any work, configurations too large for memory
(or whose run JAX fails) are skipped and reported while the others are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import linreg_collapse
from linreg_collapse import SimConfig, memory, simulate
from linreg_collapse.cli import main
from linreg_collapse.commands.sweep import EXIT_SKIPPED
from linreg_collapse.errors import ResourceError
from linreg_collapse.grid import parse_grid

ROOT = Path(__file__).resolve().parents[1]
RTOL = 1e-12
STATS = ["mean", "stderr", "ci_low", "ci_high", "edit_fraction"]
# 2 x 2 parameter values of one shape: one compiled program, vmapped over 4 parameter settings.
GRID = textwrap.dedent("""\
    regime = "edit"
    edit-op = "resample"
    mask = "disjoint"
    edit-fraction = [0.2, 0.5]
    decay = 0.5
    sigma = [0.5, 2]
    T = 14
    d = 3
    generations = 3
    trials = 30
    seed = 5
    """)


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "grid.toml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def swept(grid_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    return out, linreg_collapse.sweep(grid_file, out=out)


def rows_of(table: pd.DataFrame, p: float, sigma: float) -> pd.DataFrame:
    return table[(table["edit-fraction"] == p) & (table["sigma"] == sigma)].sort_values("generation")


def matches(rows: pd.DataFrame, result) -> bool:
    """Does every statistic of ``rows`` equal the simulate result to RTOL?"""
    expected = dict(mean=result.mean, stderr=result.stderr, ci_low=result.ci_low, ci_high=result.ci_high,
                    edit_fraction=result.edit_fraction)
    return all(np.allclose(rows[k].to_numpy(), expected[k], rtol=RTOL, atol=0) for k in STATS)


def test_rows_equal_simulate_and_the_files_hold_the_table(swept):
    out, table = swept
    assert len(table) == 4 * 4 and list(table["generation"][:4]) == [0, 1, 2, 3]
    for p, sigma in [(0.2, 0.5), (0.5, 2.0)]:
        result = simulate(SimConfig(regime="edit", edit_op="resample", mask="disjoint", edit_fraction=p, decay=0.5,
                                    sigma=sigma, T=14, d=3, generations=3, trials=30, seed=5))
        assert matches(rows_of(table, p, sigma), result)
        np.testing.assert_allclose(rows_of(table, p, sigma)["median"], np.median(result.errors, axis=0), rtol=RTOL)
        other = rows_of(table, p, 2.5 - sigma)  # negative control: the other sigma's rows
        assert not matches(other, result)
    stored = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(stored, table, check_dtype=False, rtol=RTOL)
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["configurations"] == 4 and meta["grid"]["sigma"] == [0.5, 2.0]
    assert len(meta["timings"]["batches"]) == 1, "one shape, one batch: one compiled program"
    assert meta["devices"]["count"] >= 1 and meta["versions"]["jax"]
    assert len(list((out / "runs").glob("*.json"))) == 4 and not (out / "partial").exists()


def test_rerun_skips_finished_configurations(swept, grid_file, capsys, monkeypatch):
    out, table = swept
    sweep_module = sys.modules["linreg_collapse.sweep"]  # the module (the package exports the function)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished configuration was run again")

    monkeypatch.setattr(sweep_module, "run_batch", must_not_run)
    assert main(["sweep", str(grid_file), "--out", str(out), "--no-progress"]) == 0
    assert "4 of 4 configurations already finished" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), table, check_dtype=False, rtol=RTOL)


def test_four_devices_equal_one(swept, grid_file, tmp_path):
    """The same grid with trials sharded over 4 (forced host) devices, in a subprocess under a timeout."""
    _, table = swept
    out, cache = tmp_path / "four", tmp_path / "jax-cache"
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}  # not the suite's cache
    env.update(XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4",  # suite's code generation
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), LINREG_COLLAPSE_JAX_CACHE=str(cache))
    subprocess.run([sys.executable, "-m", "linreg_collapse.cli", "sweep", str(grid_file), "--out", str(out),
                    "--no-progress"], env=env, check=True, timeout=300, capture_output=True)
    assert json.loads((out / "sweep.json").read_text())["devices"]["count"] == 4
    four = pd.read_csv(out / "results.csv")
    one = pd.read_csv(swept[0] / "results.csv")
    pd.testing.assert_frame_equal(four, one, check_exact=False, rtol=RTOL, atol=0)
    assert any(cache.iterdir()), "the CLI enables the persistent compilation cache"
    shifted = one.assign(mean=one["mean"] * (1 + 1e-9))  # negative control: a 1e-9 change is caught
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(four, shifted, check_exact=False, rtol=RTOL, atol=0)


def test_configurations_too_large_are_skipped_and_a_rerun_runs_only_them(swept, tmp_path, monkeypatch, capsys):
    """GRID at T = 14 (the fixture's configurations) and at a large T. With LINREG_MEMORY_BYTES at twice
    what the small configurations' batch needs (so their batch, chunk and compiled program stay the
    fixture's), one trial at the large T does not fit: those 4 are skipped, the other 4 written."""
    _, table = swept
    sweep_module = sys.modules["linreg_collapse.sweep"]
    big_T = 16_000
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.replace("T = 14", f"T = [14, {big_T}]"))
    small, big = (SimConfig(regime="edit", edit_op="resample", mask="disjoint", T=T, d=3, generations=3, trials=30)
                  for T in (14, big_T))
    available = 2 * memory.chunk_bytes(small, 4 * 30)
    assert memory.chunk_bytes(big, 1) > available
    out = tmp_path / "out"

    monkeypatch.setenv(memory.ENV_OVERRIDE, str(available))
    assert main(["sweep", str(grid), "--out", str(out), "--no-progress"]) == EXIT_SKIPPED
    lines = capsys.readouterr().err.splitlines()
    needed = f"one trial needs about {memory.format_bytes(memory.chunk_bytes(big, 1))}"
    reports = [line for line in lines if line.startswith("sweep: skipped configuration {")]
    assert len(reports) == 4 and all(f"T={big_T}}}: {needed}" in line and ": lower T or d" in line
                                     and f"{memory.format_bytes(available)} is available" in line for line in reports)
    assert "4 of 8 configurations skipped" in lines[-1] and not any("Traceback" in line for line in lines)
    written = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(written, table, check_dtype=False, rtol=RTOL)  # the fitting ones, as run alone
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["finished"] == 4 and [(s["cause"], s["parameters"]["T"]) for s in meta["skipped"]] == [
        ("memory", big_T)] * 4

    # JAX failing in the large configurations' run: reported in attrs, the finished ones kept
    monkeypatch.delenv(memory.ENV_OVERRIDE)
    real_run_batch = sweep_module.run_batch

    def fail(cfgs, **kwargs):
        raise ResourceError("JAX failed in chunk 1/1 (30 trials): RESOURCE_EXHAUSTED")

    monkeypatch.setattr(sweep_module, "run_batch", fail)
    failed = linreg_collapse.sweep(grid, out=out)
    assert [(s["cause"], s["parameters"]["T"]) for s in failed.attrs["skipped"]] == [("resource", big_T)] * 4
    pd.testing.assert_frame_equal(failed, table, check_dtype=False, rtol=RTOL)

    # memory raised: only the skipped configurations run, nothing is skipped (negative control)
    ran = []

    def recording(cfgs, **kwargs):
        ran.extend(c.T for c in cfgs)
        return real_run_batch(cfgs, **kwargs)

    monkeypatch.setattr(sweep_module, "run_batch", recording)
    full = linreg_collapse.sweep(grid, out=out)
    assert set(ran) == {big_T} and full.attrs["skipped"] == [] and len(full) == 8 * 4
    pd.testing.assert_frame_equal(full[full["T"] == 14].reset_index(drop=True), table, check_dtype=False, rtol=RTOL)
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["skipped"] == [] and meta["finished"] == 8 and meta["finished_before"] == 4


BAD = {
    "unknown key": ("lamda = 1.0\n", "unknown key 'lamda'"),
    "wrong type": ("T = 12.5\n", "key 'T': 12.5 must be an integer"),
    "string for a number": ('sigma = ["1"]\n', "key 'sigma': '1' must be a number"),
    "empty list": ("T = []\n", "key 'T' has no values"),
    "bad choice": ('regime = "collapse"\n', "regime='collapse' must be one of"),
    "one bad point": ("T = [40, 8]\nd = 7\n", "configuration {T=8}: T=8 with d=7 and ridge=0: the mean test error is infinite"),
    "not TOML": ("T = = 3\n", "is not a TOML file"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_grid_is_one_line_exit_2_and_writes_nothing(name, tmp_path, capsys):
    text, message = BAD[name]
    grid, out = tmp_path / "grid.toml", tmp_path / "out"
    grid.write_text(text)
    assert main(["sweep", str(grid), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_grid_keys_are_simulates_flags():
    from linreg_collapse.cli import build_parser

    simulate_parser = build_parser()._subparsers._group_actions[0].choices["simulate"]
    flags = {s[2:] for a in simulate_parser._actions for s in a.option_strings if s.startswith("--")}
    keys = set(parse_grid({"T": 20}).points()[0][0])
    assert keys == flags - {"help", "json", "no-progress"}
