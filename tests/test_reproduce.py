"""The main job: every regime simulated, summary beside theory, JSON per run, resume by skipping."""

from __future__ import annotations

import json
import sys

from linreg_collapse.cli import main
from linreg_collapse.commands.reproduce import RUNS


def test_reproduce_writes_every_run_and_resumes(tmp_path, capsys, monkeypatch):
    args = ["reproduce", "--out", str(tmp_path), "--trials", "40", "--generations", "3", "--no-figures", "--no-lm"]
    assert main(args) == 0
    table = capsys.readouterr().out
    for name in RUNS:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["generation"] == [0, 1, 2, 3] and len(data["mean"]) == 4
        assert name in table
    summary = {row["run"]: row for row in json.loads((tmp_path / "summary.json").read_text())}
    assert summary["replace"]["theory_over_base"] == 4.0 and summary["replace"]["theory_kind"] == "exact"
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
