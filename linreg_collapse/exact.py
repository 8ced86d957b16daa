"""Exact conditional estimator: E[E_test(w_n) | designs, masks] for every regime linear in the noise.

Given the designs and the masks, w_n - w* is an affine map of the Gaussian noise, so its mean and
covariance follow recursions and the conditional expected test error is mu^T Sigma mu + tr(Sigma V);
only the designs (and masks) are sampled, each row of the output being one trial of the simulator with
the same keys (trial i sees the same X_n and M_n as simulator trial i), so Monte Carlo runs over designs
only. Every fit is w = A(X) Y with the estimator's linear map A(X) = (X^T X + ridge N I)^{-1} X^T (the
minimum-norm X^+ at ridge 0, T < d; :meth:`~linreg_collapse.design.Estimator.linear_map`); S = A X.

* ``replace`` / ``accumulate`` (fixed or fresh design): u_n = w_n - w* = F_n u_{n-1} + (F_n - I) w* + J_n E_n
  (u_{-1} = 0) with F_n = S_n, J_n = A_n (replace); for accumulate the normal equations over the pool,
  R_n w_n = R_{n-1} w_{n-1} + X_n^T X_n w_{n-1} + X_n^T E_n with R_n = sum_{m<=n} X_m^T X_m + ridge (n+1) T I,
  give F_n = I - ridge T R_n^{-1}, J_n = R_n^{-1} X_n^T (fixed design: F_n = I - (I - S)/(n+1), J_n = A/(n+1);
  generation 0 is one fit, F_0 = S_0). So mu_n = F_n mu_{n-1} + (F_n - I) w*, V_n = F_n V_{n-1} F_n^T +
  sigma^2 J_n J_n^T, and E[E_test | X] = mu_n^T Sigma mu_n + tr(Sigma V_n). For OLS F_n = I and mu_n = 0.
* ``edit`` (fixed design, masks independent of the noise: random, disjoint, file): the residual
  R_n = Y_n - X w* obeys R_n = B_n R_{n-1} - M_n b + M_n E_n with B_n = I - M_n (I - H) and b = X (I - S) w*
  (resample) or B_n = I, b = 0 (perturb), H = X A; so its mean m_n = B_n m_{n-1} - M_n b (m_0 = 0) and
  C_n = Cov(R_n) = B_n C_{n-1} B_n^T + sigma^2 M_n^2, C_0 = sigma^2 I, and E[E_test | X, M] =
  ||A m_n - (I - S) w*||^2_Sigma + tr(Sigma A C_n A^T) (b = 0 for OLS, where S = I). (I - H) C is formed
  as C - X (A C), carrying A C: 3 d T^2 flops per generation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .config import SimConfig
from .design import estimator, sample_design
from .errors import require
from .masks import SCHEDULES
from .regimes import Params, generation_keys
from .simulate import make_params, trial_keys

MAX_CHUNK = 1024
COVARIANCE_BYTES = 4 * 2**20  # [chunk, T, T] covariances of one edit chunk: small enough to stay in cache


def supports(cfg: SimConfig) -> bool:
    """Whether the error is linear in the noise given designs and masks (threshold masks depend on the
    noise; accumulate-subsample is not implemented)."""
    return cfg.regime in ("replace", "accumulate") or (cfg.regime == "edit" and cfg.mask != "threshold")


def conditional_errors(cfg: SimConfig) -> np.ndarray:
    """E[E_test(w_n) | X, M] for n = 0..cfg.generations, shape [cfg.trials, generations + 1], float64.

    ``cfg.trials`` designs (with their masks) are sampled exactly as the simulator samples them.
    """
    require(supports(cfg), f"the exact estimator needs noise-independent masks and regime replace, accumulate "
                           f"or edit (got regime={cfg.regime!r}, mask={cfg.mask!r})")
    chunk = min(cfg.trials, chunk_size(cfg))
    out = []
    with jax.enable_x64(cfg.dtype == "float64"):
        params = make_params(cfg)
        for start in range(0, cfg.trials, chunk):
            keys = trial_keys(cfg.seed, start, chunk)
            if cfg.regime == "edit":
                # file masks are passed as an argument, params keeping the empty mask table, and replace the
                # drawn ones: file masks and random masks of one shape share one program
                run = _edit_program(cfg.T, cfg.d, cfg.generations, "random" if cfg.mask == "file" else cfg.mask)
                given = (params.masks if cfg.mask == "file"
                         else np.zeros((cfg.generations, cfg.T), params.masks.dtype))
                errors = run(keys, given, params._replace(masks=params.masks[:0]), cfg.edit_op == "resample",
                             cfg.mask == "file")
            else:
                run = _retrain_program(cfg.T, cfg.d, cfg.generations)
                errors = run(keys, params, cfg.regime == "accumulate", cfg.design == "fresh")
            out.append(np.asarray(errors, np.float64))
    return np.concatenate(out)[: cfg.trials]


def chunk_size(cfg: SimConfig) -> int:
    """Designs per compiled call: MAX_CHUNK, fewer for edit where each design holds a T x T covariance."""
    if cfg.regime != "edit":
        return MAX_CHUNK
    return int(np.clip(COVARIANCE_BYTES // (8 * cfg.T * cfg.T), 16, MAX_CHUNK))


def _drawn_masks(key, params: Params, mask: str, T: int, generations: int):
    """[generations, T]: the simulator's ``mask`` schedule with its mask keys (the residual argument is
    unused by noise-independent schedules)."""
    schedule = SCHEDULES[mask]()

    def body(state, g):
        _, _, k_mask, _ = generation_keys(key, g)
        m, state = schedule.sample(state, k_mask, g, jnp.zeros(T, params.sqrt_eig.dtype), params)
        return state, m

    _, masks = jax.lax.scan(body, schedule.init(T), jnp.arange(1, generations + 1))
    return masks


def _design(key, n, params: Params, T: int):
    return sample_design(generation_keys(key, n)[0], params.sqrt_eig, T)


@functools.lru_cache(maxsize=32)
def _edit_program(T: int, d: int, generations: int, mask: str):
    """Jitted ``(keys, given [G, T], params, resample, use_given) -> errors [B, G+1]`` via
    C_n = B_n C_{n-1} B_n^T + sigma^2 M_n^2 and m_n = B_n m_{n-1} - M_n b, with the masks drawn by the
    ``mask`` schedule in the same program or, when ``use_given``, the ``given`` ones (file masks)."""

    def one(key, given, params: Params, resample, use_given):
        masks = jnp.where(use_given, given, _drawn_masks(key, params, mask, T, generations))
        eig, var = params.sqrt_eig**2, params.sigma**2
        X = _design(key, 0, params, T)
        A = estimator(T, d).linear_map(X, params.ridge * T)
        shrunk = params.w_star - A @ (X @ params.w_star)  # (I - S) w*
        b = jnp.where(resample, X @ shrunk, 0.0)

        def error(AC, m):  # ||A m - (I - S) w*||^2_Sigma + tr(Sigma A C A^T) from A C
            return jnp.sum(eig * (A @ m - shrunk) ** 2) + jnp.sum(eig * jnp.sum(AC * A, axis=1))

        def feedback(C, AC, m):  # B C B^T - C = M P C P M - M P C - C P M, P = I - X A, in 3 d T^2 flops
            PC = C - X @ AC
            PCP = PC - (AC.T - X @ (AC @ A.T)) @ X.T
            MPC = m[:, None] * PC
            return m[:, None] * PCP * m[None, :] - MPC - MPC.T

        def body(carry, m):
            C, AC, mean = carry
            change = jax.lax.cond(resample, feedback, lambda C, AC, m: jnp.zeros_like(C), C, AC, m)
            C = C + change + var * jnp.diag(m * m)
            AC = A @ C
            mean = mean - jnp.where(resample, m * (mean - X @ (A @ mean)), 0.0) - m * b
            return (C, AC, mean), error(AC, mean)

        C0 = var * jnp.eye(T, dtype=eig.dtype)
        AC0 = var * A
        mean0 = jnp.zeros(T, eig.dtype)
        _, errors = jax.lax.scan(body, (C0, AC0, mean0), masks)
        return jnp.concatenate([error(AC0, mean0)[None], errors])

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None, None)))


@functools.lru_cache(maxsize=32)
def _retrain_program(T: int, d: int, generations: int):
    """Jitted ``(keys, params, accumulate, fresh) -> errors [B, G+1]`` via mu_n = F_n mu_{n-1} + (F_n - I) w*
    and V_n = F_n V_{n-1} F_n^T + sigma^2 J_n J_n^T; ``accumulate`` and ``fresh`` are traced flags (one
    compiled program for replace and accumulate, fixed and fresh design; only the chosen branch runs)."""
    est = estimator(T, d)
    eye = np.eye(d)

    def one(key, params: Params, accumulate, fresh):
        eig, var = params.sqrt_eig**2, params.sigma**2
        X0 = _design(key, 0, params, T)
        A0 = est.linear_map(X0, params.ridge * T)
        S0 = A0 @ X0

        def advance(mean, V, F, J):
            return F @ mean + (F - eye) @ params.w_star, F @ V @ F.T + var * J @ J.T

        def error(mean, V):
            return jnp.sum(eig * mean**2) + jnp.sum(eig * jnp.diag(V))

        def pooled_fresh(X, g, gram):
            gram = gram + X.T @ X
            solved = jnp.linalg.solve(gram + params.ridge * (g + 1) * T * eye, jnp.concatenate([X.T, eye], 1))
            return eye - params.ridge * T * solved[:, T:], solved[:, :T], gram

        def pooled_fixed(X, g, gram):
            return eye - (eye - S0) / (g + 1), A0 / (g + 1), gram

        def refit(X, g, gram):
            A = jax.lax.cond(fresh, lambda: est.linear_map(X, params.ridge * T), lambda: A0)
            return A @ X, A, gram

        branch = jnp.where(accumulate, jnp.where(fresh, 0, 1), 2)

        def body(carry, g):
            mean, V, gram = carry
            X = jax.lax.cond(fresh, lambda: _design(key, g, params, T), lambda: X0)
            F, J, gram = jax.lax.switch(branch, (pooled_fresh, pooled_fixed, refit), X, g, gram)
            mean, V = advance(mean, V, F, J)
            return (mean, V, gram), error(mean, V)

        mean0, V0 = advance(jnp.zeros(d, eig.dtype), jnp.zeros((d, d), eig.dtype), S0, A0)
        _, errors = jax.lax.scan(body, (mean0, V0, X0.T @ X0), jnp.arange(1, generations + 1))
        return jnp.concatenate([error(mean0, V0)[None], errors])

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))
