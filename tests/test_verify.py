"""The checker's relations, control variate and quantile intervals, the whitening invariances, and the
command's contract (table, JSON, exit codes, bad input). The grid itself and its mutants: test_mutants.py."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from linreg_collapse import verify
from linreg_collapse.cli import main
from linreg_collapse.config import SimConfig
from linreg_collapse.mutants import Mutant
from linreg_collapse.theory.core import BASE, n

CFG = SimConfig(T=20, d=3, trials=2)


def column_check(relation="equal", theory=1.0, tolerance=0.0, statistic="mean", generation=0):
    return verify.Check("c", "ols", CFG, "exact", generation, relation, lambda: theory, tolerance, statistic)


def test_relations():
    samples = np.random.default_rng(0).normal(1.0, 0.01, (1000, 1))  # 99.9% interval about 1 +- 0.001
    judge = lambda **kw: verify.judge(column_check(**kw), samples).passed  # noqa: E731
    assert judge(theory=1.0)
    assert not judge(theory=1.01)
    assert judge(theory=1.01, tolerance=0.02)
    assert judge(relation="upper", theory=1.5) and not judge(relation="upper", theory=0.9)
    assert judge(relation="above", theory=0.9) and not judge(relation="above", theory=1.0)


def test_control_variate_keeps_the_mean_and_sheds_shared_variance():
    rng = np.random.default_rng(1)
    first = rng.chisquare(4, 20000) / 4  # mean 1
    values = 3 * first + rng.normal(0, 0.1, first.size)  # mean 3
    adjusted = verify.controlled(values, first)
    assert abs(adjusted.mean() - 3) < 4 * adjusted.std() / np.sqrt(first.size)
    assert adjusted.std() < 0.11 < values.std()
    check = column_check(theory=3.0, generation=1)
    assert verify.judge(check, np.stack([first, values], 1)).passed
    assert not verify.judge(dataclasses.replace(check, theory=lambda: 3.02), np.stack([first, values], 1)).passed


def test_quantile_interval_covers_the_true_quantile():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(200):
        _, low, high = verify.quantile_interval(rng.exponential(size=500), 0.9)
        covered += low <= np.log(10) <= high
    assert covered >= 195  # nominal 99.9%


def test_tight_relation():
    check = verify.Check("sup", "edit-resample-disjoint-sup", None, "optimiser", 0, "tight",
                         lambda: 2 * np.e - 1, verify.SUP_GAP)
    assert verify.judge(check, None).passed
    assert not verify.judge(dataclasses.replace(check, theory=lambda: 2 * np.e), None).passed
    assert not verify.judge(dataclasses.replace(check, theory=lambda: np.e + 1), None).passed


def test_invariances_hold_to_rounding():
    for name, difference in verify.invariance_checks(seed=0):
        assert difference <= verify.INVARIANCE_TOLERANCE, name


def small_checks(theory: float):
    """One exact-estimator check of replace at generation 2, in the CI grid's retrain shape and trials (its
    compiled program is reused)."""
    cfg = SimConfig(regime="replace", T=20, d=4, generations=8, trials=256, seed=1)
    return lambda seed, reduced: [verify.Check("replace", "replace", cfg, "exact", 2, "equal",
                                               lambda: theory * verify._rel("replace", cfg, n=2) / 3)]


@pytest.mark.parametrize("theory, code", [(3.0, 0), (2.0, 1)])
def test_command_table_json_and_exit_code(tmp_path, capsys, monkeypatch, theory, code):
    monkeypatch.setattr("linreg_collapse.verify.default_checks", small_checks(theory))
    out = tmp_path / "v.json"
    assert main(["verify", "--reduced", "--json", str(out)]) == code
    assert ("1/1 checks pass" if code == 0 else "0/1 checks pass") in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["passed"] is (code == 0) and data["checks"][0]["theory"] == pytest.approx(theory)


@pytest.mark.parametrize("mutant_expr, code", [(lambda _: n * BASE, 0), (lambda _: n * BASE + BASE, 1)])
def test_command_mutants_exit_code(tmp_path, capsys, monkeypatch, mutant_expr, code):
    """Exit 0 only when every mutant is killed: n BASE is killed, an equivalent rewrite survives."""
    monkeypatch.setattr("linreg_collapse.verify.default_checks", small_checks(3.0))
    monkeypatch.setattr("linreg_collapse.mutants.registry",
                        lambda: (Mutant("m", "test", (("replace", mutant_expr),)),))
    out = tmp_path / "v.json"
    assert main(["verify", "--reduced", "--mutants", "--json", str(out)]) == code
    printed = capsys.readouterr().out
    assert ("killed by replace" if code == 0 else "survived") in printed
    assert json.loads(out.read_text())["mutants"][0]["killed_by"] == (["replace [exact]"] if code == 0 else [])


def test_command_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["verify", "--seed", "-1", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    assert main(["verify", "--json", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
