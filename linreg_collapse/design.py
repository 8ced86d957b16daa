"""The data model: covariance, ground truth, design sampling, the fit and the test error (the "physics" of
the simulator).

Rows of X are i.i.d. N(0, Sigma) with Sigma = diag(lambda); labels are Y = X w + E, E ~ N(0, sigma^2 I).
Gaussian designs are rotation invariant, so a diagonal Sigma loses no generality.

The fit of every regime is the ridge estimator on the N samples it is fit on,
w = (X^T X + ridge N I)^{-1} X^T Y = X^T (X X^T + ridge N I)^{-1} Y; at ridge = 0 it is OLS for N >= d and the
minimum-norm interpolator X^+ Y for N < d. :class:`Estimator` solves it in the primal (d x d) form when
T >= d and in the dual (T x T) form when T < d, always through a Cholesky factor, never a pseudo-inverse.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax.extend.random import threefry_2x32
from jax.scipy.linalg import cho_solve


def covariance_eigenvalues(cov: str, d: int, alpha: float = 1.0) -> np.ndarray:
    """Eigenvalues of Sigma: ``identity`` gives 1, ``powerlaw`` gives k^-alpha scaled so that trace = d."""
    if cov == "identity":
        return np.ones(d)
    eig = np.arange(1, d + 1, dtype=np.float64) ** (-float(alpha))
    return eig * (d / eig.sum())


def ground_truth(wstar: str, d: int, exponent: float = 1.0) -> np.ndarray:
    """w* in Sigma's eigenbasis with unit norm: ``flat`` gives 1/sqrt(d) each, ``powerlaw`` w*_k ∝ k^(-exponent/2)."""
    if wstar == "flat":
        return np.full(d, 1 / np.sqrt(d))
    w = np.arange(1, d + 1, dtype=np.float64) ** (-float(exponent) / 2)
    return w / np.linalg.norm(w)


def sample_design(key: jax.Array, sqrt_eig: jax.Array, T: int) -> jax.Array:
    """X in R^{T x d} with rows N(0, diag(sqrt_eig^2)).

    Drawn flat and reshaped: the same numbers as a [T, d] draw, but a 2-D draw under vmap compiles
    about twice as slowly (benchmarks/bench_simulator.py)."""
    d = sqrt_eig.shape[0]
    return jax.random.normal(key, (T * d,), dtype=sqrt_eig.dtype).reshape(T, d) * sqrt_eig


def shifted_cholesky(gram: jax.Array, shift) -> jax.Array:
    """Lower Cholesky factor of gram + shift I (shift = 0 adds exact zeros: the OLS factor bit for bit)."""
    return jnp.linalg.cholesky(gram + shift * jnp.eye(gram.shape[0], dtype=gram.dtype))


class Estimator(NamedTuple):
    """The ridge / minimum-norm / OLS fit, in the dual form (``dual``, for T < d) or the primal form.

    A *factor* is the lower Cholesky factor of X^T X + s I (primal) or X X^T + s I (dual), s = ridge N;
    a *statistic* is what labels enter through, X^T Y (primal) or Y (dual), so sums of statistics over
    generations of a fixed design are sufficient (accumulate).
    """

    dual: bool

    def factor(self, X: jax.Array, shift) -> jax.Array:
        """Cholesky factor of the Gram matrix plus ``shift`` I (shift = ridge x samples fitted on)."""
        return shifted_cholesky(X @ X.T if self.dual else X.T @ X, shift)

    def statistic(self, X: jax.Array, Y: jax.Array) -> jax.Array:
        return Y if self.dual else X.T @ Y

    def solve(self, chol: jax.Array, X: jax.Array, stat: jax.Array) -> jax.Array:
        """w = (X^T X + s I)^{-1} stat (primal) or X^T (X X^T + s I)^{-1} stat (dual)."""
        return X.T @ cho_solve((chol, True), stat) if self.dual else cho_solve((chol, True), stat)

    def fit(self, chol: jax.Array, X: jax.Array, Y: jax.Array) -> jax.Array:
        return self.solve(chol, X, self.statistic(X, Y))

    def linear_map(self, X: jax.Array, shift) -> jax.Array:
        """A(X) with w = A Y: (X^T X + s I)^{-1} X^T, formed in the estimator's form ([d, T])."""
        chol = self.factor(X, shift)
        return X.T @ cho_solve((chol, True), jnp.eye(X.shape[0], dtype=X.dtype)) if self.dual \
            else cho_solve((chol, True), X.T)


def weighted_dual_fit(X: jax.Array, counts: jax.Array, label_sums: jax.Array, shift):
    """(factor, w): the fit on a multiset of X's rows (row t taken counts[t] times, its labels summing to label_sums[t]):
    w = X^T D (D X X^T D + shift I)^{-1} D ybar, D = diag(sqrt(counts)), ybar = label_sums / counts.

    Repeated rows make the T x T Gram of the multiset singular; grouping them is exact (the squared loss
    of c copies is c times the loss at their mean label). Rows never taken get a unit diagonal and a
    zero right-hand side, so they drop out; at shift = 0 this is the minimum-norm least-squares fit."""
    root = jnp.sqrt(counts)
    gram = root[:, None] * (X @ X.T) * root[None, :] + jnp.diag((counts == 0).astype(X.dtype))
    rhs = jnp.where(counts > 0, label_sums / jnp.where(counts > 0, root, 1.0), 0.0)
    chol = shifted_cholesky(gram, shift)
    return chol, X.T @ (root * cho_solve((chol, True), rhs))


def weighted_primal_fit(X: jax.Array, Xt: jax.Array, counts: jax.Array, label_sums: jax.Array, shift):
    """(factor, w): the fit on a multiset of X's rows in the primal form (as :func:`weighted_dual_fit`):
    w = (X^T C X + shift I)^{-1} X^T s, C = diag(counts), s = label_sums; the factor is that of
    X^T C X + shift I. ``Xt`` = X^T, formed once by a caller that fits the same X again and again (a
    transpose per call costs as much as the product): the multiset's Gram without gathering its rows."""
    chol = shifted_cholesky((Xt * counts) @ X, shift)
    return chol, cho_solve((chol, True), Xt @ label_sums)


def estimator(T: int, d: int) -> Estimator:
    """The form a fit on T samples in dimension d uses: dual iff T < d."""
    return Estimator(dual=T < d)


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


def _wide_product(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(high, low) 32-bit words of the 64-bit product a b of uint32 arrays, from 16-bit halves (uint32
    arithmetic only, so the same with and without x64)."""
    half = jnp.uint32(0xFFFF)
    a0, a1, b0, b1 = a & half, a >> 16, b & half, b >> 16
    low_low, cross_01, cross_10 = a0 * b0, a0 * b1, a1 * b0
    middle = (low_low >> 16) + (cross_01 & half) + (cross_10 & half)  # < 3 x 2^16: no overflow
    return a1 * b1 + (cross_01 >> 16) + (cross_10 >> 16) + (middle >> 16), (middle << 16) | (low_low & half)


def uniform_below(key: jax.Array, span: jax.Array) -> jax.Array:
    """int32 r_i uniform on {0, ..., span_i - 1} exactly (1 <= span_i < 2^31; span a vector), from one 32-bit
    word x_i each (Threefry-2x32 of the counters 0, 1, ..., two words per block).

    Lemire's multiply-shift with rejection: r = floor(x s / 2^32), rejected iff the low word of x s is
    below 2^32 mod s, which leaves exactly floor(2^32 / s) words x for every r. A low word >= s is never
    rejected (2^32 mod s < s), so the remainder is taken only while some low word is below s (probability
    s / 2^32 each): a second round of the loop, on fresh counters, almost never runs. The first draw is the
    loop's first round, not a draw before it, so the program holds one copy of the hash (a third less
    compile CPU for the simulator's accumulate-subsample program; BENCHMARKS.md, "sixth landing")."""
    span = jnp.asarray(span).astype(jnp.uint32)
    counters = jnp.arange(span.shape[0], dtype=jnp.uint32)
    data = jax.random.key_data(key)

    def draw(round_):
        return _wide_product(threefry_2x32((data[0], data[1]), counters + round_ * span.shape[0]), span)

    def redraw(carry):
        round_, r, low = carry
        rejected = (round_ == 0) | (low < (jnp.uint32(0) - span) % span)  # every word in round 0; 2^32 mod s
        new_r, new_low = draw(round_)
        return round_ + 1, jnp.where(rejected, new_r, r), jnp.where(rejected, new_low, jnp.uint32(0xFFFFFFFF))

    unset = jnp.zeros_like(span)  # a low word 0 < span: the loop runs round 0
    _, r, _ = jax.lax.while_loop(lambda carry: jnp.any(carry[2] < span), redraw, (jnp.uint32(0), unset, unset))
    return r.astype(jnp.int32)


def sample_without_replacement(key: jax.Array, population, k: int, seen: jax.Array,
                               stamp) -> tuple[jax.Array, jax.Array]:
    """(k distinct indices uniform among the k-subsets of {0, ..., population - 1}, ``seen`` updated), in O(k)
    work with no sort. ``population`` (>= k) may be traced, bounded by len(seen).

    ``seen``: int32 scratch of the caller, zeros at first, passed from call to call; ``stamp``: this call's
    number, >= 1 and larger than at every earlier call on ``seen``, with stamp 2^b < 2^31 (2^b >= k).

    Floyd's algorithm: for i = 0..k-1 with j_i = population - k + i, draw r_i uniform on {0..j_i}
    (:func:`uniform_below`) and pick r_i, or j_i if r_i was picked before. The r_i are drawn at once and
    the sequential test is resolved without a loop: r_i was picked before iff it equals an earlier r_m,
    or r_i = j_m for an earlier step m that itself collided (picks before step i are all < j_i). An
    earlier equal r_m is found by one scatter-max of the codes stamp 2^b + (2^b - 1 - i) into ``seen`` at
    r_i: ``seen[r_i]`` is then the code of the first step that drew r_i (codes of earlier calls are
    smaller, so the table is never cleared). The second case chains to a strictly earlier step; the
    chains are followed by pointer jumping until no pointer moves: ceil(log2 L) + 1 gathers for the longest
    chain L, short in practice (at most ceil(log2 k) + 1).
    """
    step = jnp.arange(k, dtype=jnp.int32)
    last = population - k + step  # j_i
    r = uniform_below(key, last + 1)
    bits = max(1, (k - 1).bit_length())  # step < 2^bits
    code = (jnp.asarray(stamp, jnp.int32) << bits) | ((1 << bits) - 1 - step)
    seen = seen.at[r].max(code)
    repeated = seen[r] != code
    earlier = r - (population - k)  # m with r_i = j_m
    follows = ~repeated & (earlier >= 0) & (earlier < step)
    root = jnp.where(follows, earlier, step)

    def jump(carry):
        root, _ = carry
        further = root[root]
        return further, jnp.any(further != root)

    root, _ = jax.lax.while_loop(lambda carry: carry[1], jump, (root, jnp.bool_(True)))
    return jnp.where(repeated[root], last, r), seen
