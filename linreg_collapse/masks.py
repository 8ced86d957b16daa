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


def _uniform_ranks(key: jax.Array, T: int, taken: jax.Array | None = None) -> jax.Array:
    """Uniformly random ranks 0..T-1 of the positions; positions in ``taken`` rank last."""
    u = jax.random.uniform(key, (T,))
    if taken is not None:
        u = jnp.where(taken, 2.0, u)
    return jnp.argsort(jnp.argsort(u))


def random_schedule() -> MaskSchedule:
    """Exactly k = round(p T) positions, uniformly without replacement, drawn afresh each generation."""

    def init(T):
        return ()

    def sample(state, key, n, residual, params):
        T = residual.shape[0]
        k = jnp.round(params.edit_fraction * T)
        return (_uniform_ranks(key, T) < k).astype(residual.dtype), state

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
        m = (_uniform_ranks(key, T, taken=edited) < k) & ~edited
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
