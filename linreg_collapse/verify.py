"""Simulation against theory: a grid of checks, each resolved with the exact conditional estimator.

A check compares one generation of one configuration with a value from :mod:`.theory`, in units of
BASE = sigma^2 d/(T-d-1). The estimator's per-design values give a Student-t 99% interval
[low, high] (:func:`~linreg_collapse.simulate.mean_interval`). Relations:

* ``equal``: passes when low <= theory <= high, or |mean - theory| <= tolerance * theory (the tolerance
  the check declares: 0.5% for exact results, more for limits, whose finite-size error it states);
* ``upper`` (a bound): passes unless the whole interval lies above it (low > bound);
* ``above`` (a bound shown to fail): passes when the whole interval lies above it (low > value).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np

from .config import SimConfig
from .exact import conditional_errors
from .progress import track
from .simulate import mean_interval
from .theory import evaluate, realised_fractions, relative_bounds, relative_error_curve, results

LEVEL = 0.99
EXACT_TOLERANCE = 0.005
LIMIT_TOLERANCE = 0.015
RELATIONS = ("equal", "upper", "above")


@dataclasses.dataclass(frozen=True)
class Check:
    """``theory`` (units of BASE) against generation ``generation`` of ``cfg``; see the module docstring."""

    name: str
    result: str
    cfg: SimConfig
    generation: int
    relation: str
    theory: float
    tolerance: float = 0.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    check: Check
    mean: float
    low: float
    high: float
    passed: bool

    def to_dict(self) -> dict:
        c = self.check
        return {"name": c.name, "result": c.result, "relation": c.relation, "generation": c.generation,
                "theory": c.theory, "tolerance": c.tolerance, "mean": self.mean, "ci99_low": self.low,
                "ci99_high": self.high, "passed": self.passed, "config": c.cfg.to_dict()}


def judge(check: Check, relative_samples: np.ndarray) -> Outcome:
    """Apply ``check`` to per-design values of E_test/BASE at its generation."""
    mean, _, low, high = (float(v) for v in mean_interval(np.asarray(relative_samples), LEVEL))
    value = check.theory
    if check.relation == "equal":
        passed = low <= value <= high or abs(mean - value) <= check.tolerance * abs(value)
    elif check.relation == "upper":
        passed = low <= value
    else:
        passed = low > value
    return Outcome(check, mean, low, high, bool(passed))


def _rel(name: str, cfg: SimConfig, **values) -> float:
    """Result ``name`` in units of cfg's BASE at cfg's sigma, T, d."""
    return evaluate(results()[name], sigma=cfg.sigma, T=cfg.T, d=cfg.d, **values) / cfg.base


def default_checks(seed: int = 0) -> list[Check]:
    """The default grid: 4 shapes (T, d), both covariances, sigma in {0.5, 1, 2}, every regime and
    schedule with a closed form (resample limits at large T or small d/T); ``seed`` seeds every run
    (and the soft file masks)."""
    G = 8
    cfg = lambda **kw: SimConfig(generations=G, seed=seed, **kw)  # noqa: E731
    bounds = relative_bounds()
    checks: list[Check] = []
    add = checks.append

    # Shape A: T=50, d=10.
    a = dict(T=50, d=10, trials=512)
    rep = cfg(regime="replace", **a)
    rep_fresh = cfg(regime="replace", design="fresh", cov="powerlaw", sigma=0.5, **a)
    acc = cfg(regime="accumulate", cov="powerlaw", sigma=2.0, **a)
    per = cfg(regime="edit", edit_op="perturb", edit_fraction=0.1, **a)
    res = cfg(regime="edit", edit_op="resample", edit_fraction=0.1, cov="powerlaw", **a)
    res_dis = cfg(regime="edit", edit_op="resample", mask="disjoint", edit_fraction=0.12, decay=1.0, **a)
    add(Check("one OLS fit (identity)", "ols", rep, 0, "equal", _rel("ols", rep), EXACT_TOLERANCE))
    add(Check("one OLS fit (powerlaw, sigma 0.5)", "ols", rep_fresh, 0, "equal", _rel("ols", rep_fresh),
              EXACT_TOLERANCE))
    add(Check("replace, fixed design", "replace", rep, G, "equal", _rel("replace", rep, n=G), EXACT_TOLERANCE))
    add(Check("replace, fresh design", "replace", rep_fresh, G, "equal", _rel("replace", rep_fresh, n=G),
              EXACT_TOLERANCE))
    add(Check("accumulate, fixed design", "accumulate", acc, G, "equal", _rel("accumulate", acc, n=G),
              EXACT_TOLERANCE))
    add(Check("accumulate <= pi^2/6", "accumulate-sup", acc, G, "upper", bounds["accumulate-sup"]))
    q = float(realised_fractions(per)[0])
    add(Check("edit perturb random", "edit-perturb-random", per, G, "equal",
              _rel("edit-perturb-random", per, n=G, p=q), EXACT_TOLERANCE))
    soft = cfg(regime="edit", edit_op="perturb", mask="file", cov="powerlaw", sigma=2.0,
               masks=np.random.default_rng(seed).uniform(0, 1, (G, a["T"])), **a)
    add(Check("edit perturb file (soft, overlapping masks)", "edit-perturb", soft, G, "equal",
              float(relative_error_curve("edit", realised_fractions(soft))[G]), EXACT_TOLERANCE))
    add(Check("edit resample random, generation 1", "edit-resample-first", res, 1, "equal",
              _rel("edit-resample-first", res, k=round(q * res.T)), EXACT_TOLERANCE))
    total = float(realised_fractions(res_dis).sum())
    add(Check("edit resample disjoint > 2 (paper's bound fails)", "edit-perturb-paper-bound", res_dis, G, "above",
              bounds["edit-perturb-paper-bound"]))
    add(Check("edit resample disjoint <= 2e^Q - 1", "edit-resample-disjoint-sup", res_dis, G, "upper",
              _rel("edit-resample-disjoint-sup", res_dis, Q=total)))

    # Shape B: T=30, d=8.
    b = dict(T=30, d=8, trials=1024)
    rep_b = cfg(regime="replace", cov="powerlaw", **b)
    acc_b = cfg(regime="accumulate", sigma=0.5, **b)
    add(Check("one OLS fit (T=30, d=8)", "ols", acc_b, 0, "equal", _rel("ols", acc_b), EXACT_TOLERANCE))
    add(Check("replace, fixed design (T=30, d=8)", "replace", rep_b, G, "equal", _rel("replace", rep_b, n=G),
              EXACT_TOLERANCE))
    add(Check("accumulate, fixed design (T=30, d=8)", "accumulate", acc_b, G, "equal",
              _rel("accumulate", acc_b, n=G), EXACT_TOLERANCE))

    # Shape C: T=200, d=40: the proportional limit of resample with random masks.
    res_c = cfg(regime="edit", edit_op="resample", edit_fraction=0.1, T=200, d=40, trials=128)
    add(Check("edit resample random (limit d/T=0.2)", "edit-resample-random", res_c, G, "equal",
              _rel("edit-resample-random", res_c, n=G, q=0.1, gamma=res_c.d / res_c.T), LIMIT_TOLERANCE))

    # Shape D: T=128, d=2, 7 generations: disjoint schedules with integer counts 64, 32, ..., 1 (sum p_i = 127/128).
    dd = dict(T=128, d=2, trials=512, mask="disjoint", edit_fraction=0.5, decay=0.5)
    gd = 7
    per_d = SimConfig(regime="edit", edit_op="perturb", cov="powerlaw", generations=gd, seed=seed, **dd)
    res_d = SimConfig(regime="edit", edit_op="resample", generations=gd, seed=seed, **dd)
    total_d = float(realised_fractions(res_d).sum())
    add(Check("edit perturb disjoint (geometric)", "edit-perturb-disjoint", per_d, gd, "equal",
              _rel("edit-perturb-disjoint", per_d, n=gd, p=0.5, eta=0.5), EXACT_TOLERANCE))
    add(Check("edit perturb disjoint <= 2 (paper's bound)", "edit-perturb-paper-bound", per_d, gd, "upper",
              bounds["edit-perturb-paper-bound"]))
    small_gamma = relative_error_curve("edit", realised_fractions(res_d), edit_op="resample", mask="disjoint")
    add(Check("edit resample disjoint (limit d/T->0)", "edit-resample-disjoint-sup", res_d, gd, "equal",
              float(small_gamma[gd]), LIMIT_TOLERANCE))
    add(Check("edit resample disjoint > 2 (d/T->0)", "edit-perturb-paper-bound", res_d, gd, "above",
              bounds["edit-perturb-paper-bound"]))
    add(Check("edit resample disjoint <= 2e^Q - 1 (d/T->0)", "edit-resample-disjoint-sup", res_d, gd, "upper",
              _rel("edit-resample-disjoint-sup", res_d, Q=total_d)))
    return checks


def sample_key(cfg: SimConfig) -> tuple:
    """Identity of a configuration's samples (SimConfig equality ignores user masks, so they are added)."""
    return cfg, None if cfg.masks is None else np.asarray(cfg.masks, np.float64).tobytes()


def relative_samples(checks: list[Check], estimator: Callable[[SimConfig], np.ndarray] = conditional_errors,
                     progress: bool = False) -> dict[tuple, np.ndarray]:
    """Per-design E_test/BASE, [trials, G+1], for each distinct configuration of ``checks`` (computed once),
    keyed by :func:`sample_key`."""
    out: dict[tuple, np.ndarray] = {}
    distinct: dict[tuple, SimConfig] = {}
    for check in checks:
        distinct.setdefault(sample_key(check.cfg), check.cfg)
    for key, cfg in track(distinct.items(), "verify", "configuration", enabled=progress):
        out[key] = estimator(cfg) / cfg.base
    return out


def run_checks(checks: list[Check], progress: bool = False) -> tuple[list[Outcome], float]:
    """Judge every check; returns the outcomes and the wall time in seconds."""
    start = time.perf_counter()
    samples = relative_samples(checks, progress=progress)
    outcomes = [judge(c, samples[sample_key(c.cfg)][:, c.generation]) for c in checks]
    return outcomes, time.perf_counter() - start


def format_table(outcomes: list[Outcome]) -> str:
    """One line per check: theory, estimate, 99% interval, relative deviation, verdict."""
    head = f"{'check':50s} {'rel':5s} {'gen':>3s} {'theory':>8s} {'estimate':>8s} {'99% interval':>19s} " \
           f"{'dev':>7s} {'tol':>5s}  result"
    lines = [head, "-" * len(head)]
    for o in outcomes:
        c = o.check
        dev = (o.mean - c.theory) / c.theory
        lines.append(f"{c.name:50s} {c.relation:5s} {c.generation:3d} {c.theory:8.4f} {o.mean:8.4f} "
                     f"[{o.low:8.4f},{o.high:8.4f}] {dev:+7.2%} {c.tolerance:5.1%}  "
                     f"{'pass' if o.passed else 'FAIL'}")
    passed = sum(o.passed for o in outcomes)
    lines.append(f"{passed}/{len(outcomes)} checks pass (values in units of sigma^2 d/(T-d-1); "
                 f"{LEVEL:.0%} Student-t intervals over designs, exact conditional estimator)")
    return "\n".join(lines)
