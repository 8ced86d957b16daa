"""Guard against the simulator blocking forever (issue 8, docs/xla_hang.md).

Every configuration runs in a child process that reports ``start``/``done`` per configuration; the
parent allows each configuration ``CONFIG_SECONDS`` and, past it, kills the child and fails naming the
configuration instead of blocking the suite. The CI grid covers every regime, edit operator and mask
schedule at a full chunk of 1024 trials (jaxlib splits LAPACK batches that large over its thread pool,
the deadlock's precondition); LINREG_FULL=1 runs the full product regime x design / operator x mask x
dtype at shapes crossing the chunk sizes (T up to 512, trials up to 4096), the issue's exact command, and
a negative control that the guard catches the real deadlock when the workaround is switched off.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import TEST_COMPILE_FLAGS

from linreg_collapse import SimConfig
from linreg_collapse.simulate import run_trials

ROOT = Path(__file__).resolve().parents[1]
CONFIG_SECONDS = 90.0  # compile + run of one configuration on a loaded 2-core machine, with margin
FULL_CONFIG_SECONDS = 300.0  # the full grid's largest shapes (T = 512, 4096 trials) on a loaded machine
FULL = os.environ.get("LINREG_FULL") == "1"

CHILD = """
import json, sys, time
import numpy as np
from linreg_collapse import SimConfig
from linreg_collapse.simulate import run_trials
for line in sys.stdin:
    config = json.loads(line)
    print("start", line.strip(), flush=True)
    masks = config.pop("masks_shape", None)
    if masks is not None:
        config["masks"] = np.random.default_rng(0).random(masks)
    t = time.monotonic()
    errors, _ = run_trials(SimConfig(**config))
    assert np.isfinite(errors).all(), "non-finite errors"
    print("done", f"{time.monotonic() - t:.1f}", json.dumps(errors.mean(axis=0).tolist()), flush=True)
"""


def user_xla_flags() -> str:
    """XLA_FLAGS without the suite's compile-time settings (tests/conftest.py): what a user's run has."""
    return " ".join(flag for flag in os.environ.get("XLA_FLAGS", "").split() if flag not in TEST_COMPILE_FLAGS)


def run_guarded(configs: list[dict], script: str = CHILD, seconds: float = CONFIG_SECONDS,
                xla_flags: str | None = None) -> list[tuple[float, list[float]]]:
    """Run ``configs`` one after another in one child process; (seconds, mean error per generation) per
    configuration.

    Fails (naming the configuration) if one takes longer than ``seconds`` or the child dies.
    ``xla_flags``: the child's XLA_FLAGS (default: :func:`user_xla_flags`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "XLA_FLAGS": user_xla_flags() if xla_flags is None else xla_flags}
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    child.stdin.write("".join(json.dumps(c) + "\n" for c in configs))
    child.stdin.close()
    lines: queue.Queue = queue.Queue()  # a reader thread: select() cannot see lines already buffered
    threading.Thread(target=lambda: [*map(lines.put, child.stdout), lines.put("")], daemon=True).start()
    current, times, log = "(child start-up)", [], []
    try:
        while True:
            try:
                line = lines.get(timeout=seconds)
            except queue.Empty:
                pytest.fail(f"no progress for {seconds:.0f} s (hang?) in configuration {current}")
            if not line:
                break
            log.append(line)
            word, _, rest = line.strip().partition(" ")
            if word == "start":
                current = rest
            elif word == "done":
                seconds_taken, _, means = rest.partition(" ")
                times.append((float(seconds_taken), json.loads(means)))
                current = "(child exit)" if len(times) == len(configs) else "(between configurations)"
    finally:
        if child.poll() is None:
            os.killpg(child.pid, 9)
        child.wait()
    assert child.returncode == 0 and len(times) == len(configs), (
        f"child failed (status {child.returncode}) in configuration {current}:\n" + "".join(log[-20:]))
    return times


ISSUE_SHAPED = dict(regime="edit", edit_op="perturb", mask="disjoint", edit_fraction=0.5, decay=0.5, T=256, d=16,
                    generations=8, trials=4000, seed=7)  # the command of issue 8


def grid(shapes, dtypes) -> list[dict]:
    """Every regime x design, and edit x operator x mask schedule, at each (T, trials) and dtype."""
    regimes = [dict(regime=r, design=g) for r in ("replace", "accumulate", "accumulate-subsample")
               for g in ("fixed", "fresh")]
    edits = [dict(regime="edit", edit_op=op, mask=mask, edit_fraction=0.5, decay=0.5)
             for op, mask in itertools.product(("resample", "perturb"), ("random", "disjoint", "threshold", "file"))]
    out = []
    for (T, trials), dtype, kind in itertools.product(shapes, dtypes, regimes + edits):
        config = dict(kind, T=T, d=16, generations=4, trials=trials, seed=7, dtype=dtype)
        if kind.get("mask") == "file":
            config["masks_shape"] = [config["generations"], T]
        out.append(config)
    return out


def test_every_regime_operator_and_mask_finishes():
    """CI grid (8 configurations, ~15 s on 2 idle cores, compile-bound): each regime once, the perturb
    operator (the one that hung) with every mask schedule, resample in float32; one full chunk of 1024
    trials each, split over two children. The full product is behind LINREG_FULL=1."""
    small = dict(T=64, d=8, generations=3, trials=1024, seed=7, edit_fraction=0.5, decay=0.5)
    configs = [dict(small, regime="replace", design="fresh"), dict(small, regime="accumulate"),
               dict(small, regime="accumulate-subsample"),
               dict(small, regime="edit", edit_op="resample", mask="random", dtype="float32")]
    configs += [dict(small, regime="edit", edit_op="perturb", mask=mask) for mask in ("random", "disjoint", "threshold")]
    configs += [dict(small, regime="edit", edit_op="perturb", mask="file", masks_shape=[3, 64])]
    halves = [configs[:1], configs[1:]]  # the package's flags compile about 3x slower: 1 + 7
    flags = [user_xla_flags(), os.environ.get("XLA_FLAGS", "")]  # the scheduler flag either way (jax_setup)
    with ThreadPoolExecutor(2) as pool:
        guarded = list(pool.map(lambda half, xla_flags: run_guarded(half, xla_flags=xla_flags), halves, flags))
    assert sum(len(t) for t in guarded) == len(configs)

    # The first child ran with the default code generation (a user's run), the second and this process with
    # the suite's (tests/conftest.py), which compiles faster and does not touch the scheduling the hang
    # came from: the same numbers up to rounding, and a different seed is not (negative control).
    for config, (_, child_means) in zip(halves[0], guarded[0]):
        means = run_trials(SimConfig(**config))[0].mean(axis=0)
        np.testing.assert_allclose(means, child_means, rtol=1e-12, atol=0, err_msg=str(config))
        other_seed = run_trials(SimConfig(**dict(config, seed=8)))[0].mean(axis=0)
        assert not np.allclose(other_seed, child_means, rtol=1e-6)


@pytest.mark.skipif(not FULL, reason="full hang grid: set LINREG_FULL=1 (several minutes)")
def test_full_grid_and_issue_command_finish():
    configs = grid(shapes=[(100, 1000), (256, 4096), (512, 2048)], dtypes=["float64", "float32"])
    halves = [[ISSUE_SHAPED] + configs[0::2], configs[1::2]]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda configs: run_guarded(configs, seconds=FULL_CONFIG_SECONDS), halves))


@pytest.mark.skipif(not FULL, reason="needs LINREG_FULL=1 (waits out a deadlock)")
def test_guard_catches_the_deadlock_without_the_workaround():
    """Negative control on the real bug: with the concurrency-optimised scheduler forced back on, the
    issue's configuration deadlocks (jaxlib 0.10.x on 2 cores) and the guard names it."""
    with pytest.raises(pytest.fail.Exception, match="perturb"):
        run_guarded([ISSUE_SHAPED], seconds=60.0, xla_flags="--xla_cpu_enable_concurrency_optimized_scheduler=true")


TWO_DEVICES = dict(regime="accumulate-subsample", T=100, d=10, generations=3, trials=2000, seed=7)  # 1000 per device
WITH_LAPACK = "import linreg_collapse.devices as devices\ndevices.lower_linear_algebra_with_xla = lambda: False\n"


def two_cpu_devices() -> str:
    return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"


def test_two_cpu_devices_finish_and_agree_with_one():
    """Trials sharded over 2 CPU devices on 2 cores (devices.trial_mesh): the devices' concurrent LAPACK calls
    deadlock jaxlib 0.10 (docs/xla_hang.md), so such a process lowers its linear algebra with XLA's expanders.
    It finishes, and agrees with this process's one-device run to rtol 1e-12 (rounding differs); another seed
    does not (negative control). LINREG_FULL=1 checks that the guard catches the deadlock with LAPACK."""
    (_, means), = run_guarded([TWO_DEVICES], xla_flags=two_cpu_devices())
    one_device = run_trials(SimConfig(**TWO_DEVICES))[0].mean(axis=0)
    np.testing.assert_allclose(means, one_device, rtol=1e-12, atol=0)
    other_seed = run_trials(SimConfig(**dict(TWO_DEVICES, seed=8)))[0].mean(axis=0)
    assert not np.allclose(other_seed, means, rtol=1e-6)


@pytest.mark.skipif(not FULL, reason="needs LINREG_FULL=1 (waits out a deadlock)")
def test_guard_catches_the_two_device_deadlock_with_lapack():
    """Negative control on the real bug: 2 CPU devices keeping jaxlib's LAPACK calls deadlock."""
    with pytest.raises(pytest.fail.Exception, match="accumulate-subsample"):
        run_guarded([TWO_DEVICES], script=WITH_LAPACK + CHILD, seconds=60.0, xla_flags=two_cpu_devices())


def test_guard_names_a_blocking_configuration():
    """Negative control: a child that blocks is reported (by its configuration), not waited for."""
    blocking = "import sys, time\nfor line in sys.stdin:\n    print('start', line.strip(), flush=True)\n    time.sleep(60)\n"
    with pytest.raises(pytest.fail.Exception, match=r"no progress for 1 s .*\{\"blocks\": true\}"):
        run_guarded([{"blocks": True}], script=blocking, seconds=1.0)
