"""The checker's relations, control variate and quantile intervals, and the command's bad input (no JAX run).
The grid, its mutants, the whitening invariances and the command's table, JSON and exit codes:
test_mutants.py, where they reuse the grid's compiled programs."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from linreg_collapse import verify
from linreg_collapse.cli import main
from linreg_collapse.config import SimConfig
from linreg_collapse.jax_setup import prefer_fast_compiles

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


def test_fast_compile_flags_keep_the_users(monkeypatch):
    """verify's compile flags are appended to XLA_FLAGS, a flag the user set wins, and a process that has
    imported JAX keeps its flags."""
    monkeypatch.delitem(sys.modules, "jax")
    environ = {"XLA_FLAGS": "--xla_backend_optimization_level=2"}
    assert prefer_fast_compiles(environ)
    assert environ["XLA_FLAGS"] == "--xla_backend_optimization_level=2 --xla_cpu_use_fusion_emitters=false"
    assert not prefer_fast_compiles(environ)
    monkeypatch.undo()
    environ = {}
    assert not prefer_fast_compiles(environ) and environ == {}


def test_tight_relation():
    check = verify.Check("sup", "edit-resample-disjoint-sup", None, "optimiser", 0, "tight",
                         lambda: 2 * np.e - 1, verify.SUP_GAP)
    assert verify.judge(check, None).passed
    assert not verify.judge(dataclasses.replace(check, theory=lambda: 2 * np.e), None).passed
    assert not verify.judge(dataclasses.replace(check, theory=lambda: np.e + 1), None).passed


def test_command_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["verify", "--seed", "-1", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    assert main(["verify", "--json", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
