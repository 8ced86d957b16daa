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
    "p > 1": (["--edit-fraction", "1.5"], "edit_fraction=1.5 must lie in [0, 1]"),
    "p < 0": (["--edit-fraction", "-0.1"], "edit_fraction=-0.1 must lie in [0, 1]"),
    "eta = 0": (["--decay", "0"], "decay=0.0 must lie in (0, 1]"),
    "eta > 1": (["--decay", "1.2"], "decay=1.2 must lie in (0, 1]"),
    "tau < 0": (["--threshold", "-1"], "threshold=-1.0 must be >= 0"),
    "nan": (["--sigma", "nan"], "sigma=nan must be a finite number"),
    "inf": (["--edit-fraction", "inf"], "edit_fraction=inf must be a finite number"),
    "trials < 2": (["--trials", "1"], "trials=1 must be >= 2"),
    "fresh edit": (["--regime", "edit", "--design", "fresh"], "design='fresh' is not defined for regime='edit'"),
    "mask file missing": (["--regime", "edit", "--mask", "file"], "mask='file' needs masks"),
    "masks wrong shape": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.npy", np.ones((2, 30)))],
                          "masks shape (2, 30) must be (generations, T) = (3, 30)"),
    "masks out of range": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.npy", np.full((3, 30), 1.5))],
                           "masks values must lie in [0, 1]"),
    "masks non-finite": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.npy", np.full((3, 30), np.nan))],
                         "masks must be finite"),
    "masks not numbers": (["--regime", "edit", "--mask", "file", "--masks-file", ("m.txt", "a b c\n")],
                          "could not be read as numbers"),
    "masks without file mask": (["--masks-file", ("m.npy", np.ones((3, 30)))], "--masks-file needs --regime edit --mask file"),
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


def test_console_script_usage_error_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "linreg_collapse.cli", "simulate", "--T", "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "invalid int value: 'x'" in proc.stderr
