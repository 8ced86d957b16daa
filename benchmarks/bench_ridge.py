"""Ridge benchmark: the steady-state cost of a ridge (or minimum-norm) generation next to OLS.

Usage::

    python benchmarks/bench_ridge.py [--trials 1000 --repeats 5] [--json out.json]

The ridge penalty is a traced parameter, so OLS (ridge 0) and ridge run the same compiled program; what
changes the cost is the form (dual T x T Gram for T < d, primal d x d for T >= d) and the design (a fixed
design factors once, a fresh one every generation). For each case the compiled runner is timed after
compilation (``block_until_ready``) at N and 2N generations; the steady-state cost of one generation is
(t(2N) - t(N)) / N per trial, and each repeat times OLS and ridge back to back in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from linreg_collapse.config import SimConfig
from linreg_collapse.simulate import _static, compiled_runner, make_params, trial_keys

CASES = [
    ("replace, fixed, T=100 d=50", dict(regime="replace", T=100, d=50), 0.0, 0.05),
    ("replace, fresh, T=100 d=50", dict(regime="replace", design="fresh", T=100, d=50), 0.0, 0.05),
    ("accumulate, fresh, T=100 d=50", dict(regime="accumulate", design="fresh", T=100, d=50), 0.0, 0.05),
    ("replace, fresh, min-norm T=50 d=100 vs ridge", dict(regime="replace", design="fresh", T=50, d=100), 0.0, 0.05),
    ("edit resample, T=100 d=50", dict(regime="edit", edit_op="resample", T=100, d=50), 0.0, 0.05),
]


def seconds(cfg: SimConfig) -> float:
    with jax.enable_x64(True):
        run = compiled_runner(*_static(cfg))
        params, keys = make_params(cfg), trial_keys(cfg.seed, 0, cfg.trials)
        run(keys, params)[0].block_until_ready()  # compile and warm up
        start = time.perf_counter()
        run(keys, params)[0].block_until_ready()
        return time.perf_counter() - start


def per_generation_us(options: dict, ridge: float, trials: int, generations: int) -> float:
    """Steady-state microseconds per trial-generation: (t(2N) - t(N)) / (N trials)."""
    short = seconds(SimConfig(trials=trials, generations=generations, ridge=ridge, **options))
    long = seconds(SimConfig(trials=trials, generations=2 * generations, ridge=ridge, **options))
    return (long - short) / (generations * trials) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    load = os.getloadavg()[0]
    for name, options, ols, ridge in CASES:
        pairs = [(per_generation_us(options, ols, args.trials, args.generations),
                  per_generation_us(options, ridge, args.trials, args.generations)) for _ in range(args.repeats)]
        base, reg = np.array(pairs).T
        ratio = reg / base
        rows.append(dict(case=name, ols_us=float(np.median(base)), ridge_us=float(np.median(reg)),
                         ratio=float(np.median(ratio)), ratio_min=float(ratio.min()), ratio_max=float(ratio.max())))
        print(f"{name:48s} ridge 0: {np.median(base):7.2f} us   ridge {ridge}: {np.median(reg):7.2f} us   "
              f"ratio {np.median(ratio):.2f} [{ratio.min():.2f}-{ratio.max():.2f}] ({args.repeats})")
    print(f"load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows, load_start=load, load_end=os.getloadavg()[0], **vars(args)), f, indent=2)


if __name__ == "__main__":
    main()
