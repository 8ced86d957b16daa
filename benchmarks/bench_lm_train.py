"""Training throughput of the language model: tokens/s and model-FLOPs utilisation (MFU).

Times ``--steps`` jitted training steps after one warm-up (compile) step on random full rows, best of
``--repeats``. Tokens/s counts every position of a batch (batch x block_size); FLOPs per token are
6 N + 12 n_layers d_model block_size (PaLM appendix B). MFU = achieved FLOP/s / ``--peak-tflops``
(default: the H100 SXM dense TF32 peak, 494.7 TFLOP/s, on a GPU; none on a CPU, where GFLOP/s is shown).

    python benchmarks/bench_lm_train.py --preset tiny            # CPU
    python benchmarks/bench_lm_train.py --preset small           # GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import equinox as eqx
import jax
import numpy as np

from linreg_collapse.lm.experiment import PRESETS
from linreg_collapse.lm.model import Transformer, flops_per_token, n_params
from linreg_collapse.lm.train import _train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    config, train_config = preset.model, preset.train
    optimizer, step = _train_step(train_config)
    model = Transformer(config, jax.random.PRNGKey(0))
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (train_config.batch_size, config.block_size + 1)).astype(np.int32)
    mask = np.ones((train_config.batch_size, config.block_size), np.float32)
    model, opt_state, loss = step(model, opt_state, rows, mask)
    loss.block_until_ready()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.steps):
            model, opt_state, loss = step(model, opt_state, rows, mask)
        loss.block_until_ready()
        times.append((time.perf_counter() - start) / args.steps)
    tokens_per_s = train_config.batch_size * config.block_size / min(times)
    flop_per_s = tokens_per_s * flops_per_token(config, n_params(model))
    backend = jax.default_backend()
    peak = args.peak_tflops if args.peak_tflops is not None else (494.7 if backend == "gpu" else None)
    print(json.dumps({
        "preset": args.preset,
        "device": f"{jax.devices()[0].device_kind} ({backend}), host {platform.machine()}",
        "parameters": n_params(model),
        "tokens_per_step": train_config.batch_size * config.block_size,
        "ms_per_step": 1000 * min(times),
        "tokens_per_s": tokens_per_s,
        "model_gflop_per_s": flop_per_s / 1e9,
        "mfu": None if peak is None else flop_per_s / (peak * 1e12),
    }, indent=2))


if __name__ == "__main__":
    main()
