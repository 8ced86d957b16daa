"""Edit operators: the proposal Ytilde_n that edited positions take, Y_n = M_n Ytilde_n + (I - M_n) Y_{n-1}.

Each operator maps ``(X, Y_prev, w_prev, noise)`` with ``noise = E_n ~ N(0, sigma^2 I)`` to Ytilde_n.
"""

from __future__ import annotations

from typing import Callable

import jax


def resample(X: jax.Array, Y_prev: jax.Array, w_prev: jax.Array, noise: jax.Array) -> jax.Array:
    """Ytilde_n = X w_{n-1} + E_n: the current model's own sample (what ToEdit does to a token)."""
    return X @ w_prev + noise


def perturb(X: jax.Array, Y_prev: jax.Array, w_prev: jax.Array, noise: jax.Array) -> jax.Array:
    """Ytilde_n = Y_{n-1} + E_n: a local perturbation of the current label."""
    return Y_prev + noise


EDIT_OPS: dict[str, Callable[..., jax.Array]] = {"resample": resample, "perturb": perturb}


def apply_edit(m: jax.Array, proposal: jax.Array, Y_prev: jax.Array) -> jax.Array:
    """Y_n = M_n Ytilde_n + (I - M_n) Y_{n-1} with M_n = diag(m)."""
    return m * proposal + (1 - m) * Y_prev
