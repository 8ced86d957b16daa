"""The verify grid passes, and the same checker, on the same samples, rejects wrong formulas
(negative controls: the checks have power). Also the checker's relations and the command's contract."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from linreg_collapse import verify
from linreg_collapse.cli import main
from linreg_collapse.config import SimConfig


@pytest.fixture(scope="module")
def grid():
    """The default grid's checks and per-design samples (computed once for every test here)."""
    checks = verify.default_checks(seed=0)
    return checks, verify.relative_samples(checks)


def outcome(check, samples, **change):
    check = dataclasses.replace(check, **change)
    return verify.judge(check, samples[verify.sample_key(check.cfg)][:, check.generation])


def test_default_grid_passes(grid):
    checks, samples = grid
    outcomes = [outcome(c, samples) for c in checks]
    table = verify.format_table(outcomes)
    assert all(o.passed for o in outcomes), table
    # Every exact/limit check is resolved to about 1%: its 99% half-width is below 1.2% of the value.
    for o in outcomes:
        if o.check.relation == "equal":
            assert (o.high - o.low) / 2 <= 0.012 * o.check.theory, o.check.name


def by_result(checks, result, relation="equal"):
    found = [c for c in checks if c.result == result and c.relation == relation]
    assert found
    return found


def test_rejects_collapse_slope_counted_from_the_wrong_generation(grid):
    checks, samples = grid
    for check in by_result(checks, "replace"):
        assert not outcome(check, samples, theory=float(check.generation)).passed  # n BASE instead of (n+1) BASE


def test_rejects_d_over_T_minus_d(grid):
    checks, samples = grid
    for check in by_result(checks, "ols"):
        cfg = check.cfg
        wrong = (cfg.T - cfg.d - 1) / (cfg.T - cfg.d)  # d/(T-d) in units of d/(T-d-1)
        assert not outcome(check, samples, theory=wrong).passed, check.name


def test_rejects_accumulate_sum_without_its_square(grid):
    checks, samples = grid
    for check in by_result(checks, "accumulate"):
        wrong = sum(1 / k for k in range(1, check.generation + 2))
        assert not outcome(check, samples, theory=wrong).passed


def test_rejects_the_perturb_formula_for_resample(grid):
    """The paper's constant does not carry over: 1 + sum p_i (right for perturb) is rejected for resample."""
    checks, samples = grid
    for check in by_result(checks, "edit-resample-random"):
        assert not outcome(check, samples, theory=1 + check.generation * 0.1).passed


def test_relations():
    samples = np.random.default_rng(0).normal(1.0, 0.01, 1000)  # 99% interval about 1 +- 0.0008
    cfg = SimConfig(T=20, d=3, trials=2)
    check = verify.Check("c", "ols", cfg, 0, "equal", 1.0, tolerance=0.0)
    assert verify.judge(check, samples).passed
    assert not verify.judge(dataclasses.replace(check, theory=1.01), samples).passed
    assert verify.judge(dataclasses.replace(check, theory=1.01, tolerance=0.02), samples).passed
    assert verify.judge(dataclasses.replace(check, relation="upper", theory=1.5), samples).passed
    assert not verify.judge(dataclasses.replace(check, relation="upper", theory=0.9), samples).passed
    assert verify.judge(dataclasses.replace(check, relation="above", theory=0.9), samples).passed
    assert not verify.judge(dataclasses.replace(check, relation="above", theory=1.0), samples).passed


def small_checks(theory: float):
    cfg = SimConfig(regime="replace", T=12, d=3, generations=2, trials=300, seed=1)
    return lambda seed: [verify.Check("replace", "replace", cfg, 2, "equal", theory, verify.EXACT_TOLERANCE)]


@pytest.mark.parametrize("theory, code", [(3.0, 0), (2.0, 1)])
def test_command_table_json_and_exit_code(tmp_path, capsys, monkeypatch, theory, code):
    monkeypatch.setattr("linreg_collapse.commands.verify.default_checks", small_checks(theory))
    out = tmp_path / "v.json"
    assert main(["verify", "--json", str(out)]) == code
    assert ("1/1 checks pass" if code == 0 else "0/1 checks pass") in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["passed"] is (code == 0) and data["checks"][0]["theory"] == theory


def test_command_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["verify", "--seed", "-1", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    assert main(["verify", "--json", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
