"""Memory planning (linreg_collapse.memory): the estimate against XLA's own accounting, an impossible run
refused at once, and a run that fits only in small chunks completed with the same numbers."""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from linreg_collapse import memory
from linreg_collapse.config import SimConfig

sim = importlib.import_module("linreg_collapse.simulate")  # the module (the package exports the function)
ROOT = Path(__file__).resolve().parents[1]

# One shape per distinct memory model: fixed and fresh designs, the subsample pool (labels; rows too),
# the edit path, float32, the stats sampler. Each is one compile (seconds); FULL_ONLY runs with LINREG_FULL=1.
SHAPES = {
    "replace fixed": dict(regime="replace", T=400, d=20, generations=3, sampler="labels"),
    "replace fixed stats": dict(regime="replace", T=400, d=20, generations=3, sampler="stats"),
    "replace fresh stats": dict(regime="replace", design="fresh", T=400, d=20, generations=3, sampler="stats"),
    "subsample fresh": dict(regime="accumulate-subsample", design="fresh", T=300, d=8, generations=12),
    "subsample fixed": dict(regime="accumulate-subsample", T=300, d=8, generations=12),
    "edit disjoint float32": dict(regime="edit", mask="disjoint", T=400, d=20, generations=3, dtype="float32"),
}
FULL_ONLY = {"subsample fixed", "edit disjoint float32", "replace fixed"}
FULL = os.environ.get("LINREG_FULL") == "1"
# The chunked-run tests share one program (same static shape and batch size) so it compiles once.
SMALL_RUN = dict(regime="replace", T=30, d=5, generations=2)


def measured_bytes(cfg: SimConfig, trials: int) -> int:
    """XLA's peak for the compiled chunk: arguments + outputs + temporaries, less what they share."""
    with jax.enable_x64(cfg.dtype == "float64"):
        run = sim.compiled_runner(*sim._static(cfg))
        stats = run.lower(sim.trial_keys(cfg.seed, 0, trials), sim.make_params(cfg)).compile().memory_analysis()
    return (stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            - stats.alias_size_in_bytes)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.skipif(
    n in FULL_ONLY and not FULL, reason="LINREG_FULL=1 checks every memory model")) for n in SHAPES])
def test_estimate_within_a_factor_2_of_xla(name):
    cfg = SimConfig(trials=8, **SHAPES[name])
    estimate = memory.trial_bytes(cfg) * 8
    measured = measured_bytes(cfg, 8)
    assert measured / 2 <= estimate <= 2 * measured, (estimate, measured)
    # negative control: a wrong model is caught: the labels sampler's for the stats sampler (X and its draw,
    # not the sufficient statistics), else forgetting the design's temporaries (counting only X once)
    if cfg.effective_sampler == "stats":
        wrong = memory.trial_bytes(dataclasses.replace(cfg, sampler="labels")) * 8
    else:
        wrong = 8 * cfg.T * cfg.d * 8
    assert not measured / 2 <= wrong <= 2 * measured or cfg.regime == "accumulate-subsample"


def test_chunks_shrink_to_what_fits(monkeypatch):
    cfg = SimConfig(regime="replace", T=400, d=20, trials=50)
    monkeypatch.setenv(memory.ENV_OVERRIDE, str(2 * memory.chunk_bytes(cfg, 3)))
    assert memory.plan_chunk(cfg, 1024) == 3
    monkeypatch.setenv(memory.ENV_OVERRIDE, str(memory.chunk_bytes(cfg, 1)))
    assert memory.plan_chunk(cfg, 1024) == 1
    monkeypatch.setenv(memory.ENV_OVERRIDE, str(memory.chunk_bytes(cfg, 1) - 1))
    with pytest.raises(memory.InputError, match=r"one trial needs about .* available .*lower --T or --d"):
        memory.plan_chunk(cfg, 1024)


def test_available_memory_is_positive_and_named(monkeypatch):
    monkeypatch.delenv(memory.ENV_OVERRIDE, raising=False)
    available, source = memory.available_bytes()
    assert available > 0 and source


def test_a_run_that_fits_only_in_small_chunks_completes_with_the_same_numbers(tmp_path, monkeypatch):
    cfg = SimConfig(trials=10, **SMALL_RUN)
    whole = sim.run_trials(cfg)[0]
    monkeypatch.setenv(memory.ENV_OVERRIDE, str(2 * memory.chunk_bytes(cfg, 4)))
    assert sim.chunk_size(cfg) == 4
    chunked = sim.run_trials(cfg, checkpoint=tmp_path / "c.npz")[0]
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)


def _cli(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "linreg_collapse.cli", *argv], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)


def test_oversized_run_exits_2_in_one_line_writing_nothing(tmp_path):
    out = tmp_path / "new" / "big.json"
    proc = _cli("simulate", "--T", "1000000000", "--d", "10", "--trials", "2", "--generations", "1",
                "--json", str(out), env={memory.ENV_OVERRIDE: str(16 * 2**30)})
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    needed = memory.format_bytes(memory.chunk_bytes(SimConfig(T=1_000_000_000, d=10, trials=2, generations=1), 1))
    assert f"one trial needs about {needed}" in proc.stderr and "16.0 GiB is available" in proc.stderr
    assert "lower --T or --d" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_resource_failure_inside_jax_is_one_line_and_keeps_finished_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(sim, "CHUNK_TRIALS", 4)
    cfg = SimConfig(trials=10, **SMALL_RUN)
    real_compiled = sim.compiled_batch
    calls = []

    def failing_third_chunk(*args):
        run, seconds = real_compiled(*args)

        def counted(keys, params):
            calls.append(1)
            if len(calls) == 3:
                raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 123 bytes.\nmore")
            return run(keys, params)

        return counted, seconds

    monkeypatch.setattr(sim, "compiled_batch", failing_third_chunk)
    checkpoint = tmp_path / "run.partial.npz"
    with pytest.raises(sim.ResourceError, match=r"^JAX failed in chunk 3/3 \(4 trials\): RESOURCE_EXHAUSTED: "
                                                r"Out of memory allocating 123 bytes.; 2 finished chunks kept") as err:
        sim.run_trials(cfg, checkpoint=checkpoint)
    assert "\n" not in str(err.value)
    with np.load(checkpoint) as data:  # the finished chunks are in the checkpoint
        assert sorted(k for k in data.files if k.startswith("errors_")) == ["errors_0", "errors_1"]
