"""Exact conditional estimator: E[E_test(w_n) | designs, masks] for every regime linear in the noise.

Given the designs and the masks, w_n - w* is a linear map of the Gaussian noise, so its covariance
follows a recursion and the conditional expected test error is a trace; only the designs (and masks)
are sampled, each row of the output being one trial of the simulator with the same keys (trial i
sees the same X_n and M_n as simulator trial i), so Monte Carlo runs over designs only.

* ``replace`` / ``accumulate`` (fixed or fresh design): u_n = w_n - w* = u_{n-1} + J_n E_n with
  J_n = (X_n^T X_n)^{-1} X_n^T (replace) or (sum_{m<=n} X_m^T X_m)^{-1} X_n^T (accumulate: the normal
  equations give G_n u_n = G_{n-1} u_{n-1} + X_n^T X_n u_{n-1} + X_n^T E_n = G_n u_{n-1} + X_n^T E_n), so
  V_n = Cov(u_n) = V_{n-1} + sigma^2 J_n J_n^T and E[E_test | X] = tr(Sigma V_n).
* ``edit`` (fixed design, masks independent of the noise: random, disjoint, file): the residual
  R_n = Y_n - X w* obeys R_n = B_n R_{n-1} + M_n E_n with B_n = I - M_n (I - H) (resample) or I (perturb),
  H = X A, A = (X^T X)^{-1} X^T; so C_n = Cov(R_n) = B_n C_{n-1} B_n^T + sigma^2 M_n^2, C_0 = sigma^2 I, and
  E[E_test | X, M] = tr(Sigma A C_n A^T). (I - H) C is formed as C - X (A C), carrying A C: 3 d T^2 flops
  per generation.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .config import SimConfig
from .design import sample_design
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
                masks = (jnp.broadcast_to(params.masks, (chunk, *params.masks.shape)) if cfg.mask == "file"
                         else _mask_sampler(cfg.mask, cfg.T, cfg.generations)(keys, params))
                run = _edit_program(cfg.T, cfg.d, cfg.generations)
                errors = run(keys, masks, params, cfg.edit_op == "resample")
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


@functools.lru_cache(maxsize=32)
def _mask_sampler(mask: str, T: int, generations: int):
    """Jitted ``(keys [B], params) -> masks [B, generations, T]``: the simulator's schedule with its mask keys
    (the residual argument is unused by noise-independent schedules)."""
    schedule = SCHEDULES[mask]()

    def one(key, params: Params):
        def body(state, g):
            _, _, k_mask, _ = generation_keys(key, g)
            m, state = schedule.sample(state, k_mask, g, jnp.zeros(T, params.sqrt_eig.dtype), params)
            return state, m

        _, masks = jax.lax.scan(body, schedule.init(T), jnp.arange(1, generations + 1))
        return masks

    return jax.jit(jax.vmap(one, in_axes=(0, None)))


def _design(key, n, params: Params, T: int):
    return sample_design(generation_keys(key, n)[0], params.sqrt_eig, T)


@functools.lru_cache(maxsize=32)
def _edit_program(T: int, d: int, generations: int):
    """Jitted ``(keys, masks, params, resample) -> errors [B, G+1]`` via C_n = B_n C_{n-1} B_n^T + sigma^2 M_n^2."""

    def one(key, masks, params: Params, resample):
        eig, var = params.sqrt_eig**2, params.sigma**2
        X = _design(key, 0, params, T)
        A = jnp.linalg.solve(X.T @ X, X.T)

        def error(AC):  # tr(Sigma A C A^T) from A C
            return jnp.sum(eig * jnp.sum(AC * A, axis=1))

        def feedback(C, AC, m):  # B C B^T - C = M P C P M - M P C - C P M, P = I - X A, in 3 d T^2 flops
            PC = C - X @ AC
            PCP = PC - (AC.T - X @ (AC @ A.T)) @ X.T
            MPC = m[:, None] * PC
            return m[:, None] * PCP * m[None, :] - MPC - MPC.T

        def body(carry, m):
            C, AC = carry
            change = jax.lax.cond(resample, feedback, lambda C, AC, m: jnp.zeros_like(C), C, AC, m)
            C = C + change + var * jnp.diag(m * m)
            AC = A @ C
            return (C, AC), error(AC)

        C0 = var * jnp.eye(T, dtype=eig.dtype)
        AC0 = var * A
        _, errors = jax.lax.scan(body, (C0, AC0), masks)
        return jnp.concatenate([error(AC0)[None], errors])

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))


@functools.lru_cache(maxsize=32)
def _retrain_program(T: int, d: int, generations: int):
    """Jitted ``(keys, params, accumulate, fresh) -> errors [B, G+1]`` via V_n = V_{n-1} + sigma^2 J_n J_n^T."""

    def one(key, params: Params, accumulate, fresh):
        eig, var = params.sqrt_eig**2, params.sigma**2
        X0 = _design(key, 0, params, T)

        def increment(X, gram):  # J J^T with J = gram^{-1} X^T
            J = jnp.linalg.solve(gram, X.T)
            return J @ J.T

        def body(carry, g):
            V, gram = carry
            X = jax.lax.cond(fresh, lambda: _design(key, g, params, T), lambda: X0)
            gram = jnp.where(accumulate, gram, 0.0) + X.T @ X
            V = V + var * increment(X, gram)
            return (V, gram), jnp.sum(eig * jnp.diag(V))

        gram0 = X0.T @ X0
        V0 = var * increment(X0, gram0)
        _, errors = jax.lax.scan(body, (V0, gram0), jnp.arange(1, generations + 1))
        return jnp.concatenate([jnp.sum(eig * jnp.diag(V0))[None], errors])

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))
