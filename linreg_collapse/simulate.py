"""The simulator: ``lax.scan`` over generations inside ``vmap`` over trials, one jitted program.

Trial i uses the key ``fold_in(k_trials, i)`` where ``_, k_trials = split(key(seed))``, so a
trial's numbers do not depend on how many trials run beside it. Trials run in chunks of at most
``CHUNK_TRIALS`` (fewer when one trial's state is large; the last chunk padded), which drives the
progress bar, bounds memory, and lets a run resume from a checkpoint of finished chunks.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from tqdm import tqdm

from .config import SimConfig
from .design import covariance_eigenvalues, ground_truth, test_error
from .io import atomic_path
from .regimes import Params, make_regime
from .theory.minnorm import generation0_exact

CHUNK_TRIALS = 1024
CHUNK_BYTES = 512 * 2**20  # memory budget of one chunk's per-trial state


@dataclasses.dataclass(frozen=True)
class SimResult:
    """Per-generation summary of a run (generation 0 = the fit on real data).

    ``errors`` and ``edit_fractions`` hold every trial, shape [trials, generations + 1];
    ``edit_fraction`` is None for regimes that do not edit. ``median``, ``q05``, ``q95``: per-generation
    quantiles across trials (the errors are heavy-tailed near T = d). ``base``: the unit of the printed
    table, see :func:`base_unit`.
    """

    config: SimConfig
    generation: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    edit_fraction: Optional[np.ndarray]
    errors: np.ndarray
    edit_fractions: Optional[np.ndarray]
    median: np.ndarray
    q05: np.ndarray
    q95: np.ndarray

    @property
    def base(self) -> Optional[float]:
        return base_unit(self.config)[0]

    def to_json_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "base": self.base,
            "base_kind": base_unit(self.config)[1],
            "generation": self.generation.tolist(),
            "mean": self.mean.tolist(),
            "stderr": self.stderr.tolist(),
            "ci_low": self.ci_low.tolist(),
            "ci_high": self.ci_high.tolist(),
            "median": self.median.tolist(),
            "q05": self.q05.tolist(),
            "q95": self.q95.tolist(),
            "edit_fraction": None if self.edit_fraction is None else self.edit_fraction.tolist(),
        }


def mean_interval(samples: np.ndarray, level: float = 0.95, axis: int = 0):
    """Mean, standard error and Student-t ``level`` interval of i.i.d. samples along ``axis``."""
    n = samples.shape[axis]
    mean = samples.mean(axis=axis)
    stderr = samples.std(axis=axis, ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.5 + level / 2, df=n - 1) * stderr
    return mean, stderr, mean - half, mean + half


def base_unit(cfg: SimConfig) -> tuple[Optional[float], str]:
    """(value, description) of the unit results are shown in: sigma^2 d/(T-d-1) for OLS, otherwise the exact
    generation-0 theory value where one exists (isotropic minimum-norm), otherwise (None, "absolute")."""
    if cfg.is_ols:
        return cfg.base, "sigma^2 d/(T-d-1), the OLS error of one fit"
    value = generation0_exact(cfg)
    if value is None:
        return None, "absolute (no exact generation-0 value for this estimator and covariance)"
    return value, "the exact generation-0 error (1 - T/d) + sigma^2 T/(d-T-1) of isotropic min-norm"


def make_params(cfg: SimConfig) -> Params:
    """The traced inputs of ``cfg`` (call inside the run's x64 scope so dtypes match)."""
    dtype = jnp.dtype(cfg.dtype)
    eig = covariance_eigenvalues(cfg.cov, cfg.d, cfg.alpha)
    masks = np.zeros((0, cfg.T)) if cfg.masks is None else np.asarray(cfg.masks)
    scalar = functools.partial(jnp.asarray, dtype=dtype)
    return Params(
        w_star=scalar(ground_truth(cfg.wstar, cfg.d, cfg.delta)),
        sqrt_eig=scalar(np.sqrt(eig)),
        sigma=scalar(cfg.sigma),
        edit_fraction=scalar(cfg.edit_fraction),
        decay=scalar(cfg.decay),
        threshold=scalar(cfg.threshold),
        masks=scalar(masks),
        ridge=scalar(cfg.ridge),
    )


def trial_keys(seed: int, start: int, count: int) -> jax.Array:
    """Keys of trials start .. start + count - 1."""
    _, k_trials = jax.random.split(jax.random.key(seed))
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(k_trials, jnp.arange(start, start + count))


def _static(cfg: SimConfig) -> tuple:
    return (cfg.regime, cfg.T, cfg.d, cfg.generations, cfg.design, cfg.edit_op, cfg.mask)


@functools.lru_cache(maxsize=64)
def compiled_runner(regime: str, T: int, d: int, generations: int, design: str, edit_op: str, mask: str):
    """Jitted ``run(keys [B], params) -> (errors [B, G+1], edit_fractions [B, G+1])``."""
    init, step = make_regime(regime, T, generations, design, edit_op, mask, d)

    def one_trial(key, params: Params):
        eig = params.sqrt_eig**2
        state = init(key, params)

        def body(state, _):
            state, fraction = step(state, key, params)
            return state, (test_error(state.w, params.w_star, eig), jnp.asarray(fraction, eig.dtype))

        _, (errors, fractions) = jax.lax.scan(body, state, length=generations)
        first = test_error(state.w, params.w_star, eig)
        zero = jnp.zeros((1,), eig.dtype)
        return jnp.concatenate([first[None], errors]), jnp.concatenate([zero, fractions])

    return jax.jit(jax.vmap(one_trial, in_axes=(0, None)))


def chunk_size(cfg: SimConfig) -> int:
    """Trials per jitted call: at most CHUNK_TRIALS, and few enough that their state fits CHUNK_BYTES
    (the accumulate-subsample pool holds (generations + 1) T labels, and rows too for a fresh design)."""
    floats = cfg.T * (cfg.d + 1) + cfg.d * cfg.d
    if cfg.regime == "accumulate-subsample":
        floats += (cfg.generations + 1) * cfg.T * (1 + (cfg.d if cfg.design == "fresh" else 0))
    per_trial = 2 * floats * jnp.dtype(cfg.dtype).itemsize  # x2: scan carries input and output state
    return max(1, min(cfg.trials, CHUNK_TRIALS, CHUNK_BYTES // per_trial))


def run_trials(cfg: SimConfig, progress: bool = False, checkpoint: str | Path | None = None):
    """Per-trial test errors and edit fractions, each shape [trials, generations + 1], as float64 NumPy.

    ``checkpoint``: a file where finished chunks are saved after each chunk; a rerun of the same
    configuration resumes from it. The caller deletes it once the results are stored.
    """
    chunk = chunk_size(cfg)
    n_chunks = -(-cfg.trials // chunk)
    done = _load_checkpoint(checkpoint, cfg) if checkpoint else {}
    with jax.enable_x64(cfg.dtype == "float64"):
        run = compiled_runner(*_static(cfg))
        params = make_params(cfg)
        bar = tqdm(total=n_chunks, desc=f"simulate {cfg.regime}", unit="chunk", disable=not progress,
                   delay=2.0, initial=len(done), leave=False)
        for c in range(n_chunks):
            if c in done:
                continue
            errors, fractions = run(trial_keys(cfg.seed, c * chunk, chunk), params)
            done[c] = (np.asarray(errors, np.float64), np.asarray(fractions, np.float64))
            if checkpoint:
                _save_checkpoint(checkpoint, cfg, done)
            bar.update(1)
        bar.close()
    errors = np.concatenate([done[c][0] for c in range(n_chunks)])[: cfg.trials]
    fractions = np.concatenate([done[c][1] for c in range(n_chunks)])[: cfg.trials]
    return errors, fractions


def simulate(cfg: SimConfig, progress: bool = False, checkpoint: str | Path | None = None) -> SimResult:
    """Run ``cfg`` and summarise each generation: mean, standard error, 95% interval, median, 5% and 95%
    quantiles, edit fraction."""
    errors, fractions = run_trials(cfg, progress=progress, checkpoint=checkpoint)
    mean, stderr, lo, hi = mean_interval(errors)
    q05, median, q95 = np.quantile(errors, [0.05, 0.5, 0.95], axis=0)
    editing = cfg.regime == "edit"
    return SimResult(
        config=cfg,
        generation=np.arange(cfg.generations + 1),
        mean=mean, stderr=stderr, ci_low=lo, ci_high=hi,
        edit_fraction=fractions.mean(axis=0) if editing else None,
        errors=errors,
        edit_fractions=fractions if editing else None,
        median=median, q05=q05, q95=q95,
    )


def _fingerprint(cfg: SimConfig) -> str:
    text = json.dumps(cfg.to_dict(), sort_keys=True) + str(chunk_size(cfg))
    if cfg.masks is not None:
        text += hashlib.sha256(np.ascontiguousarray(cfg.masks, np.float64).tobytes()).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()


def _save_checkpoint(path, cfg: SimConfig, done: dict) -> None:
    arrays = {f"errors_{c}": e for c, (e, _) in done.items()}
    arrays.update({f"fractions_{c}": f for c, (_, f) in done.items()})
    with atomic_path(path) as tmp:
        np.savez(tmp, fingerprint=np.array(_fingerprint(cfg)), **arrays)


def _load_checkpoint(path, cfg: SimConfig) -> dict:
    """Finished chunks of a checkpoint made by the same configuration (none otherwise)."""
    path = Path(path)
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        if str(data["fingerprint"]) != _fingerprint(cfg):
            return {}
        chunks = sorted(int(k.split("_")[1]) for k in data.files if k.startswith("errors_"))
        return {c: (data[f"errors_{c}"], data[f"fractions_{c}"]) for c in chunks}
