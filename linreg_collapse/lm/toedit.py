"""ToEdit (Zhu et al. 2025): token-level editing of a corpus by a prior model, vectorised.

A prior model scores every token x_t of a document under teacher forcing, p_t = p(x_t | x_<t). Then
  * p_t > up_threshold: resample x_t from the model's top-k candidates c_1..c_k with probabilities
    softmax(log p(c_i | x_<t) / beta)  (the token is *revised*: M_n[t, t] = 1);
  * p_t < low_threshold: delete x_t from the document (*dropped*);
  * otherwise keep x_t.
The paper's strategies: ``up_revise`` (up 0.99, beta 1.5), ``low_drop_up_revise`` (up 0.99, low 0.001,
beta 1.0) and ``filtering`` (low 0.001 only). All tokens are scored in one teacher-forced pass over the
original text (as in the paper's script), so dropping or revising a token does not change the scores
of the tokens after it. The first token of each row is context only and never edited.

Randomness: each token gets one uniform u_t; the resampled candidate is the first i whose cumulative
probability exceeds u_t (inverse CDF). :func:`edit_reference` applies the same rule one token at a time
in Python, as the paper's script does, and is the reference for tests and the benchmark baseline.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import require
from .data import VOCAB_SIZE, Corpus
from .train import map_batches


@dataclasses.dataclass(frozen=True)
class EditStrategy:
    """Thresholds are on the probability of the observed token; ``None`` disables that rule."""

    name: str
    up_threshold: float | None
    low_threshold: float | None
    beta: float = 1.0
    top_k: int = 8


STRATEGIES = {
    "up_revise": EditStrategy("up_revise", up_threshold=0.99, low_threshold=None, beta=1.5),
    "low_drop_up_revise": EditStrategy("low_drop_up_revise", up_threshold=0.99, low_threshold=0.001, beta=1.0),
    "filtering": EditStrategy("filtering", up_threshold=None, low_threshold=0.001),
}


def make_strategy(name: str, up_threshold=None, low_threshold=None, beta=None, top_k=None) -> EditStrategy:
    """The named strategy with any given parameter overridden; InputError for bad values."""
    require(name in STRATEGIES, f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    base = STRATEGIES[name]
    strategy = dataclasses.replace(
        base,
        up_threshold=base.up_threshold if up_threshold is None or base.up_threshold is None else up_threshold,
        low_threshold=base.low_threshold if low_threshold is None or base.low_threshold is None else low_threshold,
        beta=base.beta if beta is None else beta,
        top_k=base.top_k if top_k is None else top_k,
    )
    for label, value in (("up threshold", strategy.up_threshold), ("low threshold", strategy.low_threshold)):
        require(value is None or 0.0 < value < 1.0, f"{label} {value} is outside (0, 1)")
    require(math.isfinite(strategy.beta) and strategy.beta > 0, f"beta {strategy.beta} must be positive")
    require(1 <= strategy.top_k <= VOCAB_SIZE, f"top-k {strategy.top_k} must be in [1, {VOCAB_SIZE}]")
    return strategy


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Scores:
    """Teacher-forced scores of every row position (n_rows, block_size[, k])."""

    top_log_probs: np.ndarray  # log p of the k most likely candidates, descending
    top_ids: np.ndarray
    target_log_probs: np.ndarray  # log p of the observed token


@dataclasses.dataclass
class EditResult:
    corpus: Corpus  # edited rows (dropped tokens removed, rows re-packed)
    revised: np.ndarray  # (n_rows, block_size) bool: diagonal of the editing matrix M_n
    changed: np.ndarray  # revised and the resampled token differs from the original
    dropped: np.ndarray
    doc_fraction_revised: np.ndarray  # per document: revised tokens / tokens
    doc_fraction_changed: np.ndarray
    doc_fraction_dropped: np.ndarray

    def summary(self, mask) -> dict:
        n = max(int(mask.sum()), 1)
        return {
            "fraction_revised": float(self.revised.sum() / n),
            "fraction_changed": float(self.changed.sum() / n),
            "fraction_dropped": float(self.dropped.sum() / n),
        }


@eqx.filter_jit
def _score(model, rows, k: int):
    log_probs = jax.nn.log_softmax(model(rows[:, :-1]), axis=-1)
    top_log_probs, top_ids = jax.lax.top_k(log_probs, k)
    return top_log_probs, top_ids, jnp.take_along_axis(log_probs, rows[:, 1:, None], axis=-1)[..., 0]


def score(model, corpus: Corpus, top_k: int, batch_size=256) -> Scores:
    """Top-k candidates and the observed token's log-probability at every position, in batches."""
    return Scores(*map_batches(lambda rows: _score(model, rows, top_k), [corpus.rows], batch_size))


def edit_uniforms(seed: int, corpus: Corpus) -> np.ndarray:
    """One uniform per position, (n_rows, block_size), for the candidate draw."""
    return np.asarray(jax.random.uniform(jax.random.PRNGKey(seed), (len(corpus), corpus.block_size)))


@functools.partial(jax.jit, static_argnames="strategy")
def edit_decisions(scores: Scores, targets, mask, uniforms, strategy: EditStrategy):
    """Vectorised ToEdit on all positions at once: (new tokens, revised, dropped), each (n_rows, block_size).

    The revised token is candidate i* = #{i : F_i < u_t}, F_i the cumulative softmax(top log p / beta).
    """
    p = jnp.exp(scores.target_log_probs)
    no = jnp.zeros_like(mask)
    revised = mask & (p > strategy.up_threshold) if strategy.up_threshold is not None else no
    dropped = mask & ~revised & (p < strategy.low_threshold) if strategy.low_threshold is not None else no
    cdf = jnp.cumsum(jax.nn.softmax(scores.top_log_probs / strategy.beta, axis=-1), axis=-1)
    choice = jnp.minimum(jnp.sum(cdf < uniforms[..., None] * cdf[..., -1:], axis=-1), strategy.top_k - 1)
    resampled = jnp.take_along_axis(scores.top_ids, choice[..., None], axis=-1)[..., 0]
    return jnp.where(revised, resampled, targets).astype(jnp.int32), revised, dropped


def repack(corpus: Corpus, targets, keep) -> Corpus:
    """Rows with only the kept targets, in order (a stable sort moves kept positions to the front)."""
    order = np.argsort(~keep, axis=1, kind="stable")
    packed = np.take_along_axis(targets, order, axis=1)
    n_kept = keep.sum(1)
    packed[np.arange(corpus.block_size)[None, :] >= n_kept[:, None]] = 0
    rows = np.concatenate([corpus.rows[:, :1], packed], axis=1).astype(np.int32)
    return Corpus(rows, (n_kept + 1).astype(np.int32), corpus.doc_ids.copy())


def edit_corpus(model, corpus: Corpus, strategy: EditStrategy, seed: int, batch_size=256) -> EditResult:
    """Score ``corpus`` with ``model`` and apply ``strategy``; deterministic in ``seed``."""
    scores = score(model, corpus, strategy.top_k, batch_size)
    mask = corpus.target_mask
    targets = corpus.rows[:, 1:]
    decisions = edit_decisions(scores, targets, mask, edit_uniforms(seed, corpus), strategy)
    new_targets, revised, dropped = (np.asarray(a) for a in decisions)
    changed = revised & (new_targets != targets)
    tokens_per_doc = np.maximum(np.bincount(corpus.doc_ids, mask.sum(1)), 1)
    per_doc = [np.bincount(corpus.doc_ids, m.sum(1)) / tokens_per_doc for m in (revised, changed, dropped)]
    return EditResult(repack(corpus, new_targets, mask & ~dropped), revised, changed, dropped, *per_doc)


def edit_reference(scores: Scores, corpus: Corpus, uniforms, strategy: EditStrategy) -> list[list[int]]:
    """Per-token Python loop (the paper's way): for each row, the list of its target tokens after editing."""
    edited_rows = []
    for b in range(len(corpus)):
        tokens = []
        for t in range(int(corpus.lengths[b]) - 1):
            token = int(corpus.rows[b, t + 1])
            p = math.exp(scores.target_log_probs[b, t])
            if strategy.up_threshold is not None and p > strategy.up_threshold:
                candidates = {int(c): float(lp) for c, lp in zip(scores.top_ids[b, t], scores.top_log_probs[b, t])}
                scaled = np.array(list(candidates.values()), dtype=np.float32) / np.float32(strategy.beta)
                weights = np.exp(scaled - scaled.max())
                cdf = np.cumsum(weights / weights.sum())
                pick = min(int(np.sum(cdf < uniforms[b, t] * cdf[-1])), len(cdf) - 1)
                tokens.append(list(candidates)[pick])
            elif strategy.low_threshold is not None and p < strategy.low_threshold:
                continue
            else:
                tokens.append(token)
        edited_rows.append(tokens)
    return edited_rows
