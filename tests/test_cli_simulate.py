"""`linreg-collapse simulate`: the table, the JSON schema, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from linreg_collapse.cli import main

SMALL = ["--T", "30", "--d", "5", "--generations", "3", "--trials", "50"]


def test_table_and_json(tmp_path, capsys):
    out = tmp_path / "sub" / "run.json"
    code = main(["simulate", *SMALL, "--regime", "edit", "--mask", "disjoint", "--edit-fraction", "0.3",
                 "--decay", "0.5", "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    assert any("base = sigma^2 d/(T-d-1)" in line for line in table)
    rows = [line.split() for line in table if line.strip() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3]
    data = json.loads(out.read_text())
    assert set(data) >= {"config", "base", "generation", "mean", "stderr", "edit_fraction"}
    assert data["config"]["regime"] == "edit" and data["generation"] == [0, 1, 2, 3]
    assert data["config"]["sampler"] == "labels"  # the sampler that ran (edit needs labels)
    assert data["base"] == pytest.approx(5 / 24)
    np.testing.assert_allclose(data["edit_fraction"], [0, 0.3, 0.1333333, 0.0666667], atol=1e-6)
    assert float(rows[1][1]) == pytest.approx(data["mean"][1] / data["base"], abs=1e-4)
    assert not list(out.parent.glob("*.partial.npz")) and not list(out.parent.glob(".*tmp*"))


def test_masks_file_soft_edits(tmp_path, capsys):
    masks = tmp_path / "masks.csv"
    np.savetxt(masks, np.full((3, 30), 0.5), delimiter=",")
    assert main(["simulate", *SMALL, "--regime", "edit", "--mask", "file", "--masks-file", str(masks)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [float(r[-1]) for r in rows] == [0.0, 0.5, 0.5, 0.5]


def _write(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array) if name.endswith(".npy") else path.write_text(array)
    return str(path)


BAD = {
    "d - 1 <= T <= d + 1 at ridge 0": (["--T", "6", "--d", "5"], "T=6 with d=5 and ridge=0: the mean test error is infinite"),
    "d < 1": (["--d", "0"], "d=0 must be >= 1"),
    "sigma < 0": (["--sigma", "-0.5"], "sigma=-0.5 must be >= 0"),
    "p > 1": (["--regime", "edit", "--edit-fraction", "1.5"], "edit_fraction=1.5 must lie in [0, 1]"),
    "p < 0": (["--regime", "edit", "--edit-fraction", "-0.1"], "edit_fraction=-0.1 must lie in [0, 1]"),
    "eta = 0": (["--regime", "edit", "--mask", "disjoint", "--decay", "0"], "decay=0.0 must lie in (0, 1]"),
    "eta > 1": (["--regime", "edit", "--mask", "disjoint", "--decay", "1.2"], "decay=1.2 must lie in (0, 1]"),
    "tau < 0": (["--regime", "edit", "--mask", "threshold", "--threshold", "-1"], "threshold=-1.0 must be >= 0"),
    "nan": (["--sigma", "nan"], "sigma=nan must be a finite number"),
    "inf": (["--regime", "edit", "--edit-fraction", "inf"], "edit_fraction=inf must be a finite number"),
    "trials < 2": (["--trials", "1"], "trials=1 must be >= 2"),
    "fresh edit": (["--regime", "edit", "--design", "fresh"], "design='fresh' is not defined for regime='edit'"),
    "mask file missing": (["--regime", "edit", "--mask", "file"], "mask='file' needs masks"),
    "masks wrong shape": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.npy", np.ones((2, 30)))],
                          "masks shape (2, 30) must be (generations, T) = (3, 30)"),
    "masks out of range": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.npy", np.full((3, 30), 1.5))],
                           "masks values must lie in [0, 1] (found min 1.5, max 1.5)"),
    "masks non-finite": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.npy", np.full((3, 30), np.nan))],
                         "masks must be finite"),
    "masks not numbers": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.txt", "a b c\n")],
                          "could not be read as numbers"),
    "masks without file mask": (["--masks-file", ("m.npy", np.ones((3, 30)))],
                                "--masks-file has no effect here: it applies only with --regime edit"),
    # flags the configuration does not use are refused, naming the flag
    "p with replace": (["--regime", "replace", "--edit-fraction", "0.3"],
                       "--edit-fraction has no effect here: it applies only with --regime edit (this run has "
                       "--regime replace)"),
    "decay without disjoint": (["--regime", "edit", "--decay", "0.5"],
                               "--decay has no effect here: it applies only with --mask disjoint"),
    "threshold without threshold masks": (["--regime", "edit", "--mask", "random", "--threshold", "0.5"],
                                          "--threshold has no effect here: it applies only with --mask threshold"),
    "alpha without powerlaw": (["--alpha", "2"], "--alpha has no effect here: it applies only with --cov powerlaw"),
    "edit-op without edit": (["--edit-op", "perturb"], "--edit-op has no effect here: it applies only with --regime edit"),
    "mask without edit": (["--regime", "accumulate", "--mask", "random"],
                          "--mask has no effect here: it applies only with --regime edit"),
    "oversized": (["--T", "10000000000", "--d", "10"], "one trial needs about"),
    "subsample stamps overflow": (["--regime", "accumulate-subsample", "--T", "100000", "--generations", "20000"],
                                  "accumulate-subsample numbers its draws in int32"),
    "stats sampler for edit": (["--regime", "edit", "--sampler", "stats"], "--sampler stats is not available"),
    "stats sampler for subsample": (["--regime", "accumulate-subsample", "--sampler", "stats"],
                                    "--sampler stats is not available for regime='accumulate-subsample'"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_one_line_exit_2_nothing_written(case, tmp_path, capsys):
    flags, message = BAD[case]
    flags = [_write(tmp_path, *f) if isinstance(f, tuple) else f for f in flags]
    out = tmp_path / "out.json"
    code = main(["simulate", *SMALL, *flags, "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_a_flag_at_its_default_value_is_still_checked(capsys):
    assert main(["simulate", *SMALL, "--regime", "replace", "--decay", "1.0"]) == 2
    assert "--decay has no effect here" in capsys.readouterr().err


def test_json_of_a_finished_run_is_reused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run.json"
    assert main(["simulate", *SMALL, "--regime", "accumulate", "--json", str(out), "--no-progress"]) == 0
    first = capsys.readouterr()
    assert "theory: mean/base = sum_{k=1}^{n+1} 1/k^2" in first.out and first.err == ""
    simulator = sys.modules["linreg_collapse.simulate"]  # the command imports simulate from it when it runs

    def must_not_simulate(*args, **kwargs):
        raise AssertionError("a finished run was simulated again")

    monkeypatch.setattr(simulator, "simulate", must_not_simulate)
    assert main(["simulate", *SMALL, "--regime", "accumulate", "--json", str(out)]) == 0
    again = capsys.readouterr()
    assert again.out == first.out and f"reused {out}" in again.err
    monkeypatch.undo()
    assert main(["simulate", *SMALL, "--regime", "accumulate", "--seed", "1", "--json", str(out), "--no-progress"]) == 0
    assert "reused" not in capsys.readouterr().err, "another configuration is computed, not reused"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("linreg-collapse 0.")


def test_console_script_usage_error_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "linreg_collapse.cli", "simulate", "--T", "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "invalid int value: 'x'" in proc.stderr
