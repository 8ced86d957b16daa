"""verify --mutants in CI: the reduced grid passes and kills every registered mutant, judged on one set of
samples; an equivalent rewrite of a result (a negative control) survives; the mutation context restores
the registry."""

from __future__ import annotations

import sympy as sp
import pytest

from linreg_collapse import theory, verify
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
