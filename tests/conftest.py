"""Session-wide compile settings: every process the suite starts compiles each program once, quickly.

Most of the suite's time is XLA compiling simulator programs, often the same program again in another
process (the pytest-xdist workers, CLI subprocesses, notebook kernels). Before anything imports JAX,
this file sets two things in the environment, which the workers and every child process inherit:

* **One compilation cache per session.** JAX's persistent compilation cache points at a new, empty
  temporary directory, removed when the session ends. Results never come from an earlier session or
  from the user's cache in ~/.cache. A program loaded from it is the one the compiler produced.
* **Cheap code generation** (``TEST_COMPILE_FLAGS``): LLVM optimisation level 0
  (``--xla_backend_optimization_level=0``) and XLA's classic elemental emitters instead of the MLIR
  fusion emitters (``--xla_cpu_use_fusion_emitters=false``). Each halves the compile CPU time of a
  simulator program at level 0 (together about a fifth of XLA's default). Programs then run 3-5x
  slower, which the suite's small shapes do not notice; a user's run keeps the package's flags
  (``jax_setup``: level 1, fusion emitters, which run at full speed). XLA enables no fast-math either way, so the arithmetic
  is the same IEEE operations; only the machine code differs, and results agree with the default flags to
  rounding (a few ulp). ``tests/test_no_hang.py`` checks exactly that and runs its guard with the
  default flags.

Set ``JAX_COMPILATION_CACHE_DIR`` yourself to keep the cache in another directory, or put your own
``--xla_backend_optimization_level`` (or emitter flag) in ``XLA_FLAGS`` to test with other code generation.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
TEST_COMPILE_FLAGS = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")

for _flag in TEST_COMPILE_FLAGS:  # a flag the user already set keeps the user's value
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()

_OWNED_CACHE = None
if CACHE_ENV not in os.environ:  # the controller (or a plain run) creates it; xdist workers inherit it
    _OWNED_CACHE = tempfile.mkdtemp(prefix="linreg-test-jax-cache-")
    os.environ[CACHE_ENV] = _OWNED_CACHE
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # cache every program, however quick


# Scheduling over the xdist workers (``--dist loadgroup --no-loadscope-reorder`` in pyproject.toml): the tests
# of a module run on one worker, so its module fixtures are built once, except SPREAD modules, whose tests share
# nothing and run wherever a worker is free. Scopes start in collection order, which puts the longest first
# (FIRST, measured with ``--durations``), so the two workers finish together rather than one waiting on a long
# module that started last. The notebooks come after the figures: their small configurations are the
# figures' test shapes, so by then their programs are in the session's compilation cache.
SPREAD = ("test_notebooks.py",)
FIRST = ("test_figures.py", "test_mutants.py", "test_no_hang.py", "test_lm_cli.py", "test_notebooks.py")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order otherwise


def pytest_unconfigure(config):
    if _OWNED_CACHE is not None:
        shutil.rmtree(_OWNED_CACHE, ignore_errors=True)
