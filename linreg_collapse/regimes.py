"""Retraining regimes, each an ``(init, step)`` pair of pure functions on a :class:`RetrainState`.

* ``init(key, params) -> state``: generation 0, the fit on real data Y_0 = X_0 w* + E_0 (or, for a regime
  whose ``real_data_is_a_step``, the state before it, from which ``step`` builds generation 0).
* ``step(state, key, params) -> (state, edit_fraction)``: build generation n's data from generation
  n-1's model and refit. ``key`` is the trial's key; per-generation keys come from
  :func:`generation_keys`, with the same split for every regime, so regimes that should agree draw for
  draw (``edit`` with M = I and ``replace``) see the same noise.

Every fit is the ridge / minimum-norm / OLS estimator of :mod:`.design` with ``params.ridge`` times the
number of samples fitted on (T; (n + 1) T for accumulate, which fits on the whole pool). Synthetic data
enters through one data step (:class:`Data`) whose ``sampler`` draws every label (``labels``) or, for OLS
fits of replace and accumulate, X^T X and X^T Y from their exact law (``stats``).

Regimes (n >= 1, X_n the design of generation n):

* ``replace``: Y_n = X_n w_{n-1} + E_n, fit on (X_n, Y_n).
* ``accumulate``: the same data, fit on D_0 + ... + D_n through the sufficient statistics
  sum_k X_k^T X_k and sum_k X_k^T Y_k (no growing arrays).
* ``accumulate-subsample``: the same data, fit on T points drawn without replacement from the pool
  D_0 + ... + D_n.
* ``edit``: Y_n = M_n Ytilde_n + (I - M_n) Y_{n-1} on the fixed design (see :mod:`.edits`, :mod:`.masks`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from .design import (Estimator, estimator, sample_design, sample_gram_cholesky, sample_without_replacement,
                     shifted_cholesky, weighted_dual_fit, weighted_primal_fit)
from .edits import EDIT_OPS, apply_edit
from .masks import SCHEDULES


class Params(NamedTuple):
    """Traced (non-static) inputs of a run: changing them does not recompile."""

    w_star: jax.Array  # [d] true weights
    sqrt_eig: jax.Array  # [d] square roots of Sigma's eigenvalues
    sigma: jax.Array  # label-noise standard deviation
    edit_fraction: jax.Array  # p
    decay: jax.Array  # eta
    threshold: jax.Array  # tau
    masks: jax.Array  # [generations, T] user masks (mask="file"), else [0, T]
    ridge: jax.Array  # lambda >= 0: the penalty is lambda x (samples fitted on) x ||w||^2


class RetrainState(NamedTuple):
    """The model of generation ``n`` and the training set it was fit on."""

    n: jax.Array  # generation index of w
    X: jax.Array  # [T, d] design of the current training set (() under the stats sampler)
    chol: jax.Array  # Cholesky factor the regime solves with ([d, d] primal, [T, T] dual; see Estimator)
    Y: jax.Array  # [T] labels of the current training set (() under the stats sampler)
    w: jax.Array  # [d] current model w_n
    aux: Any  # regime-specific state (sufficient statistics, pool, mask state)


class Regime(NamedTuple):
    """``init`` returns generation 0's state, and the simulator's scan steps to generations 1..G; or, when
    ``real_data_is_a_step``, the state before generation 0 (n = -1, w = w*), and the scan steps to 0..G."""

    init: Callable[[jax.Array, Params], RetrainState]
    step: Callable[[RetrainState, jax.Array, Params], tuple[RetrainState, jax.Array]]
    real_data_is_a_step: bool = False


def generation_keys(trial_key: jax.Array, n) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Keys of generation n of a trial: (design, noise, mask, subsample)."""
    k_design, k_noise, k_mask, k_pool = jax.random.split(jax.random.fold_in(trial_key, n), 4)
    return k_design, k_noise, k_mask, k_pool


def _noise(key, params: Params, T: int) -> jax.Array:
    return params.sigma * jax.random.normal(key, (T,), dtype=params.sqrt_eig.dtype)


class Data(NamedTuple):
    """One generation's training data as the fit sees it: the fit's factor (see Estimator) and the statistic
    labels enter through (X^T Y primal, Y dual).

    Under the ``labels`` sampler X and Y are drawn and kept. The ``stats`` sampler (OLS fits only, where the
    factor is the Gram factor L, X^T X = L L^T) draws X^T Y from its exact law given X and keeps neither X
    nor Y (both are then ``()``)."""

    X: Any
    Y: Any
    chol: jax.Array
    stat: jax.Array


def _design(key, params: Params, T: int, est: Estimator, sampler: str, fresh: bool):
    """(X, factor) of a new Gaussian design. Labels: X drawn and factorised (shift ridge T). Stats: X = ();
    a design drawn anew each generation (``fresh``) has L drawn directly from the Wishart law of X^T X
    (:func:`~linreg_collapse.design.sample_gram_cholesky`), a fixed one is drawn once as X and factorised."""
    if sampler == "stats" and fresh:
        return (), sample_gram_cholesky(key, params.sqrt_eig, T)
    X = sample_design(key, params.sqrt_eig, T)
    return (() if sampler == "stats" else X), est.factor(X, params.ridge * T)


def _labels(key, X, chol, w, params: Params, est: Estimator, sampler: str):
    """(Y, statistic) for Y = X w + E, E ~ N(0, sigma^2 I_T): drawn label by label (labels), or (stats) as
    X^T Y = X^T X w + X^T E with X^T E ~ N(0, sigma^2 X^T X) given X, i.e. X^T Y = L (L^T w + sigma z),
    z ~ N(0, I_d): d normals instead of T, Y = ()."""
    if sampler == "stats":
        z = jax.random.normal(key, (chol.shape[0],), dtype=chol.dtype)
        return (), chol @ (chol.T @ w + params.sigma * z)
    Y = X @ w + _noise(key, params, X.shape[0])
    return Y, est.statistic(X, Y)


def _real_data(trial_key, params: Params, T: int, est: Estimator, sampler: str = "labels",
               fresh: bool = False) -> Data:
    """Generation 0: X_0, Y_0 = X_0 w* + E_0."""
    k_design, k_noise, _, _ = generation_keys(trial_key, 0)
    X, chol = _design(k_design, params, T, est, sampler, fresh)
    Y, stat = _labels(k_noise, X, chol, params.w_star, params, est, sampler)
    return Data(X, Y, chol, stat)


def _synthetic_data(state: RetrainState, trial_key, params: Params, T: int, est: Estimator, sampler: str,
                    fresh: bool):
    """Generation n's data from generation n-1's model: X_n (new if ``fresh``, else the current one),
    Y_n = X_n w_{n-1} + E_n. Returns (n, data)."""
    n = state.n + 1
    k_design, k_noise, _, _ = generation_keys(trial_key, n)
    X, chol = _design(k_design, params, T, est, sampler, fresh) if fresh else (state.X, state.chol)
    Y, stat = _labels(k_noise, X, chol, state.w, params, est, sampler)
    return n, Data(X, Y, chol, stat)


def replace_regime(T: int, generations: int, fresh: bool, est: Estimator, sampler: str) -> Regime:
    def init(key, params):
        data = _real_data(key, params, T, est, sampler, fresh)
        return RetrainState(jnp.int32(0), data.X, data.chol, data.Y, est.solve(data.chol, data.X, data.stat), ())

    def step(state, key, params):
        n, data = _synthetic_data(state, key, params, T, est, sampler, fresh)
        return RetrainState(n, data.X, data.chol, data.Y, est.solve(data.chol, data.X, data.stat), ()), jnp.nan

    return Regime(init, step)


def accumulate_regime(T: int, generations: int, fresh: bool, est: Estimator, sampler: str) -> Regime:
    """aux = (sum_k X_k^T X_k, sum_k statistic_k) over generations 0..n; the penalty is ridge (n + 1) T.

    With a fixed design sum_k X_k^T X_k + ridge (n + 1) T I = (n + 1) (X^T X + ridge T I), so
    w_n = est.solve(sum_k statistic_k) / (n + 1) with generation 0's Cholesky factor (primal or dual): no
    Gram matrix is formed or factorised after generation 0. A fresh design is solved in the primal form
    (the pooled d x d Gram plus ridge (n + 1) T I; config requires ridge > 0 or T >= d - 1); under the
    stats sampler X_k^T X_k = L_k L_k^T.
    """

    def gram_of(data: Data):
        return data.chol @ data.chol.T if sampler == "stats" else data.X.T @ data.X

    def init(key, params):
        data = _real_data(key, params, T, est, sampler, fresh)
        w = est.solve(data.chol, data.X, data.stat)
        if not fresh:
            return RetrainState(jnp.int32(0), data.X, data.chol, data.Y, w, ((), data.stat))
        gram = gram_of(data)  # the state keeps the primal factor of later generations (unused by generation 1)
        xty = data.stat if sampler == "stats" else data.X.T @ data.Y
        return RetrainState(jnp.int32(0), data.X, shifted_cholesky(gram, params.ridge * T), data.Y, w, (gram, xty))

    def step(state, key, params):
        n, data = _synthetic_data(state, key, params, T, est, sampler, fresh)
        gram, stat = state.aux
        if fresh:
            gram = gram + gram_of(data)
            stat = stat + (data.stat if sampler == "stats" else data.X.T @ data.Y)
            chol = shifted_cholesky(gram, params.ridge * (n + 1) * T)
            w = Estimator(dual=False).solve(chol, data.X, stat)
        else:
            chol = data.chol
            stat = stat + data.stat
            w = est.solve(chol, data.X, stat) / (n + 1)
        return RetrainState(n, data.X, chol, data.Y, w, (gram, stat)), jnp.nan

    return Regime(init, step)


def accumulate_subsample_regime(T: int, generations: int, fresh: bool, est: Estimator) -> Regime:
    """aux = (pool_X, pool_Y, design, seen): the (generations + 1) T pooled points, filled generation by
    generation; for a fixed design (X, X^T), both formed once (else ()); and the subsample draw's table
    (:func:`~linreg_collapse.design.sample_without_replacement`, stamped with the generation). Labels sampler
    only: the fit uses individual pooled points.

    Generation 0 is a step too (``Regime.real_data_is_a_step``): its data are the real data, Y_0 = X_0 w* + E_0,
    drawn with generation 0's keys, and its subsample is the whole pool of T points. So the program holds one
    copy of the fit and the label draw, not a second one for generation 0 (16% less compile CPU).

    With a fixed design the pool's rows are copies of X, so only the labels are pooled. A subsample of a
    fixed design repeats rows; the fit uses X's rows with their multiplicities and label sums
    (:func:`~linreg_collapse.design.weighted_primal_fit`, :func:`~linreg_collapse.design.weighted_dual_fit`:
    no gathered T x d matrix) and the state keeps the selected rows with chol = their factor in that grouping.
    """
    pool_size = (generations + 1) * T

    def init(key, params):
        """The state before generation 0: the model w*, an empty pool, a fixed design drawn with generation 0's
        key (a fresh one is drawn by each step)."""
        d, dtype = params.sqrt_eig.shape[0], params.sqrt_eig.dtype
        if fresh:
            design, pool_X = (), jnp.zeros((pool_size, d), dtype)
        else:
            X = sample_design(generation_keys(key, 0)[0], params.sqrt_eig, T)
            design, pool_X = (X, X.T), ()
        aux = (pool_X, jnp.zeros(pool_size, dtype), design, jnp.zeros(pool_size, jnp.int32))
        factor_size = T if est.dual else d
        return RetrainState(jnp.int32(-1), jnp.zeros((T, d), dtype), jnp.zeros((factor_size, factor_size), dtype),
                            jnp.zeros(T, dtype), params.w_star, aux)

    def step(state, key, params):
        pool_X, pool_Y, design, seen = state.aux
        n = state.n + 1
        k_design, k_noise, _, k_pool = generation_keys(key, n)
        X = sample_design(k_design, params.sqrt_eig, T) if fresh else design[0]
        Y, _ = _labels(k_noise, X, (), state.w, params, est, "labels")
        # Written by a scatter, not a dynamic_update_slice: XLA fuses the label draw (or the design's) into an
        # in-place update, which runs on one thread; a scatter takes it from a loop fusion run on every core.
        # The same numbers, 10% less wall time per chunk at T = 100, d = 10 (BENCHMARKS.md, "sixth landing").
        rows = n * T + jnp.arange(T)
        pool_Y = pool_Y.at[rows].set(Y, indices_are_sorted=True, unique_indices=True)
        if fresh:
            pool_X = pool_X.at[rows].set(X, indices_are_sorted=True, unique_indices=True)
        # T of the (n + 1) T filled (all of them at n = 0); stamp n + 1: (n + 1) 2^b < 2^31 (config.validate)
        idx, seen = sample_without_replacement(k_pool, (n + 1) * T, T, seen, n + 1)
        Ys = pool_Y[idx]
        if fresh:
            Xs = pool_X[idx]
            chol_s = est.factor(Xs, params.ridge * T)
            w = est.fit(chol_s, Xs, Ys)
        else:
            design_X, design_Xt = design
            row = jax.lax.rem(idx, jnp.asarray(T, idx.dtype))  # idx >= 0: C remainder, no sign fix-up
            Xs = design_X[row]
            counts = jnp.zeros(T, Ys.dtype).at[row].add(1.0)
            label_sums = jnp.zeros(T, Ys.dtype).at[row].add(Ys)
            if est.dual:
                chol_s, w = weighted_dual_fit(design_X, counts, label_sums, params.ridge * T)
            else:
                chol_s, w = weighted_primal_fit(design_X, design_Xt, counts, label_sums, params.ridge * T)
        return RetrainState(n, Xs, chol_s, Ys, w, (pool_X, pool_Y, design, seen)), jnp.nan

    return Regime(init, step, real_data_is_a_step=True)


def edit_regime(T: int, edit_op: str, mask: str, est: Estimator) -> Regime:
    """Token-level editing on the fixed design: Y_n = M_n Ytilde_n + (I - M_n) Y_{n-1}; aux = mask state.

    The edit fraction reported for generation n is mean(diag M_n).
    """
    propose = EDIT_OPS[edit_op]
    schedule = SCHEDULES[mask]()

    def init(key, params):
        X, Y, chol, stat = _real_data(key, params, T, est)
        return RetrainState(jnp.int32(0), X, chol, Y, est.solve(chol, X, stat), schedule.init(T))

    def step(state, key, params):
        n = state.n + 1
        _, k_noise, k_mask, _ = generation_keys(key, n)
        X, Y_prev, w_prev = state.X, state.Y, state.w
        proposal = propose(X, Y_prev, w_prev, _noise(k_noise, params, T))
        m, mask_state = schedule.sample(state.aux, k_mask, n, Y_prev - X @ w_prev, params)
        Y = apply_edit(m, proposal, Y_prev)
        return RetrainState(n, X, state.chol, Y, est.fit(state.chol, X, Y), mask_state), jnp.mean(m)

    return Regime(init, step)


def make_regime(regime: str, T: int, generations: int, design: str, edit_op: str, mask: str, d: int,
                sampler: str = "labels") -> Regime:
    """The (init, step) pair for a regime name of :data:`linreg_collapse.config.REGIMES` in dimension d;
    ``sampler`` (``labels`` or ``stats``, see :class:`Data`) applies to replace and accumulate, the others
    use labels."""
    est = estimator(T, d)
    if regime == "edit":
        return edit_regime(T, edit_op, mask, est)
    fresh = design == "fresh"
    if regime == "accumulate-subsample":
        return accumulate_subsample_regime(T, generations, fresh, est)
    factory = {"replace": replace_regime, "accumulate": accumulate_regime}[regime]
    return factory(T, generations, fresh, est, sampler)
