"""Session-wide compile settings: every process the suite starts compiles each program once, quickly.

Most of the suite's time is XLA compiling simulator programs, often the same program again in another
process (the pytest-xdist workers, CLI subprocesses, notebook kernels). Before anything imports JAX,
this file sets two things in the environment, which the workers and every child process inherit:

* **One compilation cache per session.** JAX's persistent compilation cache points at a new, empty
  temporary directory, removed when the session ends. Results never come from an earlier session or
  from the user's cache in ~/.cache. A program loaded from it is the one the compiler produced.
* **LLVM optimisation level 0** (``--xla_backend_optimization_level=0``): compiling takes about half
  the CPU time. XLA does not enable fast-math, so the arithmetic is the same IEEE operations; only the
  machine code differs, and results agree with the default level to rounding (a few ulp).
  ``tests/test_no_hang.py`` checks exactly that and runs its guard with the default level.

Set ``JAX_COMPILATION_CACHE_DIR`` yourself to keep the cache in another directory, or put your own
``--xla_backend_optimization_level`` in ``XLA_FLAGS`` to test at another level.
"""

from __future__ import annotations

import os
import shutil
import tempfile

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
TEST_OPT_LEVEL = "--xla_backend_optimization_level=0"

if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_OPT_LEVEL}".strip()

_OWNED_CACHE = None
if CACHE_ENV not in os.environ:  # the controller (or a plain run) creates it; xdist workers inherit it
    _OWNED_CACHE = tempfile.mkdtemp(prefix="linreg-test-jax-cache-")
    os.environ[CACHE_ENV] = _OWNED_CACHE
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # cache every program, however quick


def pytest_unconfigure(config):
    if _OWNED_CACHE is not None:
        shutil.rmtree(_OWNED_CACHE, ignore_errors=True)
