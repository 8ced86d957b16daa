"""Simulation against theory: a grid of checks, each judged on samples from two independent code paths.

A check compares one generation of one configuration with a value read from :mod:`.theory` when the check is
judged (so a mutated theory, :mod:`.mutants`, is judged against the same samples), in units of
BASE = sigma^2 d/(T-d-1). Samples (per trial, [trials, G+1]) come from

* ``exact``: the exact conditional estimator E[E_test | designs, masks] (:mod:`.exact`, the theory's residual
  recursion, Monte Carlo over designs only);
* ``simulator``: the plain simulator's per-trial errors (:func:`~linreg_collapse.simulate.run_trials` with the
  ``labels`` sampler, a different code path: it draws the design and every label and refits);

and do not depend on the theory: they are computed once, then every check and every mutant is judged on them.
Compiling dominates the cost (running a configuration takes a second or less), so configurations share
compiled programs wherever the shapes allow: the exact estimator runs replace and accumulate, fixed and fresh
design, as one program, and resample, perturb and file masks of one shape as another.
Means use generation 0's error as a control variate (its mean is 1 BASE by Lemma 1, which the uncontrolled
``ols`` checks test on their own): the regression-adjusted values x_g - beta (x_0 - 1) keep the mean and shed
the variance shared with generation 0. Relations, each at the Student-t (means) or order-statistic
(quantiles) ``LEVEL`` interval [low, high]:

* ``equal``: passes when low <= theory <= high, or |estimate - theory| <= tolerance * theory (limits only:
  the tolerance states their finite-size error; exact results have none);
* ``upper`` (a bound): passes unless the whole interval lies above it (low > bound): a bound lowered below
  what simulation shows fails;
* ``above`` (a bound shown to fail): passes when the whole interval lies above it (low > value);
* ``tight`` (a supremum): a schedule optimiser's best value must not exceed it and must come within
  ``tolerance`` (relative gap) of it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Union

import numpy as np
from scipy import optimize, stats

from . import theory
from .config import SimConfig
from .exact import conditional_errors
from .mutants import Mutant, applied
from .progress import track
from .simulate import mean_interval, run_trials
from .theory import editing

LEVEL = 0.999
LIMIT_TOLERANCE = 0.015
ROUNDING = 1e-9  # relative: float64 rounding of values the estimator gives exactly
RELATIONS = ("equal", "upper", "above", "tight")
SUP_STEPS = 10  # free edit fractions of the optimised disjoint schedule
SUP_REFINE = 16  # each optimised edit is then split into this many equal edits (towards the continuum)
SUP_GAP = 0.01  # the supremum must be reached within 1% by the refined schedule
SIM_TRIALS = 8192  # simulator trials per configuration unless a check says otherwise
INVARIANCE_TOLERANCE = 1e-8  # relative per-trial difference allowed by the invariances (float64 rounding)


@dataclasses.dataclass(frozen=True)
class Check:
    """``theory()`` (units of BASE, read from the registry when judged) against ``statistic`` of generation
    ``generation`` of ``cfg`` under ``estimator``; see the module docstring. ``statistic`` is "mean" or a
    quantile level in (0, 1)."""

    name: str
    result: str
    cfg: Optional[SimConfig]
    estimator: str
    generation: int
    relation: str
    theory: Callable[[], float]
    tolerance: float = 0.0
    statistic: Union[str, float] = "mean"


@dataclasses.dataclass(frozen=True)
class Outcome:
    check: Check
    theory: float
    estimate: float
    low: float
    high: float
    passed: bool

    @property
    def resolution(self) -> float:
        """Interval half-width relative to the theory value."""
        return (self.high - self.low) / 2 / abs(self.theory) if self.theory else float("nan")

    def to_dict(self) -> dict:
        c = self.check
        return {"name": c.name, "result": c.result, "estimator": c.estimator, "relation": c.relation,
                "statistic": c.statistic, "generation": c.generation, "theory": self.theory,
                "tolerance": c.tolerance, "estimate": self.estimate, "low": self.low, "high": self.high,
                "resolution": self.resolution, "passed": self.passed,
                "config": None if c.cfg is None else c.cfg.to_dict()}


def controlled(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """values - beta (first - 1), beta = Cov(values, first)/Var(first): same mean, less variance."""
    spread = np.var(first, ddof=1)
    if spread == 0:
        return values
    beta = np.cov(values, first)[0, 1] / spread
    return values - beta * (first - 1.0)


def quantile_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    """Sample quantile and its distribution-free LEVEL interval (order statistics at binomial quantiles)."""
    ordered = np.sort(values)
    count = len(ordered)
    lo = int(stats.binom.ppf((1 - LEVEL) / 2, count, level))
    hi = int(stats.binom.ppf((1 + LEVEL) / 2, count, level))
    return float(np.quantile(ordered, level)), float(ordered[max(lo - 1, 0)]), float(ordered[min(hi, count - 1)])


def judge(check: Check, samples: Optional[np.ndarray]) -> Outcome:
    """Apply ``check`` to per-trial values of E_test/BASE, [trials, G+1] (None for the optimiser)."""
    value = float(check.theory())
    if check.estimator == "optimiser":
        estimate = low = high = best_disjoint_schedule(editing.RESAMPLE_DISJOINT_STEP, 1.0, SUP_STEPS, SUP_REFINE)
    elif check.statistic == "mean":
        column = samples[:, check.generation]
        if check.generation > 0:
            column = controlled(column, samples[:, 0])
        estimate, _, low, high = (float(v) for v in mean_interval(column, LEVEL))
    else:
        estimate, low, high = quantile_interval(samples[:, check.generation], float(check.statistic))
    floor = ROUNDING * abs(value)
    if check.relation == "equal":
        passed = low - floor <= value <= high + floor or abs(estimate - value) <= check.tolerance * abs(value)
    elif check.relation == "upper":
        passed = low <= value + floor
    elif check.relation == "above":
        passed = low > value
    else:
        passed = value * (1 - check.tolerance) <= estimate <= value + floor
    return Outcome(check, value, estimate, low, high, bool(passed))


@functools.lru_cache(maxsize=8)
def best_disjoint_schedule(step, total: float, steps: int, refine: int) -> float:
    """The largest d/T -> 0 error/BASE found for disjoint edits of total fraction ``total``: L-BFGS-B over the
    softmax weights of ``steps`` fractions (from a seeded random schedule), each then split into ``refine``
    equal edits. ``step`` (the recurrence) keys the cache."""
    def final_error(fractions):
        return theory.relative_error_curve("edit", fractions, edit_op="resample", mask="disjoint")[-1]

    def fractions_of(z):
        weights = np.exp(z - z.max())
        return total * weights / weights.sum()

    start = np.random.default_rng(0).normal(size=steps)
    best = optimize.minimize(lambda z: -final_error(fractions_of(z)), start, method="L-BFGS-B")
    return float(final_error(np.repeat(fractions_of(best.x) / refine, refine)))


def _rel(name: str, cfg: SimConfig, **values) -> float:
    """Result ``name`` in units of cfg's BASE at cfg's sigma, T, d (read from the registry now)."""
    return theory.evaluate(theory.results()[name], sigma=cfg.sigma, T=cfg.T, d=cfg.d, **values) / cfg.base


def _curve(cfg: SimConfig, **kw) -> float:
    """The edit recurrence's value at cfg's last generation with cfg's realised fractions."""
    return float(theory.relative_error_curve("edit", theory.realised_fractions(cfg), **kw)[cfg.generations])


def default_checks(seed: int = 0, reduced: bool = False) -> list[Check]:
    """The default grid: every closed form against the exact estimator and the simulator, bounds against the
    worst schedules measured, the supremum against the optimiser. ``reduced`` (CI): the exact estimator and
    the simulator-only checks, fewer trials; it still kills every registered mutant."""
    scale = 4 if reduced else 1
    checks: list[Check] = []

    def both(name, result, cfg, generation, relation, value, tolerance=0.0, sim_trials=SIM_TRIALS,
             sim_generations=None):
        """One check per estimator (the simulator's skipped in the reduced grid; ``sim_generations``: run the
        simulator for fewer generations than the exact estimator)."""
        checks.append(Check(name, result, cfg, "exact", generation, relation, value, tolerance))
        if not reduced:
            checks.append(Check(name, result, simulated(cfg, sim_trials, sim_generations or cfg.generations),
                                "simulator", generation, relation, value, tolerance))

    def sim_only(name, result, cfg, generation, relation, value, tolerance=0.0, statistic="mean"):
        cfg = dataclasses.replace(cfg, trials=cfg.trials // scale)
        checks.append(Check(name, result, cfg, "simulator", generation, relation, value, tolerance, statistic))

    def cfg(**kw):
        trials = kw.pop("trials")
        return SimConfig(seed=seed, trials=max(trials // scale, 64), **kw)

    # replace and accumulate, fixed and fresh design: T=20, d=4 (d/(T-d) is 6% off d/(T-d-1), and
    # k(T-d-1)/(kT-d-1) far from 1 for the fresh design).
    G = 8
    rep = cfg(regime="replace", T=20, d=4, generations=G, trials=1024)
    acc = dataclasses.replace(rep, regime="accumulate")
    both("one OLS fit", "ols", rep, 0, "equal", lambda: _rel("ols", rep))
    both("replace, fixed design", "replace", rep, G, "equal", lambda: _rel("replace", rep, n=G))
    both("replace, paper's counting m = n + 1", "replace-paper-convention", rep, G, "equal",
         lambda: _rel("replace-paper-convention", rep, m=G + 1))
    rep_fresh = dataclasses.replace(rep, design="fresh")
    both("replace, fresh design", "replace", rep_fresh, G, "equal", lambda: _rel("replace", rep_fresh, n=G))
    for g in (2, G):
        both(f"accumulate, fixed design (n={g})", "accumulate", acc, g, "equal",
             lambda g=g: _rel("accumulate", acc, n=g))
    both("accumulate <= pi^2/6", "accumulate-sup", acc, G, "upper", lambda: _rel("accumulate-sup", acc))
    acc_fresh = dataclasses.replace(acc, design="fresh")
    for g in (2, G):
        both(f"accumulate, fresh design (n={g})", "accumulate-fresh", acc_fresh, g, "equal",
             lambda g=g: _rel("accumulate-fresh", acc_fresh, n=g))
    both("accumulate fresh <= its supremum", "accumulate-fresh-sup", acc_fresh, G, "upper",
         lambda: _rel("accumulate-fresh-sup", acc_fresh))

    # The law of the error: quantiles of the simulator's per-trial errors at generation 2 (fixed design; the
    # same runs as the mean checks above).
    for regime in ("accumulate",) if reduced else ("replace", "accumulate"):
        law = simulated(rep if regime == "replace" else acc, SIM_TRIALS, G)
        for lv in (0.1, 0.5, 0.9):
            sim_only(f"{regime} error quantile {lv:g}", f"{regime}-quantile", law, 2, "equal",
                     lambda lv=lv, law=law, regime=regime: _rel(f"{regime}-quantile", law, n=2, level=lv),
                     statistic=lv)
        sim_only(f"{regime} tail bound at 0.9", f"{regime}-tail-bound", law, 2, "upper",
                 lambda law=law, regime=regime: _rel(f"{regime}-tail-bound", law, n=2, level=0.9), statistic=0.9)

    # accumulate-subsample: simulator only (not linear given the subsample), d/T = 0.01. The reduced grid runs
    # 512 trials (T^2 compares per draw make it its costliest run): about 10% resolution, which still kills
    # both subsample mutants (distance 1.8 and 3.0 half-widths).
    sub = SimConfig(regime="accumulate-subsample", T=400, d=4, generations=4, trials=2048 if reduced else 4096,
                    seed=seed)
    sim_only("accumulate-subsample (limit d/T->0)", "accumulate-subsample", sub, sub.generations, "equal",
             lambda: _rel("accumulate-subsample", sub, n=sub.generations), 0.03)
    sim_only("accumulate-subsample <= its plateau", "accumulate-subsample-plateau", sub, sub.generations, "upper",
             lambda: _rel("accumulate-subsample-plateau", sub))

    # Editing, T=16, d=2, k=8: perturb with random and soft overlapping file masks; resample's generation 1
    # (the finite-T terms of E H_tt^2 are large here).
    small = dict(regime="edit", T=16, d=2, generations=G, trials=8192, edit_fraction=0.5)
    per = cfg(edit_op="perturb", **small)
    both("edit perturb random", "edit-perturb-random", per, G, "equal",
         lambda: _rel("edit-perturb-random", per, n=G, p=0.5))
    both("edit perturb recurrence (random masks)", "edit-perturb", per, G, "equal", lambda: _curve(per))
    soft = cfg(edit_op="perturb", mask="file", masks=np.random.default_rng(seed).uniform(0, 1, (G, 16)), **small)
    both("edit perturb file (soft, overlapping masks)", "edit-perturb", soft, G, "equal", lambda: _curve(soft))
    first = cfg(edit_op="resample", **small)
    both("edit resample, generation 1", "edit-resample-first", first, 1, "equal",
         lambda: _rel("edit-resample-first", first, k=8))
    both("edit resample, generation 2", "edit-resample-second", first, 2, "equal",
         lambda: _rel("edit-resample-second", first, k=8))

    # resample, random masks: the proportional limit at d/T = 0.4, q = 0.3 (finite-T error measured ~0.1%).
    res = cfg(regime="edit", edit_op="resample", edit_fraction=0.3, T=100, d=40, generations=G, trials=128)
    both("edit resample random (limit d/T=0.4)", "edit-resample-random", res, G, "equal",
         lambda: editing.resample_random_curve(theory.realised_fractions(res), res.d / res.T)[G], 0.01,
         sim_trials=1024)

    # resample, random masks at finite T (first order in 1/T), on generation 1's samples: T=16, d=2, k=8, n=8, where
    # the proportional limit is 1.9% high and the measured O(1/T^2) remainder 0.2%.
    both("edit resample random (finite T, first order)", "edit-resample-random-finite", first, G, "equal",
         lambda: _curve(first, edit_op="resample", T=first.T, d=first.d), 0.005)

    # Disjoint masks, T=128, d=2: geometric 64, 32, ..., 1 (Q = 127/128), and 32 edits of 4 (Q = 1).
    disjoint = dict(regime="edit", mask="disjoint", T=128, d=2, generations=32, trials=256)
    gd = 7
    short = dict(sim_trials=4096, sim_generations=gd)  # the simulator runs the geometric schedule only
    per_d = cfg(edit_op="perturb", edit_fraction=0.5, decay=0.5, **disjoint)
    both("edit perturb disjoint (geometric)", "edit-perturb-disjoint", per_d, gd, "equal",
         lambda: _rel("edit-perturb-disjoint", per_d, n=gd, p=0.5, eta=0.5), **short)
    both("edit perturb disjoint <= 2 (paper's bound)", "edit-perturb-paper-bound", per_d, gd, "upper",
         lambda: _rel("edit-perturb-paper-bound", per_d), **short)
    res_d = dataclasses.replace(per_d, edit_op="resample")
    both("edit resample disjoint (limit d/T->0)", "edit-resample-disjoint-sup", res_d, gd, "equal",
         lambda: _curve(dataclasses.replace(res_d, generations=gd), edit_op="resample", mask="disjoint"),
         LIMIT_TOLERANCE, **short)
    both("edit resample disjoint > 2 (paper's bound fails)", "edit-perturb-paper-bound", res_d, gd, "above",
         lambda: _rel("edit-perturb-paper-bound", res_d), **short)
    worst = cfg(edit_op="resample", edit_fraction=1 / 32, decay=1.0, **disjoint)
    for name in ("edit-resample-disjoint-sup", "edit-resample-gronwall"):
        checks.append(Check(f"32 edits of 1/32 (worst measured) <= {name}", name, worst, "exact", 32, "upper",
                            lambda name=name: _rel(name, worst, Q=1.0)))
    checks.append(Check(f"2e^Q - 1 reached: optimised {SUP_STEPS} edits, each split in {SUP_REFINE} (Q=1)",
                        "edit-resample-disjoint-sup", None, "optimiser", SUP_STEPS * SUP_REFINE, "tight",
                        lambda: _rel("edit-resample-disjoint-sup", worst, Q=1.0), SUP_GAP))

    # resample, disjoint masks (p=0.5, eta=0.5): the proportional limit at d/T = 0.4, on the random-mask check's
    # shape; the d/T -> 0 recursion is 17% above it there, the finite-T error measured 0.2%.
    res_dj = dataclasses.replace(res, mask="disjoint", edit_fraction=0.5, decay=0.5)
    both("edit resample disjoint (limit d/T=0.4)", "edit-resample-disjoint", res_dj, G, "equal",
         lambda: _curve(res_dj, edit_op="resample", mask="disjoint", T=res_dj.T, d=res_dj.d), 0.01, sim_trials=1024)
    return checks


def simulated(cfg: SimConfig, trials: int, generations: int) -> SimConfig:
    """``cfg`` as the simulator runs it in the grid: ``trials`` trials, ``generations`` generations, the
    ``labels`` sampler (X and every label drawn: the plain path, and for fresh designs it compiles in half the
    time of the Bartlett ``stats`` sampler)."""
    return dataclasses.replace(cfg, trials=trials, generations=generations, sampler="labels")


def sample_key(cfg: SimConfig, estimator: str) -> tuple:
    """Identity of a configuration's samples (SimConfig equality ignores user masks, so they are added)."""
    return cfg, estimator, None if cfg.masks is None else np.asarray(cfg.masks, np.float64).tobytes()


ESTIMATOR_RUNS: dict[str, Callable[[SimConfig], np.ndarray]] = {
    "exact": conditional_errors,
    "simulator": lambda cfg: run_trials(cfg)[0],
}


def relative_samples(checks: list[Check], progress: bool = False) -> dict[tuple, np.ndarray]:
    """Per-trial E_test/BASE, [trials, G+1], for each distinct (configuration, estimator) of ``checks``
    (computed once), keyed by :func:`sample_key`."""
    out: dict[tuple, np.ndarray] = {}
    distinct: dict[tuple, tuple[SimConfig, str]] = {}
    for check in checks:
        if check.cfg is not None:
            distinct.setdefault(sample_key(check.cfg, check.estimator), (check.cfg, check.estimator))
    for key, (cfg, estimator) in track(distinct.items(), "verify", "configuration", enabled=progress):
        out[key] = ESTIMATOR_RUNS[estimator](cfg) / cfg.base
    return out


def judge_all(checks: list[Check], samples: dict[tuple, np.ndarray]) -> list[Outcome]:
    return [judge(c, None if c.cfg is None else samples[sample_key(c.cfg, c.estimator)]) for c in checks]


def run_checks(checks: list[Check], progress: bool = False) -> tuple[list[Outcome], dict[tuple, np.ndarray], float]:
    """Sample and judge every check; returns the outcomes, the samples and the wall time in seconds. The theory's
    derivations (sympy, pure Python) run in a second thread while XLA compiles the samplers (outside the GIL)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        derived = pool.submit(theory.results)
        samples = relative_samples(checks, progress=progress)
        derived.result()
    outcomes = judge_all(checks, samples)
    return outcomes, samples, time.perf_counter() - start


def run_mutants(checks: list[Check], samples: dict[tuple, np.ndarray],
                mutants: tuple[Mutant, ...]) -> list[tuple[Mutant, list[str]]]:
    """Each mutant applied alone and judged on the same samples: (mutant, names of the checks that failed)."""
    out = []
    for mutant in mutants:
        with applied(mutant):
            failed = [o.check for o in judge_all(checks, samples) if not o.passed]
        out.append((mutant, [f"{c.name} [{c.estimator}]" for c in failed]))
    return out


def invariance_checks(seed: int = 0) -> list[tuple[str, float]]:
    """(name, max relative per-trial difference) for the whitening invariances, on the same keys: the error
    does not depend on Sigma (exact estimator, resample editing; simulator, accumulate), scales as sigma^2,
    and does not depend on w* (simulator, flat against power-law w*). Each difference should be float64
    rounding. The shapes are the grid's, so its compiled programs are reused."""
    edit = SimConfig(regime="edit", edit_op="resample", edit_fraction=0.5, T=16, d=2, generations=8, trials=1024,
                     seed=seed)
    acc = SimConfig(regime="accumulate", T=20, d=4, generations=8, trials=1024, seed=seed, sampler="labels")
    rel = lambda a, b: float(np.max(np.abs(a - b) / np.abs(b)))  # noqa: E731
    exact, simulated_errors = conditional_errors(edit), run_trials(acc)[0]
    powerlaw = lambda cfg: dataclasses.replace(cfg, cov="powerlaw")  # noqa: E731
    return [
        ("exact: per-design error equal for identity and power-law Sigma",
         rel(conditional_errors(powerlaw(edit)), exact)),
        ("exact: per-design error scales as sigma^2",
         rel(conditional_errors(dataclasses.replace(edit, sigma=2.0)) / 4, exact)),
        ("simulator: per-trial error equal for identity and power-law Sigma",
         rel(run_trials(powerlaw(acc))[0], simulated_errors)),
        ("simulator: per-trial error independent of w*",
         rel(run_trials(dataclasses.replace(acc, wstar="powerlaw", wstar_exponent=2.0))[0], simulated_errors)),
    ]


def format_table(outcomes: list[Outcome]) -> str:
    """One line per check: estimator, theory, estimate, interval, resolution, deviation, verdict."""
    head = (f"{'check':58s} {'est':4s} {'rel':5s} {'gen':>3s} {'theory':>8s} {'estimate':>8s} "
            f"{'interval':>19s} {'res':>6s} {'dev':>7s} {'tol':>5s}  result")
    lines = [head, "-" * len(head)]
    for o in outcomes:
        c = o.check
        dev = (o.estimate - o.theory) / o.theory
        stat = "" if c.statistic == "mean" else f" q{c.statistic:g}"
        lines.append(f"{(c.name + stat)[:58]:58s} {c.estimator[:4]:4s} {c.relation:5s} {c.generation:3d} "
                     f"{o.theory:8.4f} {o.estimate:8.4f} [{o.low:8.4f},{o.high:8.4f}] {o.resolution:6.2%} "
                     f"{dev:+7.2%} {c.tolerance:5.1%}  {'pass' if o.passed else 'FAIL'}")
    passed = sum(o.passed for o in outcomes)
    lines.append(f"{passed}/{len(outcomes)} checks pass (units of sigma^2 d/(T-d-1); {LEVEL:.1%} intervals: "
                 "Student-t over trials for means, generation 0 regressed out; order statistics for quantiles; "
                 "res = interval half-width / theory)")
    return "\n".join(lines)
