"""Mask schedules: how the diagonal editing matrix M_n is chosen each generation.

A schedule is a pair of pure functions ``(init, sample)``:

* ``init(T) -> mask_state``
* ``sample(mask_state, key, n, residual, params) -> (m, mask_state)`` with ``m`` the diagonal of
  M_n (entries in [0, 1]; 1 = this position is edited), ``n >= 1`` the generation being built and
  ``residual = Y_{n-1} - X w_{n-1}`` the current data's residuals under the current model.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class MaskSchedule(NamedTuple):
    init: Callable[[int], Any]
    sample: Callable[..., tuple[jax.Array, Any]]


KEY_BITS = 32


def select_uniform(key: jax.Array, available: jax.Array, k: jax.Array) -> jax.Array:
    """Boolean mask of exactly min(k, #available) positions drawn uniformly without replacement among
    ``available``, in O(T) per draw (no sort).

    Each position gets a random 32-bit key; the chosen ones are the k smallest available keys (ties,
    of probability ~T/2^32 at the boundary, broken by position). The k-th smallest key v is found by a
    bitwise binary search, v = min{u : #{available t : key_t <= u} >= k}, one counting pass per bit.
    """
    # Unavailable positions get the largest key; the search never counts it (every candidate below is
    # smaller than 2^32 - 1), so it needs no availability test per pass.
    keys = jnp.where(available, jax.random.bits(key, available.shape, jnp.uint32), jnp.uint32(2**KEY_BITS - 1))
    k = jnp.asarray(k).astype(jnp.int32)

    def refine(b, v):  # decide bit (KEY_BITS - 1 - b) of v
        bit = jnp.left_shift(jnp.uint32(1), (KEY_BITS - 1 - b).astype(jnp.uint32))
        at_most = jnp.sum(keys <= (v | (bit - 1)), dtype=jnp.int32)
        return jnp.where(at_most >= k, v, v | bit)

    v = jax.lax.fori_loop(0, KEY_BITS, refine, jnp.uint32(0))
    below = available & (keys < v)
    ties = available & (keys == v)
    return below | (ties & (jnp.cumsum(ties, dtype=jnp.int32) <= k - jnp.sum(below, dtype=jnp.int32)))


def random_schedule() -> MaskSchedule:
    """Exactly k = round(p T) positions, uniformly without replacement, drawn afresh each generation."""

    def init(T):
        return ()

    def sample(state, key, n, residual, params):
        T = residual.shape[0]
        k = jnp.round(params.edit_fraction * T)
        return select_uniform(key, jnp.ones(T, dtype=bool), k).astype(residual.dtype), state

    return MaskSchedule(init, sample)


def disjoint_schedule() -> MaskSchedule:
    """k_n = round(T p eta^(n-1)) positions never edited before; none once all have been edited.

    Each position is edited at most once, so the realised fractions satisfy sum_n p_n <= 1.
    """

    def init(T):
        return jnp.zeros(T, dtype=bool)

    def sample(edited, key, n, residual, params):
        T = residual.shape[0]
        k = jnp.round(T * params.edit_fraction * params.decay ** (n - 1))
        m = select_uniform(key, ~edited, k)
        return m.astype(residual.dtype), edited | m

    return MaskSchedule(init, sample)


def threshold_schedule() -> MaskSchedule:
    """Edit position t iff |Y_{n-1,t} - x_t^T w_{n-1}| <= tau sigma: the linear analogue of ToEdit's
    "edit only the tokens the model is sure of" (small residual = the model already predicts it)."""

    def init(T):
        return ()

    def sample(state, key, n, residual, params):
        m = jnp.abs(residual) <= params.threshold * params.sigma
        return m.astype(residual.dtype), state

    return MaskSchedule(init, sample)


def file_schedule() -> MaskSchedule:
    """User masks: row n-1 of ``params.masks`` (shape [generations, T], entries in [0, 1]; soft edits allowed)."""

    def init(T):
        return ()

    def sample(state, key, n, residual, params):
        return params.masks[n - 1].astype(residual.dtype), state

    return MaskSchedule(init, sample)


SCHEDULES: dict[str, Callable[[], MaskSchedule]] = {
    "random": random_schedule,
    "disjoint": disjoint_schedule,
    "threshold": threshold_schedule,
    "file": file_schedule,
}
