"""Process-wide XLA settings the package needs; applied on import, before JAX builds its CPU backend.

jaxlib 0.10 splits a large batch of small LAPACK problems (Cholesky, triangular and LU solves of the
vmapped trials) over XLA's intra-op thread pool and blocks its thread until the pieces finish. When
XLA's concurrency-optimised scheduler lets two such calls run at once on a 2-thread pool, each waits
for pieces queued behind the other and the run deadlocks (docs/xla_hang.md, docs/xla_hang_repro.py).
The memory-optimised scheduler orders the same kernels differently -- identical numbers -- and does
not deadlock; it is chosen unless the user's own ``XLA_FLAGS`` already decides the scheduler.

LLVM optimisation level 1 (XLA's default is 2) for the same reason as a short start: it halves the CPU
time of compiling the simulator's programs (6.2 -> 2.9 s for replace with the stats sampler at T = 100,
d = 10), their results are bit for bit the same (XLA enables no fast-math at either level) and their run
time is unchanged within noise (benchmarks/bench_peer.py, BENCHMARKS.md "Issue 11, fourth landing").
A level already in ``XLA_FLAGS`` (the test suite's 0, say) is kept.
"""

from __future__ import annotations

import os
from typing import MutableMapping

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
OPT_LEVEL_FLAG = "--xla_backend_optimization_level"


def configure_xla(environ: MutableMapping[str, str] = os.environ) -> None:
    """Append ``SCHEDULER_FLAG=false`` and ``OPT_LEVEL_FLAG=1`` to ``XLA_FLAGS``, each unless it already
    sets that flag.

    Takes effect only if JAX's CPU backend has not been created yet in this process (XLA reads
    ``XLA_FLAGS`` once); importing :mod:`linreg_collapse` first guarantees that.
    """
    flags = environ.get("XLA_FLAGS", "")
    for flag, value in ((SCHEDULER_FLAG, "false"), (OPT_LEVEL_FLAG, "1")):
        if flag not in flags:
            flags = f"{flags} {flag}={value}".strip()
    environ["XLA_FLAGS"] = flags
