"""Simulator benchmark: the jitted simulator against a research-code-style NumPy loop, and the floor.

Usage::

    python benchmarks/bench_simulator.py [--trials 1000 --generations 100 --T 100 --d 10] [--json out.json]

Measures, for the ``replace`` and ``accumulate`` regimes on a fixed design:

1. whole-process wall time of each approach, each a fresh ``python`` subprocess of this script
   (``--only simulator|loop``) timed from outside, imports and compilation included, back to back;
   the simulator also with a warm persistent compilation cache, to show what compilation costs;
2. steady-state trial-generations per second, in this process: the simulator after compilation
   (``block_until_ready``), the loop on a subset of seeds extrapolated linearly (a seed's cost does
   not depend on how many seeds run), each repeat timing both back to back;
3. the arithmetic floor: normals and flops per trial-generation that any implementation of the
   simulator's formulation must do, at this machine's measured float64 rates (normals in bulk and,
   like X w and X^T Y, vmapped over the batch inside a scan over generations as the simulator runs
   them), and the simulator's time per trial-generation relative to it.

The loop baseline follows how public research code (KoyejoLab-Collapse-or-Thrive,
``src/fit_linear_regressions``) does it: one NumPy ``RandomState`` per seed, a fixed design, and at
every generation ``np.linalg.pinv`` of the whole training set; for ``accumulate`` the training set is
every generation's data so far, concatenated. NumPy runs with one BLAS thread (see below). Its error
is the exact ||w - w*||^2 (identity covariance), the quantity the simulator reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

# One BLAS thread, set before NumPy loads, for this process and the timed subprocesses: on a shared
# 2-core machine OpenBLAS's default threads spin against other jobs and made the loop 10-70x slower.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

REGIMES = ("replace", "accumulate")
SIGMA = 1.0
JAX_CACHE_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                       "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")


# ----------------------------------------------------------------------------- the two approaches

def research_loop(regime: str, seeds, T: int, d: int, generations: int) -> np.ndarray:
    """Test errors [len(seeds), generations + 1], one seed at a time, pinv of the training set each generation."""
    errors = np.empty((len(seeds), generations + 1))
    for row, seed in enumerate(seeds):
        rng = np.random.RandomState(seed)
        w_star = rng.randn(d) / np.sqrt(d)
        X = rng.randn(T, d)
        X_train, Y_train = X, X @ w_star + SIGMA * rng.randn(T)
        for n in range(generations + 1):
            w = np.linalg.pinv(X_train) @ Y_train
            errors[row, n] = np.sum((w - w_star) ** 2)
            if n == generations:
                break
            Y_new = X @ w + SIGMA * rng.randn(T)
            if regime == "replace":
                Y_train = Y_new
            else:
                X_train = np.concatenate((X_train, X))
                Y_train = np.concatenate((Y_train, Y_new))
    return errors


def sim_config(regime: str, args):
    from linreg_collapse import SimConfig

    return SimConfig(regime=regime, T=args.T, d=args.d, sigma=SIGMA, generations=args.generations,
                     trials=args.trials, seed=0, sampler="labels")  # the floor below counts labels' work


def run_one_process(args) -> None:
    """Body of a ``--only`` subprocess: the whole workload once, printing the final mean error."""
    if args.only == "simulator":
        from linreg_collapse import simulate

        final_mean = simulate(sim_config(args.regime, args)).mean[-1]
    else:
        final_mean = research_loop(args.regime, range(args.trials), args.T, args.d, args.generations).mean(0)[-1]
    print(f"{args.only} {args.regime} mean error at generation {args.generations}: {final_mean:.4f}")


# ----------------------------------------------------------------------------- measurements

def spread(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(values)), "min": float(values.min()), "max": float(values.max()),
            "n": int(values.size)}


def timed_process(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def whole_process_times(regime: str, args) -> dict:
    """Wall seconds of fresh processes: simulator (no compilation cache), loop, simulator (warm cache)."""
    script = os.path.abspath(__file__)
    shape = ["--regime", regime, "--trials", str(args.trials), "--generations", str(args.generations),
             "--T", str(args.T), "--d", str(args.d)]
    plain_env = {k: v for k, v in os.environ.items() if k not in JAX_CACHE_VARIABLES}
    simulator, loop, cached = [], [], []
    with tempfile.TemporaryDirectory() as cache_dir:
        cache_env = dict(plain_env, JAX_COMPILATION_CACHE_DIR=cache_dir,
                         JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        timed_process([script, "--only", "simulator", *shape], cache_env)  # fills the cache
        for repeat in range(args.process_repeats):
            simulator.append(timed_process([script, "--only", "simulator", *shape], plain_env))
            if repeat < args.loop_process_repeats:
                loop.append(timed_process([script, "--only", "loop", *shape], plain_env))
            cached.append(timed_process([script, "--only", "simulator", *shape], cache_env))
    ratios = [lo / si for lo, si in zip(loop, simulator)]
    return {"simulator_s": spread(simulator), "loop_s": spread(loop), "simulator_warm_cache_s": spread(cached),
            "loop_over_simulator": spread(ratios)}


def call_times(fn, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` (which blocks until its result is ready)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def steady_state(regime: str, args) -> dict:
    """Trial-generations per second after compilation; each repeat times simulator and loop back to back."""
    import jax

    from linreg_collapse.simulate import CHUNK_TRIALS, _static, compiled_runner, make_params, trial_keys

    cfg = sim_config(regime, args)
    chunk = min(cfg.trials, CHUNK_TRIALS)
    n_chunks = -(-cfg.trials // chunk)
    loop_seeds = range(args.loop_seeds[regime])
    with jax.enable_x64(True):
        run = compiled_runner(*_static(cfg))
        params = make_params(cfg)
        keys = [trial_keys(cfg.seed, c * chunk, chunk) for c in range(n_chunks)]

        def simulator():
            return [jax.block_until_ready(run(k, params)) for k in keys]

        sim_final_mean = float(np.concatenate([np.asarray(e) for e, _ in simulator()])[: cfg.trials, -1].mean())
        sim_rates, loop_rates = [], []
        for _ in range(args.steady_repeats):
            sim_rates.append(cfg.trials * cfg.generations / call_times(simulator, 1)[0])
            start = time.perf_counter()
            loop_errors = research_loop(regime, loop_seeds, args.T, args.d, args.generations)
            loop_rates.append(len(loop_seeds) * args.generations / (time.perf_counter() - start))
    ratios = [s / lo for s, lo in zip(sim_rates, loop_rates)]
    return {"simulator_tg_per_s": spread(sim_rates), "loop_tg_per_s": spread(loop_rates),
            "loop_seeds_timed": len(loop_seeds), "simulator_over_loop": spread(ratios),
            "final_mean_error": {"simulator": sim_final_mean, "loop_subset": float(loop_errors[:, -1].mean()),
                                 "theory": theory_final_error(regime, args)}}


def theory_final_error(regime: str, args) -> float:
    """Expected test error at the last generation on a fixed design: sigma^2 d/(T-d-1) times N+1 (replace)
    or sum_{k<=N+1} 1/k^2 (accumulate). A check that both approaches do the same workload."""
    base = SIGMA**2 * args.d / (args.T - args.d - 1)
    if regime == "replace":
        return base * (args.generations + 1)
    return base * sum(1.0 / k**2 for k in range(1, args.generations + 2))


def floor_flops(regime: str, T: int, d: int) -> tuple[int, int]:
    """(necessary, implemented) flops per trial-generation. Necessary: X w and X^T Y (2Td each), the two
    triangular solves with a fixed Gram factor (2d^2), the error (3d), accumulate's X^T Y sum (d).
    The simulator's accumulate on a fixed design also divides by n + 1 (d)."""
    necessary = 4 * T * d + 2 * d * d + 3 * d + (d if regime == "accumulate" else 0)
    return necessary, necessary + (d if regime == "accumulate" else 0)


def floor_and_rates(args) -> dict:
    """This machine's float64 rates (normals: JAX bulk, JAX at the simulator's batch shape and generation
    loop, NumPy; X w and X^T Y likewise) and the simulator's time per trial-generation relative to
    the floor, all re-timed back to back in every repeat; also the fastest simulator time over the floor at
    the fastest rates seen."""
    import jax
    import jax.numpy as jnp

    from linreg_collapse.simulate import CHUNK_TRIALS, _static, compiled_runner, make_params, trial_keys

    B, T, d = min(args.trials, CHUNK_TRIALS), args.T, args.d
    bulk = 10**7
    rng, legacy = np.random.default_rng(0), np.random.RandomState(0)
    G = args.generations

    def over_generations(body, carry):
        """``body(carry, n)`` for n = 1 .. G in a ``lax.scan``, as the simulator loops over generations."""
        return jax.lax.scan(lambda c, n: (body(c, n), None), carry, jnp.arange(1, G + 1))[0]

    def normals(key):
        draw = lambda n: jax.random.normal(jax.random.fold_in(key, n), (T,), jnp.float64)  # noqa: E731
        return over_generations(lambda s, n: s + draw(n), jnp.zeros(T))

    def matvecs(X, w):  # X w and X^T Y, the 1/T keeping w bounded
        return over_generations(lambda w, n: X.T @ (X @ w) / T, w)

    def gram_and_cholesky(X):  # accumulate's per-generation X^T X sum and factor (the factor fed back)
        return over_generations(lambda g, n: jnp.linalg.cholesky(g + X.T @ X) / T, X.T @ X)

    with jax.enable_x64(True):
        key = jax.random.key(0)
        batch_keys = jax.random.split(key, B)
        X = jax.random.normal(key, (B, T, d), dtype=jnp.float64)
        w = jax.random.normal(batch_keys[0], (B, d), dtype=jnp.float64)
        kernels = {
            "jax_bulk": (jax.jit(lambda k: jax.random.normal(k, (bulk,), dtype=jnp.float64)), (key,)),
            "jax_batched": (jax.jit(jax.vmap(normals)), (batch_keys,)),
            "matvecs": (jax.jit(jax.vmap(matvecs)), (X, w)),
            "gram_and_cholesky": (jax.jit(jax.vmap(gram_and_cholesky)), (X,)),
        }
        for regime in REGIMES:
            cfg = sim_config(regime, args)
            run, params = compiled_runner(*_static(cfg)), make_params(cfg)
            kernels[regime] = (run, (trial_keys(cfg.seed, 0, B), params))
        for fn, inputs in kernels.values():
            jax.block_until_ready(fn(*inputs))
        samples = {name: [] for name in [*kernels, "numpy_default", "numpy_legacy"]}
        for _ in range(args.steady_repeats):
            for name, (fn, inputs) in kernels.items():
                samples[name] += call_times(lambda: jax.block_until_ready(fn(*inputs)), 1)
            samples["numpy_default"] += call_times(lambda: rng.standard_normal(bulk), 1)
            samples["numpy_legacy"] += call_times(lambda: legacy.randn(bulk), 1)
    t = {name: np.asarray(v) for name, v in samples.items()}
    normal_rate = np.maximum(bulk / t["jax_bulk"], B * G * T / t["jax_batched"])
    matvec_rate = 4 * B * G * T * d / t["matvecs"]
    out = {"rates": {"jax_normals_bulk_per_s": spread(bulk / t["jax_bulk"]),
                     "jax_normals_batched_per_s": spread(B * G * T / t["jax_batched"]),
                     "numpy_default_rng_normals_per_s": spread(bulk / t["numpy_default"]),
                     "numpy_legacy_randn_per_s": spread(bulk / t["numpy_legacy"]),
                     "batched_matvec_flops_per_s": spread(matvec_rate),
                     "accumulate_gram_and_cholesky_s_per_tg": spread(t["gram_and_cholesky"] / (B * G))}}
    for regime in REGIMES:
        flops, implemented = floor_flops(regime, T, d)
        floor_s = T / normal_rate + flops / matvec_rate
        sim_s = t[regime] / (B * G)
        out[regime] = {"normals_per_tg": T, "flops_per_tg": flops, "simulator_implemented_flops_per_tg": implemented,
                       "floor_s_per_tg": spread(floor_s), "floor_normals_s_per_tg": spread(T / normal_rate),
                       "floor_flops_s_per_tg": spread(flops / matvec_rate), "simulator_s_per_tg": spread(sim_s),
                       "simulator_over_floor": spread(sim_s / floor_s),
                       "best_simulator_over_best_floor":
                           float(sim_s.min() / (T / normal_rate.max() + flops / matvec_rate.max()))}
    return out


# ----------------------------------------------------------------------------- report

def fmt(s: dict, scale: float = 1.0, digits: int = 3) -> str:
    return (f"{s['median'] * scale:.{digits}g} [{s['min'] * scale:.{digits}g}-{s['max'] * scale:.{digits}g}]"
            f" (n={s['n']})")


def markdown(results: dict) -> str:
    rates = results["floor"]["rates"]
    lines = ["| regime | measure | simulator | NumPy pinv loop | ratio |", "|---|---|---|---|---|"]
    for regime in REGIMES:
        wp, st, fl = results[regime]["whole_process"], results[regime]["steady_state"], results["floor"][regime]
        lines += [
            f"| {regime} | whole process, s | {fmt(wp['simulator_s'])} | {fmt(wp['loop_s'])} | "
            f"{fmt(wp['loop_over_simulator'])} |",
            f"| {regime} | whole process, warm compilation cache, s | {fmt(wp['simulator_warm_cache_s'])} | | "
            f"{wp['loop_s']['median'] / wp['simulator_warm_cache_s']['median']:.3g} |",
            f"| {regime} | steady state, trial-generations/s | {fmt(st['simulator_tg_per_s'])} | "
            f"{fmt(st['loop_tg_per_s'])}, {st['loop_seeds_timed']} seeds | {fmt(st['simulator_over_loop'])} |",
            f"| {regime} | us per trial-generation: simulator vs floor ({fl['normals_per_tg']} normals + "
            f"{fl['flops_per_tg']} flops; the simulator does {fl['simulator_implemented_flops_per_tg']} flops) | "
            f"{fmt(fl['simulator_s_per_tg'], 1e6)} | floor {fmt(fl['floor_s_per_tg'], 1e6)}: normals "
            f"{fl['floor_normals_s_per_tg']['median'] * 1e6:.3g} + flops {fl['floor_flops_s_per_tg']['median'] * 1e6:.3g} "
            f"| {fmt(fl['simulator_over_floor'])} x floor; fastest over lowest "
            f"{fl['best_simulator_over_best_floor']:.2f} |",
        ]
        errors = st["final_mean_error"]
        lines.append(f"| {regime} | mean error at generation {results['workload']['generations']} (theory "
                     f"{errors['theory']:.4g}) | {errors['simulator']:.4g} | {errors['loop_subset']:.4g} (timed seeds) | |")
    lines += ["", "| machine rate (float64) | median [min-max] |", "|---|---|",
              f"| jax.random.normal, bulk 10^7, M/s | {fmt(rates['jax_normals_bulk_per_s'], 1e-6)} |",
              f"| jax.random.normal vmapped at the batch shape, M/s | {fmt(rates['jax_normals_batched_per_s'], 1e-6)} |",
              f"| NumPy default_rng().standard_normal, M/s | {fmt(rates['numpy_default_rng_normals_per_s'], 1e-6)} |",
              f"| NumPy RandomState.randn (the loop's), M/s | {fmt(rates['numpy_legacy_randn_per_s'], 1e-6)} |",
              f"| batched X w and X^T Y at the batch shape, GFLOP/s | {fmt(rates['batched_matvec_flops_per_s'], 1e-9)} |",
              f"| accumulate's X^T X + Cholesky at the batch shape, us per trial-generation | "
              f"{fmt(rates['accumulate_gram_and_cholesky_s_per_tg'], 1e6)} |"]
    return "\n".join(lines)


def machine() -> dict:
    import jax

    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "numpy": np.__version__, "load_average_at_start": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--process-repeats", type=int, default=3, help="whole-process runs of the simulator")
    parser.add_argument("--loop-process-repeats", type=int, default=1,
                        help="whole-process runs of the loop (accumulate takes minutes)")
    parser.add_argument("--steady-repeats", type=int, default=7)
    parser.add_argument("--loop-seeds-replace", type=int, default=100, help="seeds timed for the loop's rate")
    parser.add_argument("--loop-seeds-accumulate", type=int, default=10)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--only", choices=("simulator", "loop"), help="run one approach once (whole-process mode)")
    parser.add_argument("--regime", choices=REGIMES, default="replace", help="regime of --only")
    args = parser.parse_args()
    if args.only:
        run_one_process(args)
        return
    args.loop_seeds = {"replace": args.loop_seeds_replace, "accumulate": args.loop_seeds_accumulate}
    results = {"machine": machine(), "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
               "workload": {"T": args.T, "d": args.d, "generations": args.generations, "trials": args.trials,
                            "design": "fixed"}}
    for regime in REGIMES:
        results[regime] = {"whole_process": whole_process_times(regime, args),
                           "steady_state": steady_state(regime, args)}
    results["floor"] = floor_and_rates(args)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    print(json.dumps(results["machine"]))
    print(markdown(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
