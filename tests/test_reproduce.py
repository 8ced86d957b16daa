"""The main job: every regime simulated, summary beside theory, JSON per run, resume by skipping."""

from __future__ import annotations

import dataclasses
import json
import sys

from linreg_collapse.cli import main
from linreg_collapse.commands import reproduce
from linreg_collapse.commands.reproduce import RUNS

from test_figures import SMALL


def test_reproduce_writes_every_run_and_resumes(tmp_path, capsys, monkeypatch):
    # The figures' test shape, so the runs load the programs test_figures compiled (tests/conftest.py).
    monkeypatch.setattr(reproduce, "DEFAULT", dataclasses.replace(reproduce.DEFAULT, T=SMALL.T, d=SMALL.d))
    args = ["reproduce", "--out", str(tmp_path), "--trials", str(SMALL.trials), "--generations",
            str(SMALL.generations), "--seed", str(SMALL.seed), "--no-figures", "--no-lm"]
    assert main(args) == 0
    table = capsys.readouterr().out
    for name in RUNS:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["generation"] == [0, 1, 2, 3, 4] and len(data["mean"]) == 5
        assert data["config"]["T"] == SMALL.T and name in table
    summary = {row["run"]: row for row in json.loads((tmp_path / "summary.json").read_text())}
    assert summary["replace"]["theory_over_base"] == 5.0 and summary["replace"]["theory_kind"] == "exact"
    assert summary["accumulate-subsample"]["theory_over_base"] is None

    simulator = sys.modules["linreg_collapse.simulate"]  # reproduce imports simulate from it when it runs

    def must_not_simulate(*a, **k):
        raise AssertionError("a finished run was simulated again")

    monkeypatch.setattr(simulator, "simulate", must_not_simulate)
    before = (tmp_path / "replace.json").read_text()
    capsys.readouterr()
    assert main(args) == 0
    assert (tmp_path / "replace.json").read_text() == before
    assert f"(reused {len(RUNS)} finished runs: replace, accumulate" in capsys.readouterr().out


def test_reproduce_rejects_a_file_as_out(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["reproduce", "--out", str(target), "--no-figures", "--no-lm"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
