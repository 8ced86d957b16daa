"""The data model: covariance, design sampling, OLS and the test error (the "physics" of the simulator).

Rows of X are i.i.d. N(0, Sigma) with Sigma = diag(lambda); labels are Y = X w + E, E ~ N(0, sigma^2 I).
Gaussian designs are rotation invariant, so a diagonal Sigma loses no generality.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve


def covariance_eigenvalues(cov: str, d: int, alpha: float = 1.0) -> np.ndarray:
    """Eigenvalues of Sigma: ``identity`` gives 1, ``powerlaw`` gives k^-alpha scaled so that trace = d."""
    if cov == "identity":
        return np.ones(d)
    eig = np.arange(1, d + 1, dtype=np.float64) ** (-float(alpha))
    return eig * (d / eig.sum())


def sample_design(key: jax.Array, sqrt_eig: jax.Array, T: int) -> jax.Array:
    """X in R^{T x d} with rows N(0, diag(sqrt_eig^2)).

    Drawn flat and reshaped: the same numbers as a [T, d] draw, but a 2-D draw under vmap compiles
    about twice as slowly (benchmarks/bench_simulator.py)."""
    d = sqrt_eig.shape[0]
    return jax.random.normal(key, (T * d,), dtype=sqrt_eig.dtype).reshape(T, d) * sqrt_eig


def gram_cholesky(X: jax.Array) -> jax.Array:
    """Lower Cholesky factor L of the Gram matrix X^T X = L L^T."""
    return jnp.linalg.cholesky(X.T @ X)


def ols(chol: jax.Array, xty: jax.Array) -> jax.Array:
    """Least squares w = (X^T X)^{-1} X^T Y from the Gram factor L and X^T Y."""
    return cho_solve((chol, True), xty)


def test_error(w: jax.Array, w_star: jax.Array, eig: jax.Array) -> jax.Array:
    """E_test(w) = ||w - w*||^2_Sigma = sum_k lambda_k (w_k - w*_k)^2."""
    return jnp.sum(eig * (w - w_star) ** 2)
