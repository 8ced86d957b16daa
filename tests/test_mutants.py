"""verify --mutants in CI: the reduced grid passes and kills every registered mutant, judged on one set of
samples; an equivalent rewrite of a result (a negative control) survives; the mutation context restores
the registry. Also the tests that run the grid's program shapes (the whitening invariances, the command's
table, JSON and exit codes): in this module they reuse its compiled programs instead of compiling their own."""

from __future__ import annotations

import json

import pytest
import sympy as sp

from linreg_collapse import theory, verify
from linreg_collapse.cli import main
from linreg_collapse.config import SimConfig
from linreg_collapse.mutants import Mutant, applied, registry
from linreg_collapse.theory import editing
from linreg_collapse.theory.core import BASE, n


@pytest.fixture(scope="module")
def reduced():
    """The CI grid's checks, outcomes and samples (computed once; every mutant is judged on the samples)."""
    checks = verify.default_checks(seed=0, reduced=True)
    outcomes, samples, _ = verify.run_checks(checks)
    return checks, outcomes, samples


def test_reduced_grid_passes(reduced):
    _, outcomes, _ = reduced
    assert all(o.passed for o in outcomes), verify.format_table(outcomes)


def test_every_registered_mutant_is_killed(reduced):
    checks, _, samples = reduced
    mutants = registry()
    assert len(mutants) >= 12 and len({m.name for m in mutants}) == len(mutants)
    survivors = [m.name for m, killers in verify.run_mutants(checks, samples, mutants) if not killers]
    assert not survivors


def test_equivalent_rewrite_survives(reduced):
    """Negative control: (n+1) BASE written as n BASE + BASE is the same result and must not be killed."""
    checks, _, samples = reduced
    same = Mutant("replace-rewritten", "none", (("replace", lambda _: n * BASE + BASE),))
    [(_, killers)] = verify.run_mutants(checks, samples, (same,))
    assert killers == []


def test_context_restores_registry():
    before, step = theory.results()["replace"].expr, editing.RESAMPLE_RANDOM_STEP
    b_update = next(m for m in registry() if m.name == "resample-random-b")
    with applied(Mutant("both", "test", (("replace", lambda _: sp.Integer(0)),), b_update.steps)):
        assert theory.results()["replace"].expr == 0 and editing.RESAMPLE_RANDOM_STEP != step
    assert theory.results()["replace"].expr == before and editing.RESAMPLE_RANDOM_STEP == step


def test_invariances_hold_to_rounding():
    for name, difference in verify.invariance_checks(seed=0):
        assert difference <= verify.INVARIANCE_TOLERANCE, name


def small_checks(value: float):
    """One exact-estimator check of replace at generation 2 with theory ``value``, in the CI grid's retrain
    shape and trials (its compiled program is reused)."""
    cfg = SimConfig(regime="replace", T=20, d=4, generations=8, trials=256, seed=1)
    return lambda seed, reduced: [verify.Check("replace", "replace", cfg, "exact", 2, "equal",
                                               lambda: value * verify._rel("replace", cfg, n=2) / 3)]


@pytest.mark.parametrize("value, code", [(3.0, 0), (2.0, 1)])
def test_command_table_json_and_exit_code(tmp_path, capsys, monkeypatch, value, code):
    monkeypatch.setattr("linreg_collapse.verify.default_checks", small_checks(value))
    out = tmp_path / "v.json"
    assert main(["verify", "--reduced", "--json", str(out)]) == code
    assert ("1/1 checks pass" if code == 0 else "0/1 checks pass") in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["passed"] is (code == 0) and data["checks"][0]["theory"] == pytest.approx(value)


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
