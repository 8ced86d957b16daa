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


def sample_gram_cholesky(key: jax.Array, sqrt_eig: jax.Array, T: int) -> jax.Array:
    """The Cholesky factor L of X^T X for a fresh design X (T rows N(0, Sigma)), without drawing X.

    Bartlett decomposition: X^T X ~ Wishart_d(Sigma, T) has the law of Sigma^{1/2} A A^T Sigma^{1/2}
    with A lower triangular, A_ii = sqrt(chi^2_{T-i}) (i = 0..d-1), A_ij ~ N(0, 1) for i > j, all
    independent. Sigma is diagonal, so L = diag(sqrt_eig) A is lower triangular with a positive diagonal:
    d chi-squares and d(d-1)/2 normals instead of T d normals, and no factorisation.
    """
    d = sqrt_eig.shape[0]
    k_diag, k_below = jax.random.split(key)
    count = d * (d - 1) // 2
    lower = np.tri(d, k=-1, dtype=bool)
    position = np.where(lower, np.cumsum(lower).reshape(d, d) - 1, count)  # A_ij's normal, row by row; else a 0
    below = jnp.append(jax.random.normal(k_below, (count,), dtype=sqrt_eig.dtype), 0.0)
    diag = jnp.sqrt(jax.random.chisquare(k_diag, T - np.arange(d), dtype=sqrt_eig.dtype))
    A = below[position] + jnp.diag(diag)
    return sqrt_eig[:, None] * A


def sample_without_replacement(key: jax.Array, population: jax.Array, k: int) -> jax.Array:
    """k distinct indices, uniform among the k-subsets of {0, ..., population - 1} (population >= k,
    may be traced), in O(k^2) compares and no sort, whatever the population.

    Floyd's algorithm: for i = 0..k-1 with j_i = population - k + i, draw r_i uniform on {0..j_i} and
    pick r_i, or j_i if r_i was picked before. The r_i are drawn at once and the sequential test is
    resolved without a loop: r_i was picked before iff it equals an earlier r_m, or r_i = j_m for an
    earlier step m that itself collided (picks before step i are all < j_i). That second case chains to a
    strictly earlier step; the chains are followed by pointer jumping, ceil(log2 k) gathers.
    """
    step = jnp.arange(k)
    last = population - k + step  # j_i
    r = jax.random.randint(key, (k,), 0, last + 1, dtype=jnp.int32)
    repeated = jnp.any((r[:, None] == r[None, :]) & (step[None, :] < step[:, None]), axis=1)
    earlier = r - (population - k)  # m with r_i = j_m
    follows = ~repeated & (earlier >= 0) & (earlier < step)
    root = jnp.where(follows, earlier, step)
    for _ in range((k - 1).bit_length()):
        root = root[root]
    return jnp.where(repeated[root], last, r)
