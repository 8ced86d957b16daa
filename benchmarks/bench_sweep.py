"""Sweep benchmark: the peer's own linear-regression grid through ``sweep`` against the peer's loop.

Usage (from the repository root, ``PYTHONPATH=$PWD``)::

    python benchmarks/bench_sweep.py --peer PATH/fit_linear_regressions.py [--peer-seeds 1]
        [--d 1 3 10 32 100] [--T 10 32 100 316 1000] [--regimes replace accumulate accumulate-subsample]
        [--parts sweep batching peer] [--json out.json]

The grid is KoyejoLab-Collapse-or-Thrive's ``sweeps/fit_linear_regressions``: d in {1, 3, 10, 32, 100},
T in {10, 32, 100, 316, 1000}, sigma^2 in {0.1, 1, 10}, seeds 0-99, 100 iterations (fits), settings
Replace, Accumulate and Accumulate-Subsample on a fixed design. Here it is the same cells as sweep grids
(one per d): trials = 100 (the seeds), generations = 99 (100 fits), sigma = sqrt(sigma^2). All 25 cells
run: where T < d the fit is the minimum-norm interpolator (the peer's pinv), and the cells with
d - 1 <= T <= d + 1, whose mean error is infinite, run with ``allow-infinite-mean`` (as the peer does).

Measures, back to back:

1. ``sweep``, whole process: a fresh ``python`` subprocess timed from outside, imports included, first
   with an empty persistent compilation cache, then rerun into a fresh output directory with the cache
   the first run filled. Compile and run seconds come from each sweep.json; CPU seconds (user + system,
   every thread) from the finished child's rusage, the measure that holds on a shared, loaded machine.
2. the peer: ``--peer`` is the unmodified script ``src/fit_linear_regressions/fit_linear_regressions.py``
   of that repository. Its function runs in this process once per run with offline stand-ins for W&B
   (``wandb.init``/``log``/``finish`` do nothing, the run's config is set directly) and for the
   repository's ``src.globals``/``src.data`` (the function reads neither beyond the default config), with
   one BLAS thread. ``--peer-seeds`` seeds per (d, T, setting) at sigma^2 = 1 are timed and extrapolated
   linearly to 100 seeds x 3 sigma^2 (a run's cost depends on neither the seed nor sigma), wall and CPU
   seconds (``time.process_time``). Starting a process per run, as W&B's agent does, is not counted:
   that favours the peer.
3. batching: one shape (replace, T = 100, d = 10) with its 3 sigma values, after compilation: one
   vmapped call against a loop over the 3 configurations through the same compiled one-configuration
   program.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before NumPy loads: one BLAS thread for the peer (shared machine)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"replace": "Replace", "accumulate": "Accumulate", "accumulate-subsample": "Accumulate-Subsample"}
SIGMA_SQUARED = (0.1, 1.0, 10.0)
SEEDS, ITERATIONS = 100, 100


def grids(ds, Ts, regimes=tuple(SETTINGS)) -> dict[int, dict]:
    """One sweep grid per d over every T."""
    return {d: {"regime": list(regimes), "d": d, "T": list(Ts), "sigma": [math.sqrt(s2) for s2 in SIGMA_SQUARED],
                "generations": ITERATIONS - 1, "trials": SEEDS, "design": "fixed", "allow-infinite-mean": True}
            for d in ds}


SWEEP_PROCESS = """
import json, sys
from linreg_collapse import sweep
for d, grid in json.loads(sys.argv[1]).items():
    sweep(grid, out=f"{sys.argv[2]}/d{d}")
"""


def child_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children (all their threads)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_sweep(ds, Ts, regimes, work: Path, cache: Path, name: str) -> dict:
    """Wall and CPU seconds of one fresh process sweeping every grid, and compile/run seconds by regime and
    by d from sweep.json."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.2")
    start, cpu_start = time.perf_counter(), child_cpu_seconds()
    subprocess.run([sys.executable, "-c", SWEEP_PROCESS, json.dumps(grids(ds, Ts, regimes)), str(work / name)],
                   env=env, check=True)
    wall, cpu = time.perf_counter() - start, child_cpu_seconds() - cpu_start
    by_regime = {r: {"compile_s": 0.0, "run_s": 0.0, "configurations": 0} for r in regimes}
    by_d, batches = {}, []
    for meta_path in sorted((work / name).glob("d*/sweep.json")):
        timings = json.loads(meta_path.read_text())["timings"]
        by_d[meta_path.parent.name[1:]] = {"sweep_call_s": timings["wall_seconds"],
                                           "compile_s": timings["compile_seconds"], "run_s": timings["run_seconds"]}
        batches += timings["batches"]
        for batch in timings["batches"]:
            entry = by_regime[batch["program"][0]]
            entry["compile_s"] += batch["compile_seconds"]
            entry["run_s"] += batch["run_seconds"]
            entry["configurations"] += batch["configurations"]
    return {"wall_s": wall, "cpu_s": cpu, "by_regime": by_regime, "by_d": by_d, "batches": batches}


def load_peer(path: str):
    """``run(config)``: the peer's fit_linear_regression() once, with stand-ins for W&B and its src package."""
    config: dict = {}
    wandb = types.ModuleType("wandb")
    wandb.config = config
    wandb.api = types.SimpleNamespace(default_entity=None)
    wandb.init = lambda **kwargs: types.SimpleNamespace()
    wandb.log = lambda *args, **kwargs: None
    wandb.finish = lambda *args, **kwargs: None
    kfp_patch = types.ModuleType("wandb.integration.kfp.kfp_patch")
    kfp_patch.wandb_log = lambda f: f
    src, src_globals = types.ModuleType("src"), types.ModuleType("src.globals")
    src_globals.DEFAULT_LINEAR_REGRESSION_FITTING_CONFIG = {}
    src.globals, src.data = src_globals, types.ModuleType("src.data")
    sys.modules.update({"wandb": wandb, "wandb.integration": types.ModuleType("wandb.integration"),
                        "wandb.integration.kfp": types.ModuleType("wandb.integration.kfp"),
                        "wandb.integration.kfp.kfp_patch": kfp_patch, "src": src, "src.globals": src_globals,
                        "src.data": src.data})
    spec = importlib.util.spec_from_file_location("peer_fit_linear_regressions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run(run_config: dict) -> None:
        config.clear()
        config.update(run_config)
        with contextlib.redirect_stdout(io.StringIO()):  # it pretty-prints its config
            module.fit_linear_regression()

    return run


def time_peer(path: str, ds, Ts, regimes, seeds: int) -> dict:
    """Extrapolated wall and CPU seconds of the peer's whole grid, by setting and by cell."""
    run = load_peer(path)
    cells, by_setting, cpu_by_setting = [], {r: 0.0 for r in regimes}, {r: 0.0 for r in regimes}
    for d in ds:
        for T in Ts:
            for regime in regimes:
                setting = SETTINGS[regime]
                start, cpu_start = time.perf_counter(), time.process_time()
                for seed in range(seeds):
                    run(dict(data_dim=d, num_samples_per_iteration=T, num_iterations=ITERATIONS, seed=seed,
                             setting=setting, sigma_squared=1.0))
                per_run = (time.perf_counter() - start) / seeds
                cpu_per_run = (time.process_time() - cpu_start) / seeds
                total, cpu_total = (x * SEEDS * len(SIGMA_SQUARED) for x in (per_run, cpu_per_run))
                cells.append({"d": d, "T": T, "setting": setting, "s_per_run": per_run, "extrapolated_s": total,
                              "cpu_s_per_run": cpu_per_run, "extrapolated_cpu_s": cpu_total})
                by_setting[regime] += total
                cpu_by_setting[regime] += cpu_total
                print(f"peer d={d} T={T} {setting}: {per_run:.3f} s/run, {cpu_per_run:.3f} CPU s/run",
                      file=sys.stderr, flush=True)
    return {"total_s": sum(by_setting.values()), "by_setting": by_setting, "total_cpu_s": sum(cpu_by_setting.values()),
            "cpu_by_setting": cpu_by_setting, "cells": cells, "seeds_timed": seeds}


def batching() -> dict:
    """Seconds per call after compilation: 3 sigma values vmapped in one call vs a loop of 3 calls."""
    import importlib

    sim = importlib.import_module("linreg_collapse.simulate")
    from linreg_collapse import SimConfig

    cfgs = [SimConfig(regime="replace", T=100, d=10, sigma=math.sqrt(s2), generations=ITERATIONS - 1, trials=SEEDS)
            for s2 in SIGMA_SQUARED]
    sim.run_batch(cfgs), sim.run_batch(cfgs[:1])  # compile both programs
    vmapped, looped = [], []
    for _ in range(5):
        start = time.perf_counter()
        sim.run_batch(cfgs)
        vmapped.append(time.perf_counter() - start)
        start = time.perf_counter()
        for cfg in cfgs:
            sim.run_batch([cfg])
        looped.append(time.perf_counter() - start)
    return {"vmapped_s": float(np.median(vmapped)), "looped_s": float(np.median(looped)),
            "loop_over_vmap": float(np.median(looped) / np.median(vmapped))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", help="the peer's fit_linear_regressions.py (omit to time only the sweep)")
    parser.add_argument("--peer-seeds", type=int, default=1)
    parser.add_argument("--d", type=int, nargs="+", default=[1, 3, 10, 32, 100])
    parser.add_argument("--T", type=int, nargs="+", default=[10, 32, 100, 316, 1000])
    parser.add_argument("--regimes", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        help="settings to run (default: all three)")
    parser.add_argument("--parts", nargs="+", choices=("sweep", "batching", "peer"), default=["sweep", "batching", "peer"],
                        help="what to measure (default: all, back to back)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    n_cells = len(args.d) * len(args.T)
    out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                       "load_before": os.getloadavg()},
           "grid": {"d": args.d, "T": args.T, "sigma_squared": SIGMA_SQUARED, "seeds": SEEDS, "iterations": ITERATIONS,
                    "regimes": args.regimes, "cells": n_cells,
                    "configurations": n_cells * len(args.regimes) * len(SIGMA_SQUARED)}}

    def save() -> None:  # after every part, so a long run keeps what it measured
        out["machine"]["load_after"] = os.getloadavg()
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2) + "\n")

    if "sweep" in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            work, cache = Path(tmp), Path(tmp) / "jax-cache"
            out["sweep_cold_cache"] = time_sweep(args.d, args.T, args.regimes, work, cache, "cold")
            save()
            out["sweep_warm_cache"] = time_sweep(args.d, args.T, args.regimes, work, cache, "warm")
            save()
    if "batching" in args.parts:
        out["batching"] = batching()
        save()
    if "peer" in args.parts and args.peer:
        out["peer"] = time_peer(args.peer, args.d, args.T, args.regimes, args.peer_seeds)
    if "sweep_cold_cache" in out and "peer" in out:
        for key in ("sweep_cold_cache", "sweep_warm_cache"):
            out[f"peer_over_{key}"] = out["peer"]["total_s"] / out[key]["wall_s"]
            out[f"peer_over_{key}_cpu"] = out["peer"]["total_cpu_s"] / out[key]["cpu_s"]
    save()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
