"""ToEdit throughput: vectorised editing against the per-token Python loop, on the same top-k log-probs.

Scores are those of the tiny-preset model architecture, with the observed token's probability drawn so
that about a quarter of the tokens pass p > 0.99 and a tenth fall below 0.001 (the fractions a trained
tiny model realises). Both implementations get the same scores and uniforms; the loop
(:func:`edit_reference`, the paper's script's structure) runs on a subset of rows and is timed per token.
Also timed: the end-to-end ``edit_corpus`` (teacher-forced scoring by the model plus editing).
Warm timings (compiled first), best of ``--repeats``.

    python benchmarks/bench_lm_toedit.py [--rows 4096] [--loop-rows 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

from linreg_collapse.lm.data import BOS, VOCAB_SIZE, Corpus
from linreg_collapse.lm.experiment import PRESETS
from linreg_collapse.lm.model import Transformer
from linreg_collapse.lm.toedit import STRATEGIES, Scores, edit_corpus, edit_reference, edit_tokens, edit_uniforms


def synthetic_inputs(n_rows: int, block: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = np.concatenate([np.full((n_rows, 1), BOS), rng.integers(0, 256, (n_rows, block))], axis=1).astype(np.int32)
    corpus = Corpus(rows, np.full(n_rows, block + 1, np.int32), np.arange(n_rows, dtype=np.int32))
    p_target = np.select([rng.random((n_rows, block)) < 0.25, rng.random((n_rows, block)) < 0.13],
                         [0.995, 0.0005], 0.3)
    rest = np.sort(rng.dirichlet(np.ones(k - 1), (n_rows, block)), axis=-1)[..., ::-1] * (1 - p_target[..., None])
    top = np.concatenate([p_target[..., None], rest], axis=-1)
    ids = np.argsort(rng.random((n_rows, block, VOCAB_SIZE)), axis=-1)[..., :k].astype(np.int32)
    ids[..., 0] = rows[:, 1:]
    scores = Scores(np.log(top).astype(np.float32), ids, np.log(p_target).astype(np.float32))
    return corpus, scores


def best_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--loop-rows", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    preset = PRESETS["tiny"]
    block = preset.model.block_size
    corpus, scores = synthetic_inputs(args.rows, block, 8)
    uniforms = edit_uniforms(0, corpus)
    mask = corpus.target_mask
    report = {"machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} x {jax.default_backend()}",
              "tokens": int(mask.sum())}
    for name, strategy in STRATEGIES.items():
        def vectorised():
            return jax.block_until_ready(edit_tokens(scores, corpus.rows[:, 1:], mask, uniforms, strategy))

        loop_corpus = corpus.select(slice(args.loop_rows))
        loop_scores = Scores(*(a[: args.loop_rows] for a in (scores.top_log_probs, scores.top_ids, scores.target_log_probs)))
        t_vec = best_time(vectorised, args.repeats)
        t_loop = best_time(lambda: edit_reference(loop_scores, loop_corpus, uniforms, strategy), args.repeats)
        vec_rate, loop_rate = mask.sum() / t_vec, loop_corpus.target_mask.sum() / t_loop
        report[name] = {"vectorised_tokens_per_s": float(vec_rate), "loop_tokens_per_s": float(loop_rate),
                        "speedup": float(vec_rate / loop_rate)}
    model = Transformer(preset.model, jax.random.PRNGKey(0))
    t_e2e = best_time(lambda: edit_corpus(model, corpus, STRATEGIES["up_revise"], seed=0), args.repeats)
    report["edit_corpus_with_tiny_model_tokens_per_s"] = float(mask.sum() / t_e2e)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
