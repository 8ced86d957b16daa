"""JAX's persistent compilation cache for every command, so a rerun loads compiled programs from disk.

Location: ``$LINREG_COLLAPSE_JAX_CACHE`` if set, else ``$XDG_CACHE_HOME/linreg-collapse/jax`` (default
``~/.cache/linreg-collapse/jax``); ``LINREG_COLLAPSE_JAX_CACHE=off`` disables it. A cache directory already
chosen for JAX itself (``JAX_COMPILATION_CACHE_DIR``) is left as it is, and so is a process that has
already imported JAX (tests, notebooks). The cache holds compiled code that JAX runs: keep it in a
directory only you can write to.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

ENV = "LINREG_COLLAPSE_JAX_CACHE"
OFF = ("off", "0", "false", "no", "none")
# Programs that compile faster than this are not written (JAX's default is 1 s; the simulator's programs
# take 0.3-4 s on a CPU, eager helper ops a few ms).
MIN_COMPILE_SECONDS = 0.2


def cache_dir() -> Optional[Path]:
    """The cache directory these settings choose, or None when the cache is disabled."""
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in OFF:
        return None
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "linreg-collapse" / "jax"


def enable_compilation_cache() -> Optional[str]:
    """Point JAX's persistent compilation cache at :func:`cache_dir` through JAX's environment variables
    and return the directory in use (None: off).

    Call it before JAX is imported (the CLI does, first thing): JAX reads these variables on import. A
    process that has already imported JAX keeps the settings it has.
    """
    if "jax" in sys.modules:
        import jax

        return jax.config.jax_compilation_cache_dir
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    path = cache_dir()
    if path is not None:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_COMPILE_SECONDS))
    return None if path is None else str(path)
