"""Variance reduction of the exact conditional estimator against plain Monte Carlo at equal wall time.

For each configuration both estimators run warm (compiled first, then timed on ``--trials`` trials, best
of ``--repeats``). Per sample at the last generation: plain MC has variance v_mc and cost t_mc, the
exact estimator v_ex and t_ex. At equal wall time the variance of the mean is v t / wall, so the
reduction factor is (v_mc t_mc) / (v_ex t_ex).

    python benchmarks/bench_exact.py [--trials 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from linreg_collapse.config import SimConfig
from linreg_collapse.exact import conditional_errors
from linreg_collapse.simulate import run_trials

CONFIGS = {
    "replace fixed": dict(regime="replace"),
    "accumulate fixed": dict(regime="accumulate"),
    "edit perturb random p=0.1": dict(regime="edit", edit_op="perturb", edit_fraction=0.1),
    "edit resample random p=0.1": dict(regime="edit", edit_op="resample", edit_fraction=0.1),
    "edit resample disjoint p=0.5 eta=0.5": dict(regime="edit", edit_op="resample", mask="disjoint",
                                                 edit_fraction=0.5, decay=0.5),
}


def timed(fn, cfg: SimConfig, repeats: int) -> tuple[np.ndarray, float]:
    """Last-generation samples / BASE and the best wall time per sample (after a compiling warm-up run)."""
    fn(dataclasses.replace(cfg, seed=cfg.seed + 1))
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(cfg)
        best = min(best, time.perf_counter() - start)
    return out[:, -1] / cfg.base, best / cfg.trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--generations", type=int, default=8)
    args = parser.parse_args()
    print(f"T={args.T} d={args.d} generations={args.generations} trials={args.trials}; last generation, units of BASE")
    print(f"{'configuration':38s} {'sd MC':>7s} {'sd exact':>8s} {'us/MC':>7s} {'us/exact':>8s} {'reduction':>9s}")
    for name, kw in CONFIGS.items():
        cfg = SimConfig(T=args.T, d=args.d, generations=args.generations, trials=args.trials, seed=0, **kw)
        mc, t_mc = timed(lambda c: run_trials(c)[0], cfg, args.repeats)
        ex, t_ex = timed(conditional_errors, cfg, args.repeats)
        reduction = mc.var(ddof=1) * t_mc / (ex.var(ddof=1) * t_ex)
        print(f"{name:38s} {mc.std(ddof=1):7.3f} {ex.std(ddof=1):8.3f} {t_mc * 1e6:7.1f} {t_ex * 1e6:8.1f} "
              f"{reduction:9.1f}x")


if __name__ == "__main__":
    main()
