"""JAX's CPU rule for the Threefry hash (a loop) against the unrolled rule of ``jax_setup.unroll_threefry_on_cpu``.

Usage (from the repository root)::

    python benchmarks/bench_threefry.py [--parts draws programs compile] [--rounds 2]

Every measurement runs in a fresh process (the rule is process-wide), the compilation cache off, the two
rules alternating ``--rounds`` times; reported per rule: the median and range over rounds.

* ``draws``: 64 random bits, uniform and normal float64 of shape [1000, 100] under a 49-step
  ``fori_loop`` (a new key each step): wall ns per value (median of 5 calls) and compile seconds.
* ``programs``: the simulator's programs for replace (stats), accumulate (stats) and accumulate-subsample
  at T = 100, d = 10, 49 generations, one 1000-trial chunk: compile seconds, steady wall seconds per chunk
  (median of 3 calls) and the mean last-generation error to 17 digits (equal under both rules: the same draws).
* ``compile``: total compile seconds of four small programs (replace labels, accumulate-subsample, edit
  perturb, replace fresh stats; T = 64, d = 8, 5 generations, 200 trials) under three sets of XLA flags:
  the package's defaults, the test suite's (level 0, classic emitters) and ``verify``'s (level 1, classic
  emitters). Under the classic emitters the package keeps JAX's rule; here the unrolled one is forced to
  show why.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = ("rolled", "unrolled")
FLAGS = {
    "default": "",
    "suite": "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false",
    "verify": "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false",
}


def use_rule(rule: str) -> None:
    """Install ``rule`` for this process before the simulator is imported (which would install its own)."""
    from linreg_collapse import jax_setup

    if rule == "unrolled":
        assert jax_setup.unroll_threefry_on_cpu({"XLA_FLAGS": ""})
    jax_setup.unroll_threefry_on_cpu = lambda environ=None: False  # simulate's import-time call does nothing


def timed(fn, calls: int) -> float:
    """Median wall seconds of ``calls`` calls of ``fn`` (blocking on its result)."""
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def draws() -> dict:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    batch, width, steps = 1000, 100, 49
    keys = jax.random.split(jax.random.key(0), batch)
    samplers = {
        "bits": lambda k: (jax.random.bits(k, (width,), jnp.uint64) >> 11).astype(jnp.float64),
        "uniform": lambda k: jax.random.uniform(k, (width,), jnp.float64),
        "normal": lambda k: jax.random.normal(k, (width,), jnp.float64),
    }
    out = {}
    for name, draw in samplers.items():
        def run(keys, draw=draw):
            def body(n, total):
                return total + jax.vmap(lambda k: draw(jax.random.fold_in(k, n)))(keys)
            return jax.lax.fori_loop(0, steps, body, jnp.zeros((batch, width)))

        start = time.perf_counter()
        compiled = jax.jit(run).lower(keys).compile()
        compile_s = time.perf_counter() - start
        compiled(keys).block_until_ready()
        seconds = timed(lambda: compiled(keys).block_until_ready(), 5)
        out[name] = {"ns_per_value": seconds / (batch * width * steps) * 1e9, "compile_s": compile_s}
    return out


def programs() -> dict:
    import importlib

    import jax
    import numpy as np
    from jax.sharding import PartitionSpec

    from linreg_collapse.config import SimConfig

    sim = importlib.import_module("linreg_collapse.simulate")
    from linreg_collapse.devices import place, trial_mesh

    mesh = trial_mesh()
    out = {}
    for regime in ("replace", "accumulate", "accumulate-subsample"):
        cfg = SimConfig(regime=regime, T=100, d=10, generations=49, trials=10_000)
        with jax.enable_x64(True):
            params = jax.tree.map(lambda x: place(np.stack([np.asarray(x)]), mesh, PartitionSpec()),
                                  sim.make_params(cfg))
            seed = place(np.stack([jax.random.key_data(jax.random.key(0))]), mesh, PartitionSpec())
            chunk_start = (seed, place(np.int32(0), mesh, PartitionSpec()))
            start = time.perf_counter()
            compiled = sim.batch_runner(sim._static(cfg), 1000, mesh).lower(chunk_start, params).compile()
            compile_s = time.perf_counter() - start
            errors = compiled(chunk_start, params)[0].block_until_ready()
            chunk_s = timed(lambda: compiled(chunk_start, params)[0].block_until_ready(), 3)
        out[regime] = {"compile_s": compile_s, "chunk_s": chunk_s,
                       "mean_last_error": repr(float(np.asarray(errors)[0, :, -1].mean()))}
    return out


def small_compiles() -> dict:
    import importlib

    from linreg_collapse.config import SimConfig

    sim = importlib.import_module("linreg_collapse.simulate")
    kinds = [dict(regime="replace", sampler="labels"), dict(regime="accumulate-subsample"),
             dict(regime="edit", edit_op="perturb", mask="random", edit_fraction=0.3),
             dict(regime="replace", design="fresh", sampler="stats")]
    total = sum(sim.run_batch([SimConfig(T=64, d=8, generations=5, trials=200, **kw)]).compile_seconds
                for kw in kinds)
    return {"compile_s": total}


PARTS = {"draws": draws, "programs": programs, "compile": small_compiles}


def child(part: str, rule: str) -> None:
    use_rule(rule)
    print(json.dumps(PARTS[part]()))


def run_child(part: str, rule: str, flags: str) -> dict:
    env = {**os.environ, "XLA_FLAGS": flags, "LINREG_COLLAPSE_JAX_CACHE": "off",
           "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", part, rule], env=env,
                          capture_output=True, text=True, timeout=900, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=tuple(PARTS), default=list(PARTS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("PART", "RULE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(f"load average {os.getloadavg()[0]:.2f}")
    for part in args.parts:
        for flag_set in (FLAGS if part == "compile" else ("default",)):
            results = {rule: [] for rule in RULES}
            for _ in range(args.rounds):
                for rule in RULES:
                    results[rule].append(run_child(part, rule, FLAGS[flag_set]))
            for rule in RULES:
                runs = results[rule]
                for name in runs[0] if part != "compile" else [None]:
                    rows = [r[name] if name else r for r in runs]
                    fields = ", ".join(f"{key} {spread([row[key] for row in rows], 3)}" for key in rows[0]
                                       if key != "mean_last_error")
                    same = {row.get("mean_last_error") for row in rows} - {None}
                    label = f"{part} [{flag_set}] {rule}" + (f" {name}" if name else "")
                    print(f"{label}: {fields}" + (f", mean last error {same.pop()}" if same else ""))
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
