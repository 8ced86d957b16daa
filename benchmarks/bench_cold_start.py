"""Cold-start benchmark: ``--help`` and an argument error, and a first run against a rerun with the
persistent compilation cache, compile time apart from run time.

Usage::

    python benchmarks/bench_cold_start.py [--repeats 5] [--baseline /path/to/older/checkout] [--json out.json]

Every measurement is a fresh ``python`` process timed from outside, back to back, in wall seconds and
in CPU seconds (user + system, which a busy shared machine inflates far less than wall time):

1. ``python -c pass`` (the interpreter alone), ``linreg-collapse --help``, ``simulate --help`` and an
   argument error (``simulate --T x``), each ``--repeats`` times; with ``--baseline`` the same commands
   from another checkout (e.g. the commit before lazy imports) in the same run, for a same-load ratio;
2. a simulation (replace, T = 100, d = 10, 20 generations, 1000 trials) in a process that reports its
   import, compile and run seconds (``run_batch``'s AOT compile, then the run), first with an empty
   compilation cache, then again with the cache the first process filled.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"interpreter": ["-c", "pass"], "--help": ["-m", "linreg_collapse.cli", "--help"],
            "simulate --help": ["-m", "linreg_collapse.cli", "simulate", "--help"],
            "argument error": ["-m", "linreg_collapse.cli", "simulate", "--T", "x"]}
RUN = """
import json, time
start = time.perf_counter()
import importlib
from linreg_collapse import SimConfig
sim = importlib.import_module("linreg_collapse.simulate")
imported = time.perf_counter()
result = sim.run_batch([SimConfig(regime="replace", T=100, d=10, generations=20, trials=1000)])
print(json.dumps({"import_s": imported - start, "compile_s": result.compile_seconds, "run_s": result.run_seconds}))
"""


def timed(argv: list[str], env: dict, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds user + system) of one child process run in ``cwd`` (``python -m`` puts
    the working directory first on sys.path, so it picks the tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def spread(values) -> dict:
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", help="another checkout to time the same commands from (same run)")
    parser.add_argument("--json")
    args = parser.parse_args()
    out: dict = {"load_before": os.getloadavg(), "startup_s": {}}
    trees = {"this": ROOT, **({"baseline": Path(args.baseline)} if args.baseline else {})}
    for name, argv in COMMANDS.items():
        for tree, path in trees.items():
            env = dict(os.environ, PYTHONPATH=str(path), LINREG_COLLAPSE_JAX_CACHE="off")
            walls, cpus = zip(*[timed(argv, env, path) for _ in range(args.repeats)])
            out["startup_s"][f"{tree}: {name}"] = {"wall": spread(walls), "cpu": spread(cpus)}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_COMPILATION_CACHE_DIR=cache,
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.2")
        for name in ("first run (empty cache)", "rerun (cached)"):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, check=True)
            out[name] = {"wall_s": time.perf_counter() - start, **json.loads(proc.stdout.strip().splitlines()[-1])}
    out["load_after"] = os.getloadavg()
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
