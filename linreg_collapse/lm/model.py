"""A small decoder-only transformer (GPT-2 style, pre-LayerNorm) in equinox.

Shapes: B batch, T positions, D model width, H heads, V vocabulary. The model maps input tokens
(B, T) to next-token logits (B, T, V) with a causal mask, and decodes one position at a time with a
key/value cache (used to sample synthetic corpora in O(T) forward steps instead of O(T^2)).

Checkpoints are one file: a JSON header line with the :class:`ModelConfig`, then the parameters
serialised by ``equinox.tree_serialise_leaves``; they are written atomically.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

from ..errors import InputError, require
from ..io import atomic_path


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    block_size: int  # longest input the model sees (positions 0..block_size-1)
    d_model: int
    n_layers: int
    n_heads: int

    def __post_init__(self):
        require(self.d_model % self.n_heads == 0,
                f"d_model={self.d_model} must be a multiple of n_heads={self.n_heads}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def _normal(key, shape, std):
    return std * jax.random.normal(key, shape, dtype=jnp.float32)


class LayerNorm(eqx.Module):
    """(x - mean) / sqrt(var + eps) * gain + bias over the last axis."""

    gain: jax.Array
    bias: jax.Array

    def __init__(self, d: int):
        self.gain, self.bias = jnp.ones(d), jnp.zeros(d)

    def __call__(self, x, eps=1e-5):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + eps) * self.gain + self.bias


class Block(eqx.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x)); the MLP is D -> 4D -> D with GELU."""

    ln1: LayerNorm
    ln2: LayerNorm
    w_qkv: jax.Array  # (D, 3D)
    w_out: jax.Array  # (D, D)
    w_up: jax.Array  # (D, 4D)
    w_down: jax.Array  # (4D, D)
    n_heads: int = eqx.field(static=True)

    def __init__(self, config: ModelConfig, key):
        d = config.d_model
        k1, k2, k3, k4 = jax.random.split(key, 4)
        out_std = 0.02 / math.sqrt(2 * config.n_layers)  # GPT-2: residual projections scaled by depth
        self.ln1, self.ln2 = LayerNorm(d), LayerNorm(d)
        self.w_qkv = _normal(k1, (d, 3 * d), 0.02)
        self.w_out = _normal(k2, (d, d), out_std)
        self.w_up = _normal(k3, (d, 4 * d), 0.02)
        self.w_down = _normal(k4, (4 * d, d), out_std)
        self.n_heads = config.n_heads

    def qkv(self, x):
        """Queries, keys and values, each (B, H, T, D/H)."""
        b, t, d = x.shape
        h = self.ln1(x) @ self.w_qkv
        return [z.reshape(b, t, self.n_heads, d // self.n_heads).transpose(0, 2, 1, 3) for z in jnp.split(h, 3, -1)]

    def finish(self, x, q, k, v, mask):
        """Attention softmax(q k^T / sqrt(D/H) + mask) v over allowed keys, then the MLP; both residual."""
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(q.shape[-1])
        weights = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
        attended = jnp.einsum("bhqk,bhkd->bhqd", weights, v)
        b, _, t, _ = attended.shape
        x = x + attended.transpose(0, 2, 1, 3).reshape(b, t, -1) @ self.w_out
        return x + jax.nn.gelu(self.ln2(x) @ self.w_up) @ self.w_down

    def __call__(self, x):
        q, k, v = self.qkv(x)
        t = x.shape[1]
        return self.finish(x, q, k, v, jnp.tril(jnp.ones((t, t), bool)))


class Transformer(eqx.Module):
    """logits = LN(blocks(E[tokens] + P[positions])) E^T (tied input and output embeddings)."""

    embed: jax.Array  # (V, D)
    pos: jax.Array  # (block_size, D)
    blocks: tuple[Block, ...]
    ln_f: LayerNorm
    config: ModelConfig = eqx.field(static=True)

    def __init__(self, config: ModelConfig, key):
        k_embed, k_pos, *k_blocks = jax.random.split(key, 2 + config.n_layers)
        self.embed = _normal(k_embed, (config.vocab_size, config.d_model), 0.02)
        self.pos = _normal(k_pos, (config.block_size, config.d_model), 0.01)
        self.blocks = tuple(Block(config, k) for k in k_blocks)
        self.ln_f = LayerNorm(config.d_model)
        self.config = config

    def logits(self, x):
        return self.ln_f(x) @ self.embed.T

    def __call__(self, tokens):
        """Next-token logits (B, T, V) for input tokens (B, T), T <= block_size."""
        x = self.embed[tokens] + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.logits(x)

    def init_cache(self, batch: int):
        """Key/value cache: per layer, keys and values of shape (B, H, block_size, D/H)."""
        c = self.config
        shape = (batch, c.n_heads, c.block_size, c.head_dim)
        return tuple((jnp.zeros(shape), jnp.zeros(shape)) for _ in self.blocks)

    def decode_step(self, token, position, cache):
        """Logits (B, V) for the next token after ``token`` (B,) at ``position``; returns the updated cache."""
        x = (self.embed[token] + self.pos[position])[:, None, :]
        visible = (jnp.arange(self.config.block_size) <= position)[None, :]
        new_cache = []
        for block, (keys, values) in zip(self.blocks, cache):
            q, k, v = block.qkv(x)
            keys = jax.lax.dynamic_update_slice_in_dim(keys, k, position, axis=2)
            values = jax.lax.dynamic_update_slice_in_dim(values, v, position, axis=2)
            x = block.finish(x, q, keys, values, visible)
            new_cache.append((keys, values))
        return self.logits(x)[:, 0], tuple(new_cache)


def n_params(model: Transformer) -> int:
    return sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))


def flops_per_token(config: ModelConfig, n_parameters: int) -> float:
    """Training FLOPs per token (PaLM appendix B): 6 N + 12 n_layers D T (attention scores and values)."""
    return 6 * n_parameters + 12 * config.n_layers * config.d_model * config.block_size


def save_checkpoint(path, model: Transformer) -> None:
    """Write the config header line and the parameters to ``path`` atomically."""
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    with atomic_path(path) as tmp:
        tmp.write_bytes(json.dumps(dataclasses.asdict(model.config)).encode() + b"\n" + buffer.getvalue())


def load_checkpoint(path, expected: ModelConfig | None = None) -> Transformer:
    """Read a checkpoint written by :func:`save_checkpoint`; InputError if it is unreadable or its config
    differs from ``expected``."""
    path = Path(path)
    require(path.is_file(), f"checkpoint {path} does not exist")
    header, _, body = path.read_bytes().partition(b"\n")
    try:
        config = ModelConfig(**json.loads(header))
    except (ValueError, TypeError) as err:
        raise InputError(f"checkpoint {path} has no valid model header ({err.__class__.__name__})") from None
    require(expected is None or config == expected,
            f"checkpoint {path} does not match the model: {config} != {expected}")
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(body), Transformer(config, jax.random.PRNGKey(0)))
    except Exception as err:  # equinox/numpy raise various errors on truncated or mismatched data
        raise InputError(f"checkpoint {path} does not match the model {config}: {str(err).splitlines()[0]}") from None
