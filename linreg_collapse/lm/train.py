"""Training (optax AdamW, jitted step), scoring and sampling for the transformer of :mod:`.model`.

Every function that runs the model over a corpus pads it to whole batches of a fixed size, so each
jitted function compiles once per (model config, batch size) in a process, whatever the corpus size.
"""

from __future__ import annotations

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import require
from ..jax_setup import unroll_threefry_on_cpu
from ..progress import track
from .data import BOS, Corpus
from .model import ModelConfig, Transformer

unroll_threefry_on_cpu()  # the same draws, faster (jax_setup)

NEWLINE = ord("\n")  # ends a document of the built-in source and of a sampled one


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    weight_decay: float = 0.1
    grad_clip: float = 1.0

    def __post_init__(self):
        require(self.steps > 0, f"training steps {self.steps} must be positive")
        require(0 <= self.warmup_steps < self.steps, f"warm-up steps {self.warmup_steps} must be in [0, {self.steps})")


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Clip the global gradient norm, then AdamW with linear warm-up and cosine decay to lr/10;
    weight decay on matrices only (not on LayerNorm gains and biases)."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, config.learning_rate, config.warmup_steps, config.steps, config.learning_rate / 10
    )
    decay_mask = lambda params: jax.tree_util.tree_map(lambda x: x.ndim >= 2, params)  # noqa: E731
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(schedule, b1=0.9, b2=0.99, weight_decay=config.weight_decay, mask=decay_mask),
    )


def masked_cross_entropy(model: Transformer, rows, mask):
    """Mean over real targets of -log p(row[t+1] | row[:t+1])."""
    losses = optax.softmax_cross_entropy_with_integer_labels(model(rows[:, :-1]), rows[:, 1:])
    return (losses * mask).sum() / jnp.maximum(mask.sum(), 1)


@functools.lru_cache(maxsize=None)
def _train_step(config: TrainConfig):
    optimizer = make_optimizer(config)

    @eqx.filter_jit
    def step(model, opt_state, rows, mask):
        loss, grads = eqx.filter_value_and_grad(masked_cross_entropy)(model, rows, mask)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return optimizer, step


def train(model_config: ModelConfig, corpus: Corpus, config: TrainConfig, seed: int, progress=False, desc="train"):
    """Train a fresh model for ``config.steps`` steps on batches drawn uniformly (with replacement) from
    the corpus rows. Deterministic in ``seed``. Returns (model, per-step losses)."""
    optimizer, step = _train_step(config)
    model = Transformer(model_config, jax.random.PRNGKey(seed))
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    rng = np.random.default_rng(seed)
    mask = corpus.target_mask.astype(np.float32)
    losses = []
    for _ in track(range(config.steps), desc, "step", enabled=progress):
        index = rng.integers(0, len(corpus), config.batch_size)
        model, opt_state, loss = step(model, opt_state, corpus.rows[index], mask[index])
        losses.append(loss)
    return model, np.asarray(jax.device_get(losses), dtype=float)


def map_batches(fn, arrays, batch_size: int):
    """Apply ``fn`` to consecutive slices of ``batch_size`` rows of ``arrays`` (the last one zero-padded
    to full size, so ``fn`` compiles once) and concatenate each output along axis 0."""
    n = len(arrays[0])
    outputs = []
    for start in range(0, n, batch_size):
        chunk = [a[start : start + batch_size] for a in arrays]
        pad = batch_size - len(chunk[0])
        chunk = [np.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) for a in chunk]
        outputs.append([np.asarray(o)[: batch_size - pad] for o in jax.device_get(fn(*chunk))])
    return [np.concatenate(parts) for parts in zip(*outputs)]


@eqx.filter_jit
def _log_probs(model, rows):
    return jax.nn.log_softmax(model(rows[:, :-1]), axis=-1)


@eqx.filter_jit
def _target_log_probs(model, rows):
    log_probs = jax.nn.log_softmax(model(rows[:, :-1]), axis=-1)
    return (jnp.take_along_axis(log_probs, rows[:, 1:, None], axis=-1)[..., 0],)


def log_probs(model: Transformer, corpus: Corpus, batch_size=256) -> np.ndarray:
    """Full next-token log-probabilities of every real target, (n_targets, V), in target-mask order."""
    (out,) = map_batches(lambda rows: (_log_probs(model, rows),), [corpus.rows], batch_size)
    return out[corpus.target_mask]


def target_log_probs(model: Transformer, corpus: Corpus, batch_size=256) -> np.ndarray:
    """log p(target) for every position, (n_rows, block_size); meaningful where ``corpus.target_mask``."""
    (out,) = map_batches(lambda rows: _target_log_probs(model, rows), [corpus.rows], batch_size)
    return out


def document_perplexities(model: Transformer, corpus: Corpus, batch_size=256) -> np.ndarray:
    """exp(mean negative log-likelihood of a document's tokens), one per document."""
    mask = corpus.target_mask
    nll = -(target_log_probs(model, corpus, batch_size) * mask).sum(1)
    return np.exp(np.bincount(corpus.doc_ids, nll) / np.bincount(corpus.doc_ids, mask.sum(1)))


@eqx.filter_jit
def _sample_rows(model: Transformer, key, batch: int):
    """Ancestral sampling at temperature 1 from BOS for block_size positions (BOS itself never sampled)."""

    def one_position(carry, position):
        token, cache, key = carry
        key, sub = jax.random.split(key)
        logits, cache = model.decode_step(token, position, cache)
        token = jax.random.categorical(sub, logits.at[:, BOS].set(-jnp.inf))
        return (token, cache, key), token

    start = jnp.full((batch,), BOS, jnp.int32)
    positions = jnp.arange(model.config.block_size)
    _, tokens = jax.lax.scan(one_position, (start, model.init_cache(batch), key), positions)
    return tokens.T


def sample_corpus(model: Transformer, n_docs: int, seed: int, batch_size=256) -> Corpus:
    """``n_docs`` documents sampled from the model, each ending at its first newline (kept) or at
    block_size bytes. Deterministic in ``seed``."""
    key = jax.random.PRNGKey(seed)
    batches = []
    for start in range(0, n_docs, batch_size):
        batches.append(np.asarray(_sample_rows(model, jax.random.fold_in(key, start), batch_size)))
    sampled = np.concatenate(batches)[:n_docs]
    block = sampled.shape[1]
    is_end = sampled == NEWLINE
    lengths = np.where(is_end.any(1), is_end.argmax(1) + 1, block) + 1  # + 1 for BOS
    rows = np.concatenate([np.full((n_docs, 1), BOS), sampled], axis=1).astype(np.int32)
    rows[np.arange(block + 1)[None, :] >= lengths[:, None]] = 0
    return Corpus(rows, lengths.astype(np.int32), np.arange(n_docs, dtype=np.int32))
