"""linreg-collapse against the peer's own script, regime by regime, at the peer's workload.

Usage::

    python benchmarks/bench_peer.py PATH/fit_linear_regressions.py [--seeds 1000] [--trials 10000]
        [--fits 50] [--T 100] [--d 10] [--repeats 3] [--json out.json]

The peer is ``src/fit_linear_regressions/fit_linear_regressions.py`` of the public repository
RylanSchaeffer/KoyejoLab-Collapse-or-Thrive; get it yourself and pass its path. It runs unmodified: this
script loads it with ``runpy`` after putting offline stand-ins in ``sys.modules`` for what it imports
besides NumPy (``wandb``: ``init`` merges the run's settings into ``wandb.config``, ``log`` records the
test MSE, ``finish`` does nothing; ``src.globals``: the default configuration; ``src.data``: unused by
this script, empty). One seed is one trial; its ``num_iterations`` = ``--fits`` fits, so ours runs
``generations = fits - 1`` (generation 0 is the first fit). NumPy runs with one BLAS thread.

Measured, per regime (replace, accumulate, accumulate-subsample; ours with each sampler that applies):

1. whole process: a fresh ``python`` timed from outside. Ours: ``linreg-collapse simulate`` at the full
   workload (imports and compilation included). The peer: this script's ``--peer-only`` mode on ``--seeds``
   seeds, extrapolated linearly to ``--trials`` seeds: startup + trials x (seconds per seed);
2. steady state in this process, each repeat timing both back to back: ours after compilation, the peer
   on ``--seeds`` seeds; trial-generations per second and their ratio;
3. the arithmetic floor of each sampler (normals and flops per trial-generation, priced at this
   machine's measured rates) against our steady-state time;
4. agreement: the mean error at each fit, ours against the peer's (its test MSE on 1000 points estimates
   the same ||w - w*||^2), as z-scores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import subprocess
import sys
import tempfile
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "benchmarks")]  # this checkout's package, here and in subprocesses
from bench_simulator import call_times, machine, spread  # noqa: E402  (sets one BLAS thread before NumPy)

import numpy as np  # noqa: E402

SETTINGS = {"replace": "Replace", "accumulate": "Accumulate", "accumulate-subsample": "Accumulate-Subsample"}
SAMPLERS = {"replace": ("stats", "labels"), "accumulate": ("stats", "labels"), "accumulate-subsample": ("labels",)}
SIGMA = 1.0


# ----------------------------------------------------------------------------- the peer, offline

def load_peer(path: str):
    """The peer's ``fit_linear_regression`` with offline stand-ins; returns (function, run settings, log)."""
    settings, log = {}, []

    def module(name: str, **attributes) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(attributes)
        sys.modules[name] = mod
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, mod)
        return mod

    wandb = module("wandb", log=lambda row: log.append(row), finish=lambda: None, config={},
                   api=types.SimpleNamespace(default_entity=None))

    def init(project=None, config=None, entity=None):
        wandb.config = {**(config or {}), **settings}
        return types.SimpleNamespace(config=wandb.config)

    wandb.init = init
    module("wandb.integration")
    module("wandb.integration.kfp")
    module("wandb.integration.kfp.kfp_patch", wandb_log=lambda fn: fn)
    module("src", __path__=[])
    module("src.globals", DEFAULT_LINEAR_REGRESSION_FITTING_CONFIG={})
    module("src.data")
    return runpy.run_path(path)["fit_linear_regression"], settings, log


def run_peer(fit, settings: dict, log: list, regime: str, seeds, args) -> np.ndarray:
    """Test MSE [len(seeds), fits], one peer run per seed (its prints discarded)."""
    log.clear()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for seed in seeds:
            settings.update(seed=int(seed), setting=SETTINGS[regime], data_dim=args.d,
                            num_samples_per_iteration=args.T, sigma_squared=SIGMA**2, num_iterations=args.fits)
            fit()
    return np.array([row["Mean Squared Error (Test)"] for row in log]).reshape(len(seeds), args.fits)


def peer_only(args) -> None:
    """Body of a ``--peer-only`` subprocess: the peer on ``--seeds`` seeds of one regime."""
    fit, settings, log = load_peer(args.peer)
    run_peer(fit, settings, log, args.regime, range(args.seeds), args)


# ----------------------------------------------------------------------------- measurements

def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], check=True, stdout=subprocess.DEVNULL, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": REPO, **(env or {})})
    return time.perf_counter() - start


def our_argv(regime: str, sampler: str, args, json_path: str) -> list[str]:
    return ["-m", "linreg_collapse.cli", "simulate", "--regime", regime, "--sampler", sampler,
            "--T", str(args.T), "--d", str(args.d), "--generations", str(args.fits - 1),
            "--trials", str(args.trials), "--seed", "0", "--json", json_path]


def whole_process(regime: str, peer_seconds_per_seed: float, args) -> dict:
    """Wall seconds of fresh processes, back to back: ours per sampler, then the peer on --seeds seeds."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in SAMPLERS[regime]:
            out[f"ours_{sampler}_s"] = timed(our_argv(regime, sampler, args, os.path.join(tmp, "out.json")))
    peer_s = timed([os.path.abspath(__file__), args.peer, "--peer-only", "--regime", regime,
                    "--seeds", str(args.seeds)])
    startup = max(peer_s - args.seeds * peer_seconds_per_seed, 0.0)
    out.update(peer_s_for_seeds=peer_s, peer_startup_s=startup,
               peer_extrapolated_s=startup + args.trials * peer_seconds_per_seed)
    for sampler in SAMPLERS[regime]:
        out[f"ratio_{sampler}"] = out["peer_extrapolated_s"] / out[f"ours_{sampler}_s"]
    return out


def steady_state(regime: str, fit, settings, log, args) -> dict:
    """Each repeat: ours at the full workload per sampler (compiled), then the peer on --seeds seeds."""
    import jax

    from linreg_collapse import SimConfig
    from linreg_collapse.simulate import _static, chunk_size, compiled_runner, make_params, trial_keys

    generations = args.fits - 1
    runs, ours_final = {}, {}
    with jax.enable_x64(True):
        for sampler in SAMPLERS[regime]:
            cfg = SimConfig(regime=regime, T=args.T, d=args.d, sigma=SIGMA, generations=generations,
                            trials=args.trials, seed=0, sampler=sampler)
            chunk = chunk_size(cfg)
            run, params = compiled_runner(*_static(cfg)), make_params(cfg)
            keys = [trial_keys(cfg.seed, c * chunk, chunk) for c in range(-(-cfg.trials // chunk))]
            runs[sampler] = lambda run=run, keys=keys, params=params: [jax.block_until_ready(run(k, params))
                                                                       for k in keys]
            errors = np.concatenate([np.asarray(e) for e, _ in runs[sampler]()])[: cfg.trials]
            ours_final[sampler] = errors
        ours = {s: [] for s in runs}
        peer = []
        for _ in range(args.repeats):
            for sampler, fn in runs.items():
                ours[sampler] += [args.trials * generations / t for t in call_times(fn, 1)]
            start = time.perf_counter()
            peer_mse = run_peer(fit, settings, log, regime, range(args.seeds), args)
            peer.append(args.seeds * generations / (time.perf_counter() - start))
    out = {"peer_tg_per_s": spread(peer), "peer_seconds_per_seed": float(np.median(
        [generations / rate for rate in peer]))}
    for sampler in runs:
        out[f"ours_{sampler}_tg_per_s"] = spread(ours[sampler])
        out[f"ratio_{sampler}"] = spread([o / p for o, p in zip(ours[sampler], peer)])
        out[f"agreement_{sampler}"] = agreement(ours_final[sampler], peer_mse)
    return out


def agreement(ours: np.ndarray, peer: np.ndarray) -> dict:
    """Mean error per fit, ours against the peer's test MSE: z = difference / combined standard error."""
    se = np.sqrt(ours.var(0, ddof=1) / len(ours) + peer.var(0, ddof=1) / len(peer))
    z = (ours.mean(0) - peer.mean(0)) / se
    return {"max_abs_z": float(np.abs(z).max()), "ours_last": float(ours[:, -1].mean()),
            "peer_last": float(peer[:, -1].mean())}


def floor_work(regime: str, sampler: str, T: int, d: int) -> tuple[int, int]:
    """(normals, flops) per trial-generation that the formulation needs.

    labels: T normals; X w and X^T Y (4Td), two triangular solves (2d^2), the error (3d).
    stats: d normals; X^T Y = L (L^T w + sigma z) (2d^2 + d), the solves (2d^2), the error (3d).
    accumulate adds the X^T Y sum (d). accumulate-subsample (labels) also refits on the drawn T points:
    X^T X of the subsample (T d (d + 1), one triangle), its Cholesky (d^3 / 3) and X_s^T Y_s (2Td)."""
    if sampler == "stats":
        normals, flops = d, 4 * d * d + 4 * d
    else:
        normals, flops = T, 4 * T * d + 2 * d * d + 3 * d
    if regime == "accumulate":
        flops += d
    if regime == "accumulate-subsample":
        flops += T * d * (d + 1) + d**3 // 3 + 2 * T * d
    return normals, flops


def machine_rates(args) -> dict:
    """Float64 rates, median of --repeats: JAX normals in bulk; X w and X^T X w vmapped over 1024 trials in a
    scan over generations, the shapes and loop structure of the simulator."""
    import jax
    import jax.numpy as jnp

    B, T, d, G = 1024, args.T, args.d, args.fits - 1
    bulk = 10**7
    with jax.enable_x64(True):
        key = jax.random.key(0)
        X = jax.random.normal(key, (B, T, d), dtype=jnp.float64)
        w = jnp.ones((B, d))

        def matvecs(X, w):
            return jax.lax.scan(lambda w, _: (X.T @ (X @ w) / T, None), w, length=G)[0]

        normal = jax.jit(lambda k: jax.random.normal(k, (bulk,), dtype=jnp.float64))
        matvec = jax.jit(jax.vmap(matvecs))
        jax.block_until_ready((normal(key), matvec(X, w)))
        t_normal = np.median(call_times(lambda: jax.block_until_ready(normal(key)), args.repeats))
        t_matvec = np.median(call_times(lambda: jax.block_until_ready(matvec(X, w)), args.repeats))
    return {"normals_per_s": bulk / t_normal, "flops_per_s": 4 * B * G * T * d / t_matvec}


def floors(results: dict, rates: dict, args) -> dict:
    out = {}
    for regime, r in results.items():
        for sampler in SAMPLERS[regime]:
            normals, flops = floor_work(regime, sampler, args.T, args.d)
            floor_s = normals / rates["normals_per_s"] + flops / rates["flops_per_s"]
            ours_s = 1 / r["steady"][f"ours_{sampler}_tg_per_s"]["median"]
            out[f"{regime} {sampler}"] = {"normals": normals, "flops": flops, "floor_us": floor_s * 1e6,
                                          "ours_us": ours_s * 1e6, "ours_over_floor": ours_s / floor_s}
    return out


# ----------------------------------------------------------------------------- report

def markdown(results: dict, floor: dict) -> str:
    lines = ["| regime | sampler | whole process: peer (extrapolated) | ours | ratio | steady state: peer tg/s "
             "| ours tg/s | ratio [min-max] | max abs z |", "|---|---|---|---|---|---|---|---|---|"]
    for regime, r in results.items():
        w, s = r["whole"], r["steady"]
        for sampler in SAMPLERS[regime]:
            ratio = s[f"ratio_{sampler}"]
            lines.append(
                f"| {regime} | {sampler} | {w['peer_extrapolated_s']:.1f} s | {w[f'ours_{sampler}_s']:.2f} s "
                f"| **{w[f'ratio_{sampler}']:.1f}x** | {s['peer_tg_per_s']['median']:.3g} "
                f"| {s[f'ours_{sampler}_tg_per_s']['median']:.3g} | **{ratio['median']:.0f}x** "
                f"[{ratio['min']:.0f}-{ratio['max']:.0f}] | {s[f'agreement_{sampler}']['max_abs_z']:.2f} |")
    lines += ["", "| regime, sampler | normals | flops | floor µs/tg | ours µs/tg | ours / floor |",
              "|---|---|---|---|---|---|"]
    for name, f in floor.items():
        lines.append(f"| {name} | {f['normals']} | {f['flops']} | {f['floor_us']:.3f} | {f['ours_us']:.3f} "
                     f"| {f['ours_over_floor']:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", help="path of the peer's fit_linear_regressions.py")
    parser.add_argument("--seeds", type=int, default=1000, help="peer seeds timed (extrapolated to --trials; 300 moved 20%% between runs)")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--fits", type=int, default=50, help="fits per trial (the peer's num_iterations)")
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="steady-state repeats")
    parser.add_argument("--regimes", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--peer-only", action="store_true", help="run the peer on --seeds seeds of --regime")
    parser.add_argument("--regime", choices=tuple(SETTINGS), default="replace", help="regime of --peer-only")
    args = parser.parse_args()
    if args.peer_only:
        peer_only(args)
        return
    results = {"machine": machine(), "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
               "workload": {"T": args.T, "d": args.d, "fits": args.fits, "trials": args.trials,
                            "peer_seeds": args.seeds}}
    fit, settings, log = load_peer(args.peer)
    per_regime = {}
    for regime in args.regimes:
        steady = steady_state(regime, fit, settings, log, args)
        whole = whole_process(regime, steady["peer_seconds_per_seed"], args)
        per_regime[regime] = {"steady": steady, "whole": whole, "load_average": os.getloadavg()}
        print(f"{regime}: {json.dumps(per_regime[regime])}", flush=True)
    rates = machine_rates(args)
    floor = floors(per_regime, rates, args)
    results.update(regimes=per_regime, rates=rates, floor=floor, load_average_at_end=os.getloadavg())
    print(markdown(per_regime, floor))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
