"""ToEdit throughput: vectorised editing against the per-token Python loop, on the same top-k log-probs.

Scores are those of the tiny-preset model architecture, with the observed token's probability drawn so
that about a quarter of the tokens pass p > 0.99 and a tenth fall below 0.001 (the fractions a trained
tiny model realises). Both implementations get the same scores and uniforms; the loop
(:func:`edit_reference`, the official script's per-token logic in float64) runs on a subset of rows and is
timed per token. Also timed: the end-to-end ``edit_corpus`` (teacher-forced full-prefix scoring of every
document by the model, plus editing).
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
from linreg_collapse.lm.scoring import edit_corpus
from linreg_collapse.lm.toedit import STRATEGIES, Scores, document_uniforms, edit_reference, edit_tokens


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
    uniforms = np.stack([document_uniforms(0, i, block + 1) for i in range(args.rows)])
    valid = np.ones(corpus.rows.shape, bool)
    editable = valid & (np.arange(block + 1) > 0)
    mask = corpus.target_mask
    # position t of a document holds the score of token t (position 0, BOS, unscored)
    scores = Scores(*(np.concatenate([np.zeros_like(a[:, :1]), a], axis=1)
                      for a in (scores.top_log_probs, scores.top_ids, scores.target_log_probs)))
    report = {"machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} x {jax.default_backend()}",
              "tokens": int(mask.sum())}
    for name, strategy in STRATEGIES.items():
        def vectorised():
            return jax.block_until_ready(edit_tokens(scores, corpus.rows, valid, editable, uniforms, strategy))

        def loop():
            for i in range(args.loop_rows):
                row_scores = Scores(scores.top_log_probs[i], scores.top_ids[i], scores.target_log_probs[i])
                edit_reference(row_scores, corpus.rows[i], editable[i], uniforms[i], strategy)

        t_vec = best_time(vectorised, args.repeats)
        t_loop = best_time(loop, args.repeats)
        vec_rate, loop_rate = mask.sum() / t_vec, mask[: args.loop_rows].sum() / t_loop
        report[name] = {"vectorised_tokens_per_s": float(vec_rate), "loop_tokens_per_s": float(loop_rate),
                        "speedup": float(vec_rate / loop_rate)}
    model = Transformer(preset.model, jax.random.PRNGKey(0))
    t_e2e = best_time(lambda: edit_corpus(model, corpus, STRATEGIES["up_revise"], seed=0), args.repeats)
    report["edit_corpus_with_tiny_model_tokens_per_s"] = float(mask.sum() / t_e2e)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
