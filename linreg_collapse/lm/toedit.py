"""ToEdit (Zhu et al. 2025): token-level editing of a corpus by a prior model, vectorised.

A prior model scores every token x_t of a document under teacher forcing, p_t = p(x_t | x_<t). Then
  * p_t > up_threshold: resample x_t from the candidates c_1..c_K with probabilities
    softmax(log p(c_i | x_<t) / beta)  (the token is *revised*: M_n[t, t] = 1);
  * p_t < low_threshold: delete x_t from the document (*dropped*);
  * otherwise keep x_t.
The paper's strategies: ``up_revise`` (up 0.99, beta 1.5), ``low_drop_up_revise`` (up 0.99, low 0.001,
beta 1.0) and ``filtering`` (low 0.001 only). All tokens are scored in one teacher-forced pass over the
original text (as in the paper's script), so dropping or revising a token does not change the scores
of the tokens after it. The first token of a document has no score and is never edited.

Decisions match the official script (toedit_resampling.py) exactly: it tests float64 exp(log p) > up and
< low on float32 log-probs. Here each threshold becomes the smallest float32 log-prob that passes the
float64 test (:func:`float32_log_threshold`), so comparing float32 log-probs with it gives the same
answer for every float32 input. NaN scores: ``filtering`` keeps a token only if p >= low (a NaN is
dropped), the revising strategies test p > up and p < low (a NaN is kept), as the official script does.

Candidates are the top-k tokens plus the observed token if it is not among them (what vLLM's prompt
log-probs hold; with p > 0.5 it is the top-1), in that order. Randomness: each token gets one uniform
u_t; the resampled candidate is the first i whose cumulative probability exceeds u_t (inverse CDF, as
``np.random.choice``). :func:`edit_reference` applies the official script's logic one token at a time in
float64 Python and is the oracle for tests and the benchmark baseline.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import require


@dataclasses.dataclass(frozen=True)
class EditStrategy:
    """Thresholds are on the probability of the observed token; ``None`` disables that rule."""

    name: str
    up_threshold: float | None
    low_threshold: float | None
    beta: float = 1.0
    top_k: int = 8

    @property
    def revise_from(self) -> float | None:
        """Smallest float32 log p with exp(log p) > up_threshold in float64."""
        return None if self.up_threshold is None else float32_log_threshold(self.up_threshold, strict=True)

    @property
    def keep_from(self) -> float | None:
        """Smallest float32 log p with exp(log p) >= low_threshold in float64 (below it: dropped)."""
        return None if self.low_threshold is None else float32_log_threshold(self.low_threshold, strict=False)

    @property
    def drops_nan(self) -> bool:
        """The official filtering keeps tokens with p >= low, so it drops NaN; low_drop_up_revise drops
        p < low, so it keeps NaN."""
        return self.up_threshold is None


STRATEGIES = {
    "up_revise": EditStrategy("up_revise", up_threshold=0.99, low_threshold=None, beta=1.5),
    "low_drop_up_revise": EditStrategy("low_drop_up_revise", up_threshold=0.99, low_threshold=0.001, beta=1.0),
    "filtering": EditStrategy("filtering", up_threshold=None, low_threshold=0.001),
}


@functools.lru_cache(maxsize=None)
def float32_log_threshold(threshold: float, strict: bool) -> float:
    """The smallest float32 x with exp(float64(x)) > threshold (``strict``) or >= threshold: for float32
    log-probs, x >= this value exactly when the official script's float64 test passes."""
    passes = (lambda x: np.exp(np.float64(x)) > threshold) if strict else (lambda x: np.exp(np.float64(x)) >= threshold)
    x = np.float32(math.log(threshold))
    while passes(x):
        x = np.nextafter(x, np.float32(-np.inf))
    while not passes(x):
        x = np.nextafter(x, np.float32(np.inf))
    return float(x)


def make_strategy(name: str, up_threshold=None, low_threshold=None, beta=None, top_k=None,
                  vocab_size: int | None = None) -> EditStrategy:
    """The named strategy with any given parameter overridden; InputError for bad values and for a
    threshold the strategy does not use (it would be silently ignored)."""
    require(name in STRATEGIES, f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    base = STRATEGIES[name]
    require(up_threshold is None or base.up_threshold is not None,
            f"--up-threshold does not apply to strategy {name!r} (it never revises)")
    require(low_threshold is None or base.low_threshold is not None,
            f"--low-threshold does not apply to strategy {name!r} (it never drops)")
    strategy = dataclasses.replace(
        base,
        up_threshold=base.up_threshold if up_threshold is None else up_threshold,
        low_threshold=base.low_threshold if low_threshold is None else low_threshold,
        beta=base.beta if beta is None else beta,
        top_k=base.top_k if top_k is None else top_k,
    )
    for label, value in (("up threshold", strategy.up_threshold), ("low threshold", strategy.low_threshold)):
        require(value is None or 0.0 < value < 1.0, f"{label} {value} is outside (0, 1)")
    require(strategy.up_threshold is None or strategy.low_threshold is None
            or strategy.low_threshold < strategy.up_threshold,
            f"low threshold {strategy.low_threshold} must be below the up threshold {strategy.up_threshold}")
    require(math.isfinite(strategy.beta) and strategy.beta > 0, f"beta {strategy.beta} must be positive")
    max_k = vocab_size if vocab_size is not None else strategy.top_k
    require(1 <= strategy.top_k <= max_k, f"top-k {strategy.top_k} must be in [1, {max_k}]")
    return strategy


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class Scores:
    """Teacher-forced scores of every position (..., T[, k]); position t is log p(x_t | x_<t)."""

    top_log_probs: np.ndarray  # log p of the k most likely candidates, descending
    top_ids: np.ndarray
    target_log_probs: np.ndarray  # log p of the observed token


def edit_tokens(scores: Scores, tokens, valid, editable, uniforms, strategy: EditStrategy):
    """Vectorised ToEdit on all positions of a (B, T) batch at once, one XLA program.

    ``valid`` marks real tokens, ``editable`` the scored ones that may be revised or dropped (never a
    document's first token). A revised token becomes candidate i* = #{i : W_i <= u_t W_K}, with
    W_i = sum_{j<=i} exp((log p_j - log p_1) / beta) the unnormalised cumulative softmax(log p / beta)
    over the K candidates (K = k, or k + 1 with the observed token last).
    Kept tokens move to the front of their row (position = running count of kept tokens - 1).
    Returns (packed tokens, kept counts, revised, changed, dropped). The thresholds and beta are traced,
    so strategies that differ only in them share one compilation.
    """
    rules = (strategy.up_threshold is not None, strategy.low_threshold is not None, strategy.drops_nan)
    bounds = np.array([strategy.revise_from or 0.0, strategy.keep_from or 0.0, strategy.beta], np.float32)
    return _edit_tokens(scores, tokens, valid, editable, uniforms, bounds, rules, strategy.top_k)


@functools.partial(jax.jit, static_argnames=("rules", "top_k"))
def _edit_tokens(scores: Scores, tokens, valid, editable, uniforms, bounds, rules, top_k):
    revises, drops, drops_nan = rules
    revise_from, keep_from, beta = bounds[0], bounds[1], bounds[2]
    lp = scores.target_log_probs
    no = jnp.zeros_like(editable)
    revised = editable & (lp >= revise_from) if revises else no
    if not drops:
        dropped = no
    elif drops_nan:
        dropped = editable & ~revised & ~(lp >= keep_from)
    else:
        dropped = editable & ~revised & (lp < keep_from)
    new = tokens
    if revises:
        top1 = scores.top_log_probs[..., :1]
        cdf = jnp.cumsum(jnp.exp((scores.top_log_probs - top1) / beta), axis=-1)  # W_1..W_k
        in_top = (scores.top_ids == tokens[..., None]).any(-1)
        w_observed = jnp.where(in_top, 0.0, jnp.exp((lp - top1[..., 0]) / beta))
        choice = jnp.sum(cdf <= (uniforms * (cdf[..., -1] + w_observed))[..., None], axis=-1)  # k: observed
        picked = jnp.sum(jnp.where(jnp.arange(top_k) == choice[..., None], scores.top_ids, 0), -1)
        resampled = jnp.where(choice >= top_k, tokens, picked)
        new = jnp.where(revised, resampled, tokens)
    keep = valid & ~dropped
    destination = jnp.where(keep, jnp.cumsum(keep, axis=1) - 1, tokens.shape[1])  # out of range: not written
    rows = jnp.arange(tokens.shape[0])[:, None]
    packed = jnp.zeros_like(tokens).at[rows, destination].set(new, mode="drop").astype(jnp.int32)
    return packed, keep.sum(1), revised, revised & (new != tokens), dropped


def document_uniforms(seed: int, document_index: int, n_tokens: int) -> np.ndarray:
    """The uniforms u_t of one document: a function of (seed, document index) only, so a document's
    edit does not depend on the batch it is edited in, and a resumed run repeats it exactly."""
    return np.random.default_rng([seed, document_index]).random(n_tokens, dtype=np.float32)


def edit_reference(scores: Scores, tokens, editable, uniforms, strategy: EditStrategy) -> list[int]:
    """One document edited token by token, following the official script: for every scored token a dict
    of candidate log-probs (top-k, then the observed token), p = exp(log p) in float64 tested with
    p > up, then p < low (filtering: kept iff p >= low); a revised token is drawn from the float64
    softmax(log p / beta) by inverse CDF with its uniform (``np.random.choice``'s rule). Returns the
    edited token list; a token that is not ``editable`` is kept as it is."""
    out = []
    for t, token in enumerate(int(x) for x in tokens):
        if not editable[t]:
            out.append(token)
            continue
        candidates = {int(c): float(lp) for c, lp in zip(scores.top_ids[t], scores.top_log_probs[t])}
        candidates.setdefault(token, float(scores.target_log_probs[t]))
        p = np.exp(candidates[token])
        if strategy.up_threshold is not None and p > strategy.up_threshold:
            log_p = np.array(list(candidates.values())) / strategy.beta
            probs = np.exp(log_p - log_p.max())
            cdf = np.cumsum(probs / probs.sum())
            pick = min(int(np.searchsorted(cdf / cdf[-1], float(uniforms[t]), side="right")), len(cdf) - 1)
            out.append(list(candidates)[pick])
        elif strategy.low_threshold is not None and (
                not p >= strategy.low_threshold if strategy.drops_nan else p < strategy.low_threshold):
            continue
        else:
            out.append(token)
    return out
