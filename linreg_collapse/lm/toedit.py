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

The candidates are the top-k tokens plus the observed one if it is not among them (what vLLM's prompt
log-probs hold; with p > 0.5 it is the top-1). Randomness: each token gets one uniform u_t; the
resampled candidate is the first i whose cumulative probability exceeds u_t (inverse CDF).
:func:`edit_reference` applies the same rule one token at a time in Python, as the paper's script
does, and is the reference for tests and the benchmark baseline.
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
def edit_tokens(scores: Scores, targets, mask, uniforms, strategy: EditStrategy):
    """Vectorised ToEdit on all positions at once, one XLA program.

    Candidates of a position are its top-k tokens plus the observed token if it is not among them (what
    vLLM's prompt log-probs hold). A revised token becomes candidate i* = #{i : W_i < u_t W_K}, with
    W_i = sum_{j<=i} exp((log p_j - log p_1) / beta) the unnormalised cumulative softmax(log p / beta)
    over the K candidates (K = k, or k + 1 with the observed token last).
    Kept targets move to the front of their row (position = running count of kept targets - 1).
    Returns (packed targets, kept counts, revised, changed, dropped).
    """
    p = jnp.exp(scores.target_log_probs)
    no = jnp.zeros_like(mask)
    revised = mask & (p > strategy.up_threshold) if strategy.up_threshold is not None else no
    dropped = mask & ~revised & (p < strategy.low_threshold) if strategy.low_threshold is not None else no
    new = targets
    if strategy.up_threshold is not None:
        top1 = scores.top_log_probs[..., :1]
        cdf = jnp.cumsum(jnp.exp((scores.top_log_probs - top1) / strategy.beta), axis=-1)  # W_1..W_k
        in_top = (scores.top_ids == targets[..., None]).any(-1)
        w_observed = jnp.where(in_top, 0.0, jnp.exp((scores.target_log_probs - top1[..., 0]) / strategy.beta))
        choice = jnp.sum(cdf < (uniforms * (cdf[..., -1] + w_observed))[..., None], axis=-1)  # k: observed
        picked = jnp.sum(jnp.where(jnp.arange(strategy.top_k) == choice[..., None], scores.top_ids, 0), -1)
        resampled = jnp.where(choice == strategy.top_k, targets, picked)
        new = jnp.where(revised, resampled, targets)
    keep = mask & ~dropped
    destination = jnp.where(keep, jnp.cumsum(keep, axis=1) - 1, targets.shape[1])  # out of range: not written
    rows = jnp.arange(targets.shape[0])[:, None]
    packed = jnp.zeros_like(targets).at[rows, destination].set(new, mode="drop").astype(jnp.int32)
    return packed, keep.sum(1), revised, revised & (new != targets), dropped


def with_targets(corpus: Corpus, targets, n_targets) -> Corpus:
    """``corpus`` with each row's targets replaced by the first ``n_targets`` of ``targets``."""
    rows = np.concatenate([corpus.rows[:, :1], targets], axis=1).astype(np.int32)
    return Corpus(rows, (np.asarray(n_targets) + 1).astype(np.int32), corpus.doc_ids.copy())


def edit_corpus(model, corpus: Corpus, strategy: EditStrategy, seed: int, batch_size=256) -> EditResult:
    """Score ``corpus`` with ``model`` and apply ``strategy``; deterministic in ``seed``."""
    scores = score(model, corpus, strategy.top_k, batch_size)
    mask = corpus.target_mask
    edited = edit_tokens(scores, corpus.rows[:, 1:], mask, edit_uniforms(seed, corpus), strategy)
    packed, n_kept, revised, changed, dropped = (np.asarray(a) for a in edited)
    tokens_per_doc = np.maximum(np.bincount(corpus.doc_ids, mask.sum(1)), 1)
    per_doc = [np.bincount(corpus.doc_ids, m.sum(1)) / tokens_per_doc for m in (revised, changed, dropped)]
    return EditResult(with_targets(corpus, packed, n_kept), revised, changed, dropped, *per_doc)


def edit_reference(scores: Scores, corpus: Corpus, uniforms, strategy: EditStrategy) -> list[list[int]]:
    """Per-token Python loop, structured like the paper's script: for every token a dict of candidate
    log-probs (top-k plus the observed token), then threshold tests and an inverse-CDF draw with u_t.
    Returns, for each row, the list of its target tokens after editing."""
    edited_rows = []
    for b in range(len(corpus)):
        tokens = []
        for t in range(int(corpus.lengths[b]) - 1):
            token = int(corpus.rows[b, t + 1])
            candidates = {int(c): float(lp) for c, lp in zip(scores.top_ids[b, t], scores.top_log_probs[b, t])}
            candidates.setdefault(token, float(scores.target_log_probs[b, t]))
            p = math.exp(candidates[token])
            if strategy.up_threshold is not None and p > strategy.up_threshold:
                log_p = np.array(list(candidates.values()), dtype=np.float32)
                cdf = np.cumsum(np.exp((log_p - log_p[0]) / np.float32(strategy.beta)))
                pick = min(int(np.sum(cdf < uniforms[b, t] * cdf[-1])), len(cdf) - 1)
                tokens.append(list(candidates)[pick])
            elif strategy.low_threshold is not None and p < strategy.low_threshold:
                continue
            else:
                tokens.append(token)
        edited_rows.append(tokens)
    return edited_rows
