"""Editing at large T: seconds per trial-generation of the simulator (each mask schedule x operator) and of
the exact estimator, against the arithmetic floor measured on this machine (issue 15).

Steady state: each program is compiled and run once, then timed on further calls (best of ``--repeats``),
in process CPU seconds (all threads; the shared machine's wall clock is meaningless under load). A simulator
case is timed at G and 4 G generations: one generation costs (t(4 G) - t(G)) / (3 G), and generation 0
(drawing and factorising the design) is reported apart as t(G) less G generations.
The floor of one edit trial-generation is what its arithmetic costs alone, each part timed at the
simulator's shape (the same trials, vmapped): T float64 normals for the noise, T 32-bit keys for a
random/disjoint mask, and X w and X^T Y (4 T d flops); the d x d solve is negligible at T >> d. The exact
estimator's floor is its 3 d T^2 flops at the rate of those matrix-vector products.
The random mask alone (:func:`~linreg_collapse.masks.select_uniform`) is timed too, with the counting passes
its search for the k-th smallest key made (mean over trials, and the most, which the batch waits for).
``--reference`` also times the sampler before it (two argsorts of T uniforms per generation).

    PYTHONPATH=. python benchmarks/bench_editing.py --T 100 1000 10000 100000
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from linreg_collapse import SimConfig
from linreg_collapse.exact import _edit_program, chunk_size as exact_chunk
from linreg_collapse.masks import kth_smallest_key, select_uniform
from linreg_collapse.simulate import _static, compiled_runner, make_params, trial_keys

GENERATIONS = 5
WORK = 2_000_000  # trials x T per timed call: enough work to time, little memory


def best_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.process_time()
        jax.block_until_ready(fn())
        times.append(time.process_time() - start)
    return min(times)


def trials_for(T: int) -> int:
    return int(np.clip(WORK // T, 2, 1024))


def simulator_time(T: int, d: int, op: str, mask: str, repeats: int) -> tuple[float, float]:
    """(seconds per trial-generation, seconds of generation 0 per trial) of the simulator's edit program."""
    trials = trials_for(T)

    def run_time(generations):
        cfg = SimConfig(regime="edit", T=T, d=d, generations=generations, trials=trials, edit_op=op, mask=mask,
                        edit_fraction=0.1, decay=0.9)
        run, params, keys = compiled_runner(*_static(cfg)), make_params(cfg), trial_keys(0, 0, trials)
        return best_time(lambda: run(keys, params), repeats)

    with jax.enable_x64(True):
        once, more = run_time(GENERATIONS), run_time(4 * GENERATIONS)
    generation = (more - once) / (trials * 3 * GENERATIONS)
    return generation, once / trials - GENERATIONS * generation


def mask_time(T: int, repeats: int) -> tuple[float, float, int]:
    """(seconds per trial-generation, mean and most counting passes) of the random mask alone, k = T/10."""
    trials, k = trials_for(T), round(0.1 * T)
    with jax.enable_x64(True):
        keys = trial_keys(0, 0, trials)
        run = jax.jit(jax.vmap(lambda key: select_uniform(key, jnp.ones(T, bool), k)))
        seconds = best_time(lambda: run(keys), repeats) / trials
        bits = jax.vmap(lambda key: jax.random.bits(key, (T,), jnp.uint32))(keys)
        _, probes = jax.jit(jax.vmap(kth_smallest_key, in_axes=(0, None, None)))(bits, jnp.ones(T, bool), k)
    return seconds, float(np.mean(probes)), int(np.max(probes))


def exact_time(T: int, d: int, repeats: int) -> float:
    """Seconds per trial-generation of the exact estimator (edit, resample, random masks drawn in the program)."""
    cfg = SimConfig(regime="edit", T=T, d=d, generations=GENERATIONS, trials=2, mask="random")
    chunk = exact_chunk(cfg)
    with jax.enable_x64(True):
        params, keys = make_params(cfg), trial_keys(0, 0, chunk)
        given = jnp.zeros((GENERATIONS, T), params.masks.dtype)
        run = _edit_program(T, d, GENERATIONS, "random")
        return best_time(lambda: run(keys, given, params, True, False), repeats) / (chunk * GENERATIONS)


def reference_mask_time(T: int, repeats: int) -> float:
    """Seconds per trial-generation of the argsort random-mask sampler of before (argsort of an argsort)."""
    trials = trials_for(T)

    def one(key):
        u = jax.random.uniform(key, (T,))
        return jnp.argsort(jnp.argsort(u)) < round(0.1 * T)

    with jax.enable_x64(True):
        keys = trial_keys(0, 0, trials)
        run = jax.jit(jax.vmap(one))
        return best_time(lambda: run(keys), repeats) / trials


def floors(T: int, d: int, repeats: int) -> dict[str, float]:
    """Seconds per trial of the arithmetic floor's parts at the simulator's shape: ``normals`` (T float64
    normals), ``keys`` (T 32-bit keys) and ``matvecs`` (X w and X^T Y), and ``per_flop`` of the latter."""
    trials = trials_for(T)
    with jax.enable_x64(True):
        keys = trial_keys(0, 0, trials)
        X, w = jnp.ones((trials, T, d)) / d, jnp.ones((trials, d))
        normals = jax.jit(jax.vmap(lambda key: jax.random.normal(key, (T,))))
        bits = jax.jit(jax.vmap(lambda key: jax.random.bits(key, (T,), jnp.uint32)))
        matvecs = jax.jit(jax.vmap(lambda X, w: X.T @ (X @ w)))
        out = {"normals": best_time(lambda: normals(keys), repeats), "keys": best_time(lambda: bits(keys), repeats),
               "matvecs": best_time(lambda: matvecs(X, w), repeats)}
    out = {name: seconds / trials for name, seconds in out.items()}
    return {**out, "per_flop": out["matvecs"] / (4 * T * d)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exact-max-T", type=int, default=2000,
                        help="largest T for the exact estimator (it holds a T x T covariance per trial)")
    parser.add_argument("--reference", action="store_true", help="also time the argsort mask sampler of before")
    args = parser.parse_args()
    print(f"# load {os.getloadavg()[0]:.1f}; d = {args.d}, {GENERATIONS} and {4 * GENERATIONS} generations, "
          f"edit fraction 0.1")
    print(f"{'T':>7} {'case':<26} {'us/trial-gen':>12} {'floor us':>9} {'x floor':>8} {'generation 0 us':>15}")
    for T in args.T:
        parts = floors(T, args.d, args.repeats)
        print(f"{T:>7} {'floor parts':<26} normals {parts['normals'] * 1e6:.2f} us, keys {parts['keys'] * 1e6:.2f} us, "
              f"X w and X^T Y {parts['matvecs'] * 1e6:.2f} us ({parts['per_flop'] * 1e9:.3f} ns per flop)", flush=True)
        floor = {"random": parts["normals"] + parts["keys"], "disjoint": parts["normals"] + parts["keys"],
                 "threshold": parts["normals"]}
        for op in ("resample", "perturb"):
            for mask in floor:  # a user mask file costs what threshold does, less the comparison
                t, t0 = simulator_time(T, args.d, op, mask, args.repeats)
                f = floor[mask] + parts["matvecs"]
                print(f"{T:>7} {op + ' ' + mask:<26} {t * 1e6:>12.2f} {f * 1e6:>9.2f} {t / f:>8.1f} {t0 * 1e6:>15.0f}",
                      flush=True)
        t, mean_probes, most_probes = mask_time(T, args.repeats)
        print(f"{T:>7} {'random mask alone':<26} {t * 1e6:>12.2f} {parts['keys'] * 1e6:>9.2f} "
              f"{t / parts['keys']:>8.1f}   counting passes: mean {mean_probes:.2f}, most {most_probes} "
              f"of {trials_for(T)} trials", flush=True)
        if args.reference:
            t = reference_mask_time(T, args.repeats)
            print(f"{T:>7} {'argsort mask (before)':<26} {t * 1e6:>12.2f}", flush=True)
        if T <= args.exact_max_T:
            t = exact_time(T, args.d, args.repeats)
            f = 3 * args.d * T * T * parts["per_flop"]
            print(f"{T:>7} {'exact (3 d T^2 flops)':<26} {t * 1e6:>12.2f} {f * 1e6:>9.2f} {t / f:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
