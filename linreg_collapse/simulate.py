"""The simulator: ``lax.scan`` over generations inside ``vmap`` over trials, one jitted program.

Trial i uses the key ``fold_in(k_trials, i)`` where ``k_wstar, k_trials = split(key(seed))``, so a
trial's random draws do not depend on how many trials run beside it (its errors do, in the last bit: XLA
compiles a large chunk with another floating-point evaluation order than a small one). Trials run in
chunks of at most ``CHUNK_TRIALS`` (fewer for large trials, see :mod:`.memory`; the last chunk padded),
which drives the progress report, bounds memory, and lets a run resume from a checkpoint of finished chunks.

:func:`run_batch` runs several configurations that differ only in traced parameters (sigma, p, eta,
tau, alpha, seed) as one compiled program, their parameters vmapped over a leading axis, and shards
each chunk's trials over every JAX device (:mod:`linreg_collapse.devices`). ``simulate`` is its
one-configuration case; :mod:`linreg_collapse.sweep` groups grids into such batches.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from scipy import special  # stdtrit: the Student-t quantile, without importing scipy.stats (1 s)

from .config import SimConfig, minnorm_base_error
from .design import covariance_eigenvalues, ground_truth, test_error
from .devices import TRIALS, gather, place, trial_mesh
from .errors import ResourceError
from .io import atomic_path
from .jax_setup import unroll_threefry_on_cpu
from .memory import plan_chunk
from .progress import Progress
from .regimes import Params, make_regime

unroll_threefry_on_cpu()  # the same draws, faster (jax_setup)

CHUNK_TRIALS = 1024


@dataclasses.dataclass(frozen=True)
class SimResult:
    """Per-generation summary of a run (generation 0 = the fit on real data).

    ``errors`` and ``edit_fractions`` hold every trial, shape [trials, generations + 1] (None for a
    result read back from JSON, :func:`stored_result`); ``edit_fraction`` is None for regimes that do not edit.
    ``median``, ``q05``, ``q95``: per-generation quantiles across trials (the errors are heavy-tailed near
    T = d). ``base``: the unit of the printed table, see :func:`base_unit`.
    """

    config: SimConfig
    generation: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    edit_fraction: Optional[np.ndarray]
    errors: Optional[np.ndarray]
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
    half = special.stdtrit(n - 1, 0.5 + level / 2) * stderr
    return mean, stderr, mean - half, mean + half


def base_unit(cfg: SimConfig) -> tuple[Optional[float], str]:
    """(value, description) of the unit results are shown in: sigma^2 d/(T-d-1) for OLS, otherwise the exact
    generation-0 error where one exists (isotropic minimum-norm), otherwise (None, "absolute")."""
    if cfg.is_ols:
        return cfg.base, "sigma^2 d/(T-d-1), the OLS error of one fit"
    if cfg.ridge != 0 or cfg.T > cfg.d - 2 or cfg.cov != "identity":
        return None, "absolute (no exact generation-0 value for this estimator and covariance)"
    return (minnorm_base_error(cfg.T, cfg.d, cfg.sigma),
            "the exact generation-0 error (1 - T/d) + sigma^2 T/(d-T-1) of isotropic min-norm")


def make_params(cfg: SimConfig) -> Params:
    """The traced inputs of ``cfg``, NumPy arrays of ``cfg.dtype`` (no JAX operation: nothing to compile)."""
    dtype = np.dtype(cfg.dtype)
    eig = covariance_eigenvalues(cfg.cov, cfg.d, cfg.alpha)
    masks = np.zeros((0, cfg.T)) if cfg.masks is None else np.asarray(cfg.masks)
    scalar = functools.partial(np.asarray, dtype=dtype)
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
    return chunk_keys(jax.random.key(seed), start, count)


def chunk_keys(seed_key: jax.Array, start, count: int) -> jax.Array:
    """Keys of trials start .. start + count - 1 of the seed whose key is ``seed_key``: fold_in(k_trials, i)
    with ``k_trials = split(seed_key)[1]``; ``start`` may be traced (run_batch derives them in its program)."""
    _, k_trials = jax.random.split(seed_key)
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(k_trials, start + jnp.arange(count))


def _static(cfg: SimConfig) -> tuple:
    return (cfg.regime, cfg.T, cfg.d, cfg.generations, cfg.design, cfg.edit_op, cfg.mask, cfg.effective_sampler)


def trial_program(regime: str, T: int, d: int, generations: int, design: str, edit_op: str, mask: str,
                  sampler: str = "labels"):
    """``run(keys [B], params) -> (errors [B, G+1], edit_fractions [B, G+1])``, not yet jitted."""
    init, step, real_data_is_a_step = make_regime(regime, T, generations, design, edit_op, mask, d, sampler)

    def one_trial(key, params: Params):
        eig = params.sqrt_eig**2
        state = init(key, params)

        def body(state, _):
            state, fraction = step(state, key, params)
            return state, (test_error(state.w, params.w_star, eig), jnp.asarray(fraction, eig.dtype))

        zero = jnp.zeros((1,), eig.dtype)  # generation 0's edit fraction
        if real_data_is_a_step:
            _, (errors, fractions) = jax.lax.scan(body, state, length=generations + 1)
            return errors, jnp.concatenate([zero, fractions[1:]])
        _, (errors, fractions) = jax.lax.scan(body, state, length=generations)
        first = test_error(state.w, params.w_star, eig)
        return jnp.concatenate([first[None], errors]), jnp.concatenate([zero, fractions])

    return jax.vmap(one_trial, in_axes=(0, None))


@functools.lru_cache(maxsize=64)
def compiled_runner(regime: str, T: int, d: int, generations: int, design: str, edit_op: str, mask: str,
                    sampler: str = "labels"):
    """Jitted ``run(keys [B], params) -> (errors [B, G+1], edit_fractions [B, G+1])``."""
    return jax.jit(trial_program(regime, T, d, generations, design, edit_op, mask, sampler))


@functools.lru_cache(maxsize=64)
def batch_runner(static: tuple, chunk: int, mesh) -> jax.stages.Wrapped:
    """Jitted ``run((seed_data [P, ...], start), params [P, ...]) -> (errors, edit_fractions) [P, chunk, G+1]``
    for P parameter settings of one shape: trials start .. start + chunk - 1 of each setting's seed
    (``seed_data``: the key data of ``jax.random.key(seed)``), their keys derived in the program
    (:func:`chunk_keys`, the keys of :func:`trial_keys`, with no small programs compiled around it), the
    trial axis sharded over ``mesh``."""
    trials = trial_program(*static)
    by_trial = NamedSharding(mesh, PartitionSpec(None, TRIALS))

    def run(chunk_start, params):
        seed_data, start = chunk_start
        keys = jax.vmap(lambda data: chunk_keys(jax.random.wrap_key_data(data), start, chunk))(seed_data)
        return jax.vmap(trials)(jax.lax.with_sharding_constraint(keys, by_trial), params)

    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(run, in_shardings=(replicated, replicated), out_shardings=by_trial)


def batch_key(cfg: SimConfig) -> tuple:
    """Configurations with equal keys differ only in traced parameters and can share one :func:`run_batch`."""
    return (*_static(cfg), cfg.dtype, cfg.trials)


def _trial_budget(cfg: SimConfig) -> int:
    """Trials one device runs per call: at most CHUNK_TRIALS and as many as memory allows
    (:func:`.memory.plan_chunk`; InputError naming the flag to lower when even one trial does not fit)."""
    return plan_chunk(cfg, CHUNK_TRIALS)


def chunk_size(cfg: SimConfig, batch: int = 1, devices: int = 1) -> int:
    """Trials per jitted call for each of ``batch`` configurations, a multiple of ``devices``: every
    trial in one call if the budget allows, else the trials spread evenly over as few calls as each
    device's share of the budget allows (padding under one trial per call and device, not up to a chunk:
    1000 trials at a budget of 129 run as 8 x 125, not 8 x 129)."""
    per_device = max(1, _trial_budget(cfg) // batch)
    trials = -(-cfg.trials // devices)
    return -(-trials // -(-trials // per_device)) * devices


def max_batch(cfg: SimConfig, devices: int = 1) -> int:
    """How many configurations like ``cfg`` one call holds with all their trials (at least 1)."""
    return max(1, _trial_budget(cfg) // -(-cfg.trials // devices))


class BatchResult(NamedTuple):
    """Per-trial results of :func:`run_batch`, float64 NumPy of shape [configurations, trials, generations + 1]."""

    errors: np.ndarray
    edit_fractions: np.ndarray
    compile_seconds: float  # compiling (or loading from the persistent cache) the batch's program
    run_seconds: float  # running it, every chunk


# (static settings, dtype, batch size, chunk, mesh) -> compiled batch_runner: each shape compiles once per
# process, whatever the trial count it serves.
_EXECUTABLES: dict = {}


def compiled_batch(cfg: SimConfig, batch: int, chunk: int, mesh, chunk_start: tuple, params: Params):
    """(``cfg``'s batch_runner compiled for ``batch`` configurations x ``chunk`` trials on ``mesh``, the
    seconds compiling took now: 0 if this process compiled it before)."""
    cache_key = (_static(cfg), cfg.dtype, batch, chunk, mesh)
    if cache_key in _EXECUTABLES:
        return _EXECUTABLES[cache_key], 0.0
    start = time.perf_counter()
    _EXECUTABLES[cache_key] = batch_runner(_static(cfg), chunk, mesh).lower(chunk_start, params).compile()
    return _EXECUTABLES[cache_key], time.perf_counter() - start


def run_batch(cfgs: Sequence[SimConfig], progress: bool = False, checkpoint: str | Path | None = None,
              desc: str = "simulate") -> BatchResult:
    """Run configurations with one :func:`batch_key` as ONE compiled program: their parameters vmapped,
    their trials in chunks sharded over every device (the chunk a multiple of the device count).

    ``checkpoint``: a file where finished chunks are saved after each chunk; a rerun of the same batch
    resumes from it (with the chunk size it was made with). The caller deletes it once the results are
    stored. A resource failure inside JAX (out of memory, device lost) raises
    :class:`~linreg_collapse.errors.ResourceError`, one line, with the finished chunks kept.
    """
    cfg = cfgs[0]
    if any(batch_key(c) != batch_key(cfg) for c in cfgs):
        raise ValueError("run_batch needs configurations that differ only in traced parameters")
    mesh = trial_mesh()
    fingerprint = hashlib.sha256(f"{[config_digest(c) for c in cfgs]} {mesh.size}".encode()).hexdigest()
    stored_chunk, done = _load_checkpoint(checkpoint, fingerprint) if checkpoint else (None, {})
    chunk = stored_chunk or chunk_size(cfg, len(cfgs), mesh.size)
    n_chunks = -(-cfg.trials // chunk)
    compile_seconds, run_seconds = 0.0, 0.0
    with jax.enable_x64(cfg.dtype == "float64"), \
            Progress(n_chunks, desc, "chunk", enabled=progress, initial=len(done)) as bar:
        stacked = jax.tree.map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]),
                               *[make_params(c) for c in cfgs])
        params = jax.tree.map(lambda x: place(x, mesh, PartitionSpec()), stacked)
        seed_data = place(np.stack([jax.random.key_data(jax.random.key(x.seed)) for x in cfgs]), mesh,
                          PartitionSpec())
        for c in range(n_chunks):
            if c in done:
                continue
            chunk_start = (seed_data, place(np.int32(c * chunk), mesh, PartitionSpec()))
            try:
                with bar.heartbeat(f"chunk {c + 1}/{n_chunks}"):  # a slow compile or chunk visibly moves
                    run, seconds = compiled_batch(cfg, len(cfgs), chunk, mesh, chunk_start, params)
                    compile_seconds += seconds
                    start = time.perf_counter()
                    errors, fractions = run(chunk_start, params)
                    done[c] = (gather(errors).astype(np.float64), gather(fractions).astype(np.float64))
            except jax.errors.JaxRuntimeError as err:
                raise ResourceError(_resource_message(err, c, n_chunks, chunk, checkpoint)) from None
            run_seconds += time.perf_counter() - start
            if checkpoint:
                _save_checkpoint(checkpoint, fingerprint, chunk, done)
            bar.update(1)
    errors = np.concatenate([done[c][0] for c in range(n_chunks)], axis=1)[:, : cfg.trials]
    fractions = np.concatenate([done[c][1] for c in range(n_chunks)], axis=1)[:, : cfg.trials]
    return BatchResult(errors, fractions, compile_seconds, run_seconds)


def run_trials(cfg: SimConfig, progress: bool = False, checkpoint: str | Path | None = None):
    """Per-trial test errors and edit fractions, each shape [trials, generations + 1], as float64 NumPy.

    ``checkpoint``: a file where finished chunks are saved after each chunk; a rerun of the same
    configuration resumes from it (with the chunk size it was made with). The caller deletes it once the
    results are stored. A resource failure inside JAX (out of memory, device lost) raises
    :class:`~linreg_collapse.errors.ResourceError`, one line, with the finished chunks kept.
    """
    result = run_batch([cfg], progress=progress, checkpoint=checkpoint, desc=f"simulate {cfg.regime}")
    return result.errors[0], result.edit_fractions[0]


def _resource_message(err: Exception, c: int, n_chunks: int, chunk: int, checkpoint) -> str:
    """One line for a failure inside JAX: its first line, where the run stopped, what was kept."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    kept = (f"{c} finished chunks kept in {checkpoint}; rerun the same command to resume" if checkpoint
            else "nothing kept (checkpoint finished chunks with --json, or checkpoint= in Python)")
    return f"JAX failed in chunk {c + 1}/{n_chunks} ({chunk} trials): {first[:300]}; {kept}"


def simulate(cfg: SimConfig, progress: bool = False, checkpoint: str | Path | None = None) -> SimResult:
    """Run ``cfg`` and summarise each generation: mean, standard error, 95% interval, median, 5% and 95%
    quantiles, edit fraction."""
    return summarise(cfg, *run_trials(cfg, progress=progress, checkpoint=checkpoint))


def summarise(cfg: SimConfig, errors: np.ndarray, fractions: np.ndarray) -> SimResult:
    """The :class:`SimResult` of ``cfg`` from its per-trial errors and edit fractions [trials, generations + 1]."""
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


def stored_result(path: str | Path, cfg: SimConfig) -> Optional[SimResult]:
    """The finished result of ``cfg`` written to ``path`` by :meth:`SimResult.to_json_dict` (per-trial
    arrays None), or None when the file is absent, unreadable or holds another configuration."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return None
    if not isinstance(data, dict) or data.get("config") != json.loads(json.dumps(cfg.to_dict())):
        return None
    keys = ("mean", "stderr", "ci_low", "ci_high", "median", "q05", "q95")
    if any(data.get(k) is None for k in keys):  # written by an older version
        return None
    arrays = {k: np.array(data[k], dtype=float) for k in keys}
    fraction = data.get("edit_fraction")
    return SimResult(config=cfg, generation=np.arange(cfg.generations + 1), **arrays,
                     edit_fraction=None if fraction is None else np.array(fraction, dtype=float),
                     errors=None, edit_fractions=None)


def config_digest(cfg: SimConfig) -> str:
    """SHA-256 of everything that determines ``cfg``'s numbers (its fields and, if any, its masks)."""
    text = json.dumps(cfg.to_dict(), sort_keys=True)
    if cfg.masks is not None:
        text += hashlib.sha256(np.ascontiguousarray(cfg.masks, np.float64).tobytes()).hexdigest()
    return hashlib.sha256(text.encode()).hexdigest()


def _save_checkpoint(path, fingerprint: str, chunk: int, done: dict) -> None:
    arrays = {f"errors_{c}": e for c, (e, _) in done.items()}
    arrays.update({f"fractions_{c}": f for c, (_, f) in done.items()})
    with atomic_path(path) as tmp:
        np.savez(tmp, fingerprint=np.array(fingerprint), chunk=np.array(chunk), **arrays)


def _load_checkpoint(path, fingerprint: str) -> tuple[Optional[int], dict]:
    """(chunk size, finished chunks) of a checkpoint made by the same batch on as many devices; (None, {})
    otherwise."""
    path = Path(path)
    if not path.exists():
        return None, {}
    with np.load(path, allow_pickle=False) as data:
        if str(data["fingerprint"]) != fingerprint or "chunk" not in data.files:
            return None, {}
        chunks = sorted(int(k.split("_")[1]) for k in data.files if k.startswith("errors_"))
        return int(data["chunk"]), {c: (data[f"errors_{c}"], data[f"fractions_{c}"]) for c in chunks}
