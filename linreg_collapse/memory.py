"""Memory a simulation needs against memory available: decided before anything is compiled.

The simulator's peak is one chunk of trials at a time (:mod:`.simulate`), and a chunk's peak is B times
the peak of one trial. For one trial (floats of the run's dtype, G = generations, P = (G + 1) T the
accumulate-subsample pool), calibrated on XLA's own accounting of the compiled program
(``jax.jit(...).lower(...).compile().memory_analysis()``: arguments + outputs + temporaries) and checked
within a factor 2 in tests/test_memory.py:

* generation 0 (replace, accumulate, edit): the design drawn flat and scaled, its Gram factor and the scan's
  carried state: about 5 T d + 1.3 T (fresh designs 5.25 T d, redrawn every generation); under the stats
  sampler a fixed design's X and its factor only, about T d + T, and nothing of T for a fresh one;
* accumulate-subsample, fixed design: 3.2 T d + 1.45 P (the design, the pooled labels and the subsample
  draw's int32 table over the pool); fresh design: 5.25 T d + (d + 3.25) P (the pooled rows too).

A float32 trial takes about 0.6 of the bytes of the same trial in float64, not 0.5 (XLA's accounting:
the random bits and integer indices do not halve): :data:`FLOAT32_FACTOR`.

Memory available (:func:`available_bytes`): an accelerator's free memory; on a CPU the least of the
process's address-space limit (RLIMIT_AS, less what is mapped already), its cgroup's memory.max (less
what the cgroup uses, page cache excepted) and the machine's available physical memory. The environment
variable ``LINREG_MEMORY_BYTES`` overrides it (tests, or to leave room for other work).

:func:`plan_chunk` (simulate's chunk size) and :func:`check_fits` (one configuration, for callers that
run many, e.g. sweeps) are the entry points.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Callable, Optional

from .config import SimConfig
from .errors import InputError

ENV_OVERRIDE = "LINREG_MEMORY_BYTES"
CHUNK_BYTES = 512 * 2**20  # a chunk's budget: fixed, so the chunk size (and with it XLA's program) depends
# on the configuration alone and a run's numbers are bit-identical from machine to machine ...
CHUNK_SHARE = 0.5  # ... unless this share of the memory available is smaller
FLOAT32_FACTOR = 0.6  # bytes of a float32 trial / bytes of the same trial in float64
OVERHEAD_BYTES = 1 << 20  # per chunk: parameters, keys, outputs, user masks aside


def trial_bytes(cfg: SimConfig) -> int:
    """Estimated peak bytes of one trial of ``cfg`` (module docstring)."""
    T, d, pool = cfg.T, cfg.d, (cfg.generations + 1) * cfg.T
    fresh = cfg.design == "fresh"
    floats = (5.25 * T * d + 1.25 * T) if fresh else (5.0 * T * d + 1.3 * T)
    if cfg.effective_sampler == "stats":  # X^T X and X^T Y drawn directly: X only once (fixed), never (fresh)
        floats = 0.0 if fresh else 1.0 * T * d + 1.0 * T
    if cfg.regime == "accumulate-subsample":
        floats = 5.25 * T * d + (d + 3.25) * pool if fresh else 3.2 * T * d + 1.45 * pool
    floats += 4 * d * d + 2 * cfg.generations + 64
    scale = 8 if cfg.dtype == "float64" else 8 * FLOAT32_FACTOR
    return int(floats * scale)


def chunk_bytes(cfg: SimConfig, trials: int) -> int:
    """Estimated peak bytes of one jitted call on ``trials`` trials (user masks are shared by all)."""
    masks = 0 if cfg.masks is None else cfg.masks.size * (8 if cfg.dtype == "float64" else 4)
    return trials * trial_bytes(cfg) + masks + OVERHEAD_BYTES


def available_bytes() -> tuple[int, str]:
    """(bytes available to a run, where that number comes from) (module docstring)."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        try:
            return int(float(override)), ENV_OVERRIDE
        except ValueError:
            raise InputError(f"{ENV_OVERRIDE}={override!r} must be a number of bytes") from None
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return stats["bytes_limit"] - stats.get("bytes_in_use", 0), f"{device.device_kind} memory"
    candidates = [(_physical_available(), "available physical memory")]
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        candidates.append((soft - _status_bytes("VmSize"), "the address-space limit (RLIMIT_AS)"))
    cgroup = _cgroup_available()
    if cgroup is not None:
        candidates.append((cgroup, "the cgroup's memory.max"))
    return min(candidates)


def plan_chunk(cfg: SimConfig, most: int) -> int:
    """Trials per chunk: at most ``most``, and as many as fit in :data:`CHUNK_BYTES`, or
    in :data:`CHUNK_SHARE` of the memory available when that is less, down to one; InputError
    (:func:`check_fits`) when one does not fit."""
    available, _ = check_fits(cfg)
    budget = min(CHUNK_BYTES, CHUNK_SHARE * available) - chunk_bytes(cfg, 0)
    return int(max(1, min(most, budget // trial_bytes(cfg))))


def check_fits(cfg: SimConfig, setting: Callable[[str], str] = "--{}".format) -> tuple[int, str]:
    """(bytes available, source) when one trial of ``cfg`` fits; else InputError naming the size needed,
    the size available and the settings to lower, spelled by ``setting`` (command-line flags by default;
    ``sweep`` names its grid keys)."""
    available, source = available_bytes()
    needed = chunk_bytes(cfg, 1)
    if needed > available:
        flags = f"{setting('T')} or {setting('d')}"
        flags += f", or {setting('generations')}" if cfg.regime == "accumulate-subsample" else ""
        if cfg.dtype == "float64":
            flags += f" (or use {setting('dtype')} float32)"
        raise InputError(f"one trial needs about {format_bytes(needed)} (T={cfg.T}, d={cfg.d}, "
                         f"{cfg.generations} generations, {cfg.dtype}) but {format_bytes(available)} is "
                         f"available ({source}): lower {flags}")
    return available, source


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units: 1.5 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _physical_available() -> int:
    meminfo = _read_kib_fields(Path("/proc/meminfo"))
    if "MemAvailable" in meminfo:
        return meminfo["MemAvailable"]
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _status_bytes(field: str) -> int:
    return _read_kib_fields(Path("/proc/self/status")).get(field, 0)


def _read_kib_fields(path: Path) -> dict[str, int]:
    """``Name: value kB`` lines of a /proc file, in bytes (empty where the file is missing)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def _cgroup_available() -> Optional[int]:
    """memory.max - memory.current + inactive page cache of this process's cgroup (v2), None when unlimited."""
    try:
        relative = Path("/proc/self/cgroup").read_text().strip().splitlines()[0].split("::", 1)[1]
        root = Path("/sys/fs/cgroup") / relative.lstrip("/")
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        stat = dict(line.split() for line in (root / "memory.stat").read_text().splitlines())
        current = int((root / "memory.current").read_text())
        return int(limit) - current + int(stat.get("inactive_file", 0))
    except (OSError, IndexError, ValueError):
        return None
