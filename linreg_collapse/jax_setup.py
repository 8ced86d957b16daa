"""Process-wide XLA settings the package needs; applied on import, before JAX builds its CPU backend.

jaxlib 0.10 splits a large batch of small LAPACK problems (Cholesky, triangular and LU solves of the
vmapped trials) over XLA's intra-op thread pool and blocks its thread until the pieces finish. When
XLA's concurrency-optimised scheduler lets two such calls run at once on a 2-thread pool, each waits
for pieces queued behind the other and the run deadlocks (docs/xla_hang.md, docs/xla_hang_repro.py).
The memory-optimised scheduler orders the same kernels differently -- identical numbers -- and does
not deadlock; it is chosen unless the user's own ``XLA_FLAGS`` already decides the scheduler.
"""

from __future__ import annotations

import os
from typing import MutableMapping

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def configure_xla(environ: MutableMapping[str, str] = os.environ) -> None:
    """Append ``SCHEDULER_FLAG=false`` to ``XLA_FLAGS`` unless it already sets that flag.

    Takes effect only if JAX's CPU backend has not been created yet in this process (XLA reads
    ``XLA_FLAGS`` once); importing :mod:`linreg_collapse` first guarantees that.
    """
    flags = environ.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG not in flags:
        environ["XLA_FLAGS"] = f"{flags} {SCHEDULER_FLAG}=false".strip()
