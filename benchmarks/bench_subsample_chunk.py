"""CPU seconds of one compiled accumulate-subsample chunk, for several checkouts of the package in ONE process.

Usage (from anywhere)::

    python benchmarks/bench_subsample_chunk.py /work/main/linreg_collapse linreg_collapse
        [--T 100] [--d 10] [--generations 49] [--chunk 1000] [--rounds 10] [--profile N]

Each argument is a copy of the ``linreg_collapse`` package directory (main's and a branch's, say). Each is
copied under its own name into a temporary directory (the package imports itself only relatively), its
``run_batch`` program compiled for one configuration (sigma = 1, seed 0) and ``--chunk`` trials, then the
compiled programs are called in turn, ``--rounds`` times, the order reversed every other round, so that a
shared machine's load falls on all alike. Reported per checkout: median and range of the CPU seconds
(``time.process_time``, every thread) and wall seconds per call, the compile CPU seconds, and the mean
last-generation error (the draws differ between checkouts whose samplers differ; the law does not).
``--profile N`` adds each checkout's N costliest kernels in a ``jax.profiler`` trace.

The programs compile in the order given, and a lowering rule a checkout installs when imported (the unrolled
Threefry of ``jax_setup``) holds for the rest of the process: list a checkout without it first to compare
before and after.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import importlib
import json
import os
import shutil
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="+", help="linreg_collapse package directories to compare")
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--generations", type=int, default=49)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", type=int, metavar="N", default=0,
                        help="also trace two calls per checkout (jax.profiler) and print its N costliest kernels")
    args = parser.parse_args()

    copies = tempfile.mkdtemp()
    sys.path.insert(0, copies)
    for i, package in enumerate(args.packages):
        shutil.copytree(package, os.path.join(copies, f"checkout_{i}"))
    importlib.import_module("checkout_0")  # configures XLA (jax_setup) before JAX starts its backend
    import jax
    import numpy as np
    from jax.sharding import PartitionSpec

    programs = []
    for i in range(len(args.packages)):
        sim = importlib.import_module(f"checkout_{i}.simulate")
        config = importlib.import_module(f"checkout_{i}.config")
        devices = importlib.import_module(f"checkout_{i}.devices")
        cfg = config.SimConfig(regime="accumulate-subsample", T=args.T, d=args.d, generations=args.generations,
                               trials=args.chunk, seed=0, sigma=1.0)
        mesh = devices.trial_mesh()

        def place(x, mesh=mesh, devices=devices):
            return devices.place(x, mesh, PartitionSpec())

        with jax.enable_x64(True):
            params = jax.tree.map(lambda x: place(np.stack([np.asarray(x)])), sim.make_params(cfg))
            chunk_start = (place(np.stack([jax.random.key_data(jax.random.key(0))])), place(np.int32(0)))
            start = time.process_time()
            run, _ = sim.compiled_batch(cfg, 1, args.chunk, mesh, chunk_start, params)
            compile_cpu = time.process_time() - start
            errors = np.asarray(run(chunk_start, params)[0])
        programs.append(dict(run=run, args=(chunk_start, params), compile_cpu=compile_cpu, cpu=[], wall=[],
                             error=float(errors[0, :, -1].mean())))

    with jax.enable_x64(True):
        for round_ in range(args.rounds):
            for program in programs if round_ % 2 == 0 else programs[::-1]:
                cpu, wall = time.process_time(), time.perf_counter()
                np.asarray(program["run"](*program["args"])[0])
                program["cpu"].append(time.process_time() - cpu)
                program["wall"].append(time.perf_counter() - wall)

    print(f"accumulate-subsample, T={args.T}, d={args.d}, generations={args.generations}, chunk={args.chunk}, "
          f"{args.rounds} rounds, load {os.getloadavg()[0]:.2f}")
    for package, program in zip(args.packages, programs):
        cpu, wall = np.asarray(program["cpu"]), np.asarray(program["wall"])
        per = 1e6 * np.median(cpu) / (args.chunk * args.generations)
        print(f"{package}: CPU {np.median(cpu):.3f} s [{cpu.min():.3f}-{cpu.max():.3f}] ({per:.1f} us per "
              f"trial-generation), wall {np.median(wall):.3f} s, compile CPU {program['compile_cpu']:.2f} s, "
              f"mean last error {program['error']:.4f}")
        if args.profile:
            for name, ms in costliest_kernels(program, args.profile):
                print(f"    {ms:8.1f} ms per chunk  {name}")


def costliest_kernels(program: dict, count: int) -> list[tuple[str, float]]:
    """The ``count`` kernels (XLA thunks) with the most wall time in a ``jax.profiler`` trace of two calls of
    ``program``: (name, ms per call), summed over the generations' calls of each."""
    import jax
    import numpy as np

    trace_dir = tempfile.mkdtemp()
    with jax.enable_x64(True):
        jax.profiler.start_trace(trace_dir)
        for _ in range(2):
            np.asarray(program["run"](*program["args"])[0])
        jax.profiler.stop_trace()
    path = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as file:
        events = json.load(file)["traceEvents"]
    total = collections.Counter()
    for event in events:
        if event.get("ph") == "X" and not event["name"].startswith(("ThunkExecutor", "$")):
            total[event["name"]] += event["dur"] / 2e3  # µs over two calls -> ms per call
    return total.most_common(count)


if __name__ == "__main__":
    main()
