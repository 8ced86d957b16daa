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
LARGEST_KEY = 2**KEY_BITS - 1
INTERPOLATION_PROBES = 16  # then bisection: at most 16 + KEY_BITS counting passes, whatever the keys


def kth_smallest_key(keys: jax.Array, available: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(v, probes): v = min{u : #{available t : key_t <= u} >= k}, the k-th smallest available key (0 for
    k = 0), for 0 <= k <= #available; unavailable positions must hold LARGEST_KEY. ``probes`` = counting
    passes made.

    Safeguarded interpolation search on a bracket a <= v <= b with c_a = #{key < a} < k <= c_b =
    #{available key <= b}: probe g in [a, b) at the fraction (k - c_a - 1/2) / (c_b - c_a) of the bracket,
    count c = #{key <= g} (one pass; g < LARGEST_KEY never counts an unavailable position), keep the side
    holding v. Uniform keys make the count at a probe off by about the square root of the previous
    error, so a few probes suffice (mean about 3.5 and at most 9-10 over 1000 trials at T = 10^4, k = T/10);
    after INTERPOLATION_PROBES probes it bisects (each probe then halves b - a). It stops as soon as v is
    the lowest available key in [a, b] (c_a = k - 1) or the highest (c_b = k, or a = b): one more pass.
    """
    k = jnp.asarray(k).astype(jnp.int32)
    count_available = jnp.sum(available, dtype=jnp.int32)

    def unresolved(bracket):
        a, b, c_a, c_b, probes = bracket
        return (a < b) & (c_a < k - 1) & (c_b > k)

    def probe(bracket):
        a, b, c_a, c_b, probes = bracket
        span = b - a
        fraction = (k - c_a - 0.5).astype(jnp.float32) / (c_b - c_a).astype(jnp.float32)
        offset = jnp.minimum(fraction * span.astype(jnp.float32), jnp.float32(LARGEST_KEY - 255)).astype(jnp.uint32)
        g = a + jnp.where(probes < INTERPOLATION_PROBES, jnp.minimum(offset, span - 1), span // 2)
        c = jnp.sum(keys <= g, dtype=jnp.int32)
        above = c >= k  # v <= g
        return (jnp.where(above, a, g + 1), jnp.where(above, g, b), jnp.where(above, c_a, c),
                jnp.where(above, c, c_b), probes + 1)

    start = (jnp.uint32(0), jnp.where(k > 0, jnp.uint32(LARGEST_KEY), jnp.uint32(0)), jnp.int32(0),
             count_available, jnp.int32(0))
    a, b, c_a, c_b, probes = jax.lax.while_loop(unresolved, probe, start)
    # One pass: the lowest available key in [a, b] is the highest of the complements (~key = LARGEST_KEY - key).
    lowest = c_a == k - 1
    inside = available & (keys >= a) & (keys <= b)
    extreme = jnp.max(jnp.where(inside, jnp.where(lowest, ~keys, keys), jnp.uint32(0)))
    return jnp.where(lowest, ~extreme, extreme), probes


def select_smallest(keys: jax.Array, available: jax.Array, k: jax.Array) -> jax.Array:
    """Boolean mask of the min(k, #available) available positions with the smallest keys, ties broken by
    position (unavailable positions must hold LARGEST_KEY).

    With v the k-th smallest available key (:func:`kth_smallest_key`), these are the available keys <= v,
    less the last (in position order) of those equal to v beyond k: a loop that runs only when another key
    equals v (probability about T / 2^32 per draw), one pass per surplus position.
    """
    k = jnp.clip(jnp.asarray(k).astype(jnp.int32), 0, jnp.sum(available, dtype=jnp.int32))
    v, _ = kth_smallest_key(keys, available, k)
    chosen = available & (keys <= v)
    position = jnp.arange(keys.shape[0], dtype=jnp.int32)

    def drop_last_tie(state):
        chosen, surplus = state
        last = jnp.max(jnp.where(chosen & (keys == v), position, -1))
        return chosen & (position != last), surplus - 1

    chosen, _ = jax.lax.while_loop(lambda state: state[1] > 0, drop_last_tie,
                                   (chosen, jnp.sum(chosen, dtype=jnp.int32) - k))
    return chosen


def select_uniform(key: jax.Array, available: jax.Array, k: jax.Array) -> jax.Array:
    """Boolean mask of exactly min(k, #available) positions drawn uniformly without replacement among
    ``available``, in O(T) per draw (no sort): each position gets a random 32-bit key and the chosen ones
    are the k smallest available keys (:func:`select_smallest`)."""
    keys = jnp.where(available, jax.random.bits(key, available.shape, jnp.uint32), jnp.uint32(LARGEST_KEY))
    return select_smallest(keys, available, k)


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
