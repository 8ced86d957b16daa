"""Grids of configurations: ``linreg-collapse sweep GRID.toml --out DIR`` and :func:`sweep`.

A grid (:mod:`linreg_collapse.grid`) maps ``simulate``'s flag names to a value or a list of values; its
configurations are the Cartesian product, every one validated before any work.

Configurations that differ only in traced parameters (sigma, alpha, p, eta, tau, seed) share one
compiled program: :func:`batches` groups them by shape and :func:`~linreg_collapse.simulate.run_batch`
vmaps their parameters and shards their trials over every JAX device. Trial i of a configuration uses
the key it has in ``simulate``, so a configuration's rows equal a ``simulate`` run of it.

Output directory (written only by process 0 under ``jax.distributed``, so it must be shared):

* ``results.csv``: one row per configuration x generation: every parameter under its grid key, then
  ``generation, mean, stderr, ci_low, ci_high, median, edit_fraction, base`` (``edit_fraction`` is the
  realised share of edited positions, empty unless editing; ``base = sigma^2 d/(T-d-1)``);
* ``sweep.json``: the grid, versions, devices and timings (compile apart from run, per batch);
* ``runs/<digest>.json``: each finished configuration's summary. A rerun skips these configurations
  and resumes an interrupted batch from ``partial/``.

Configurations that cannot run are skipped, each reported in one line on stderr, and every other one
still runs and is written: one whose single trial does not fit in the memory available
(:func:`~linreg_collapse.memory.check_fits`, checked per shape before anything is compiled; cause
``"memory"``), and those of a batch in which JAX failed (out of memory, a device lost; cause
``"resource"``, the batch's finished chunks kept in ``partial/``). ``sweep.json`` lists them under
``"skipped"``, the returned table under ``table.attrs["skipped"]`` (:data:`SKIPPED`), and the CLI exits
with code 3. They are not in ``runs/``, so a rerun (with more memory) runs only them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import jax
import numpy as np
import pandas as pd

from . import __version__
from .config import SimConfig
from .devices import describe, trial_mesh
from .errors import InputError, ResourceError, require
from .grid import MASKS_FILE, Grid, grid_keys, parse_grid
from .io import atomic_path, check_writable, write_json
from .memory import check_fits
from .progress import Progress, inner
from .simulate import BatchResult, SimResult, batch_key, config_digest, max_batch, run_batch, summarise

STATISTICS = ("generation", "mean", "stderr", "ci_low", "ci_high", "median", "edit_fraction", "base")
SKIPPED = "skipped"  # key of the skipped configurations in sweep.json and in the returned table's attrs


def batches(cfgs: Sequence[SimConfig], devices: int = 1) -> list[list[int]]:
    """Indices of ``cfgs`` grouped into :func:`~linreg_collapse.simulate.run_batch` calls: one shape each, at
    most :func:`~linreg_collapse.simulate.max_batch` configurations, equal sizes within a shape (the last
    batch padded by repeating its last index) so that each shape compiles once."""
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(batch_key(cfg), []).append(i)
    plan = []
    for members in groups.values():
        n_batches = -(-len(members) // max_batch(cfgs[members[0]], devices))
        size = -(-len(members) // n_batches)
        for start in range(0, len(members), size):
            batch = members[start:start + size]
            plan.append(batch + batch[-1:] * (size - len(batch)))
    return plan


def run_many(cfgs: Sequence[SimConfig], progress: bool = False,
             partial_dir: Optional[Path] = None) -> Iterator[tuple[list[int], BatchResult | ResourceError]]:
    """Run ``cfgs`` batch by batch (:func:`batches`); yield (indices into ``cfgs``, their BatchResult) as each
    batch finishes, or (indices, the ResourceError) for a batch JAX failed to run; the next batches still
    run. ``partial_dir``: where a batch checkpoints its finished chunks (deleted when it ends, kept when it
    fails)."""
    plan = batches(cfgs, trial_mesh().size)
    bar = Progress(len(cfgs), "sweep", "config", enabled=progress)
    for indices in plan:
        members = [cfgs[i] for i in indices]
        checkpoint = None
        if partial_dir is not None:
            digest = hashlib.sha256("".join(config_digest(c) for c in members).encode()).hexdigest()
            checkpoint = partial_dir / f"{digest[:24]}.npz"
        shape = f"{members[0].regime} T={members[0].T} d={members[0].d}"
        try:
            result = run_batch(members, progress=inner(progress), checkpoint=checkpoint,
                               desc=f"{len(set(indices))} configs")
        except ResourceError as err:
            yield indices, err
            bar.update(len(set(indices)), note=f"{shape} failed")
            continue
        yield indices, result
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)
        bar.update(len(set(indices)), note=shape)
    bar.close()
    if partial_dir is not None and partial_dir.is_dir() and not any(partial_dir.iterdir()):
        partial_dir.rmdir()


def simulate_many(cfgs: Sequence[SimConfig], progress: bool = False) -> list[SimResult]:
    """``[simulate(cfg) for cfg in cfgs]`` with one compiled program per shape (the same numbers)."""
    results: list[Optional[SimResult]] = [None] * len(cfgs)
    for indices, batch in run_many(cfgs, progress):
        if isinstance(batch, ResourceError):
            raise batch
        for row, i in enumerate(indices):
            results[i] = summarise(cfgs[i], batch.errors[row], batch.edit_fractions[row])
    return results


def sweep(grid: Mapping[str, Any] | str | os.PathLike, out: str | os.PathLike | None = None,
          progress: bool = False) -> pd.DataFrame:
    """Run every configuration of ``grid`` (a mapping or a TOML file) and return the tidy table of
    ``results.csv``. With ``out``, write the outputs described in the module docstring there and skip
    configurations already finished in it.

    Configurations that could not run (module docstring) are not in the table; ``table.attrs["skipped"]``
    lists them, each ``{"parameters": {grid key: value}, "cause": "memory" | "resource", "message": ...}``,
    empty when every configuration ran."""
    started = time.perf_counter()
    parsed = parse_grid(grid)
    points = parsed.points()
    out_dir = None if out is None else Path(out)
    if out_dir is not None:
        require(not out_dir.is_file(), f"--out {str(out)!r} is a file, not a directory")
        check_writable("--out", out_dir / "results.csv")
    summaries = {i: s for i, (_, cfg) in enumerate(points) if (s := _stored(out_dir, cfg)) is not None}
    if summaries:
        print(f"sweep: {len(summaries)} of {len(points)} configurations already finished in {out_dir}, skipping them",
              file=sys.stderr)
    skipped: list[dict] = []

    def skip(i: int, cause: str, message: str) -> None:
        swept = parsed.swept(points[i][0])
        print(f"sweep: skipped configuration {{{swept}}}: {message}" if swept else f"sweep: skipped: {message}",
              file=sys.stderr)
        skipped.append({"parameters": {k: points[i][0][k] for k in parsed.values}, "cause": cause, "message": message})

    finished_before, todo, memory_problems = len(summaries), [], {}
    for i, (_, cfg) in enumerate(points):
        if i in summaries:
            continue
        if batch_key(cfg) not in memory_problems:  # one check per shape: memory depends on nothing else
            memory_problems[batch_key(cfg)] = _memory_problem(cfg)
        if memory_problems[batch_key(cfg)] is None:
            todo.append(i)
        else:
            skip(i, "memory", memory_problems[batch_key(cfg)])
    cfgs = [points[i][1] for i in todo]
    timings = []
    for indices, batch in run_many(cfgs, progress, None if out_dir is None else out_dir / "partial"):
        if isinstance(batch, ResourceError):
            for i in dict.fromkeys(indices):  # a batch's padding repeats its last configuration
                skip(todo[i], "resource", str(batch))
            continue
        for row, i in enumerate(indices):
            if todo[i] in summaries:  # a batch's padding repeats its last configuration
                continue
            summaries[todo[i]] = _summary(cfgs[i], batch.errors[row], batch.edit_fractions[row])
            _store(out_dir, cfgs[i], summaries[todo[i]])
        timings.append({"program": [str(v) for v in batch_key(cfgs[indices[0]])], "configurations": len(set(indices)),
                        "compile_seconds": batch.compile_seconds, "run_seconds": batch.run_seconds})
    table = _table(points, summaries)
    table.attrs[SKIPPED] = skipped
    if out_dir is not None and jax.process_index() == 0:
        with atomic_path(out_dir / "results.csv") as tmp:
            table.to_csv(tmp, index=False)
        write_json(out_dir / "sweep.json", _metadata(parsed, len(points), finished_before, skipped, timings,
                                                     time.perf_counter() - started))
    return table


def _memory_problem(cfg: SimConfig) -> Optional[str]:
    """Why one trial of ``cfg`` cannot fit in the memory available (:func:`.memory.check_fits`), or None."""
    try:
        check_fits(cfg, setting=str)  # the grid keys: T, d, generations, dtype
    except InputError as err:
        return str(err)
    return None


def _summary(cfg: SimConfig, errors: np.ndarray, fractions: np.ndarray) -> dict:
    result = summarise(cfg, errors, fractions)
    return {"generation": result.generation.tolist(), "mean": result.mean.tolist(), "stderr": result.stderr.tolist(),
            "ci_low": result.ci_low.tolist(), "ci_high": result.ci_high.tolist(),
            "median": np.median(errors, axis=0).tolist(),
            "edit_fraction": None if result.edit_fraction is None else result.edit_fraction.tolist(),
            "base": result.base}


def _run_path(out_dir: Path, cfg: SimConfig) -> Path:
    return out_dir / "runs" / f"{config_digest(cfg)[:24]}.json"


def _stored(out_dir: Optional[Path], cfg: SimConfig) -> Optional[dict]:
    """The summary of ``cfg`` finished in ``out_dir`` by an earlier run, if any."""
    if out_dir is None or not _run_path(out_dir, cfg).exists():
        return None
    try:
        data = json.loads(_run_path(out_dir, cfg).read_text())
    except (json.JSONDecodeError, OSError):
        return None
    return data["summary"] if data.get("digest") == config_digest(cfg) else None


def _store(out_dir: Optional[Path], cfg: SimConfig, summary: dict) -> None:
    if out_dir is not None and jax.process_index() == 0:
        write_json(_run_path(out_dir, cfg), {"digest": config_digest(cfg), "config": cfg.to_dict(), "summary": summary})


def _table(points: list[tuple[dict, SimConfig]], summaries: dict[int, dict]) -> pd.DataFrame:
    """Rows of the configurations in ``summaries``, in grid order."""
    columns: dict[str, list] = {key: [] for key in [*points[0][0], *STATISTICS]}
    for i, (params, cfg) in enumerate(points):
        if i not in summaries:
            continue
        summary, rows, recorded = summaries[i], cfg.generations + 1, cfg.to_dict()
        for key, value in params.items():  # the value that ran (e.g. the default sampler resolved); unset: NaN
            value = recorded.get(key.replace("-", "_"), value)
            columns[key] += [np.nan if value is None else value] * rows
        for key in STATISTICS:
            value = summary[key]
            columns[key] += ([value] * rows if key == "base" else [np.nan] * rows if value is None else value)
    return pd.DataFrame(columns)


def _metadata(grid: Grid, n_configs: int, finished_before: int, skipped: list[dict], timings: list[dict],
              wall: float) -> dict:
    return {
        "grid": grid.values, "source": grid.source, "configurations": n_configs,
        "finished_before": finished_before, "finished": n_configs - len(skipped), SKIPPED: skipped,
        "columns": [*grid_keys(), MASKS_FILE, *STATISTICS],
        "devices": describe(trial_mesh()),
        "versions": {"linreg_collapse": __version__, "jax": jax.__version__, "numpy": np.__version__,
                     "pandas": pd.__version__, "python": platform.python_version()},
        "timings": {"wall_seconds": wall, "compile_seconds": sum(t["compile_seconds"] for t in timings),
                    "run_seconds": sum(t["run_seconds"] for t in timings), "batches": timings},
    }
