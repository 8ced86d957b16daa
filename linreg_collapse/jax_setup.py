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

:func:`prefer_fast_compiles` is a command's choice, not applied on import: ``verify`` compiles its programs
for a short compile rather than a fast run (see there). :func:`lower_linear_algebra_with_xla` is the same
deadlock's other side, for processes that partition CPU programs over several devices (see there).
:func:`unroll_threefry_on_cpu` is a speed setting that :mod:`.simulate` and :mod:`.lm.train` apply when imported
(except under the classic emitters, where it would slow compiles down).
"""

from __future__ import annotations

import os
import sys
from typing import Callable, MutableMapping

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
OPT_LEVEL_FLAG = "--xla_backend_optimization_level"
FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")


def configure_xla(environ: MutableMapping[str, str] = os.environ) -> None:
    """Append ``SCHEDULER_FLAG=false`` and ``OPT_LEVEL_FLAG=1`` to ``XLA_FLAGS``, each unless it already
    sets that flag.

    Takes effect only if JAX's CPU backend has not been created yet in this process (XLA reads
    ``XLA_FLAGS`` once); importing :mod:`linreg_collapse` first guarantees that.
    """
    _add_missing(environ, (f"{SCHEDULER_FLAG}=false", f"{OPT_LEVEL_FLAG}=1"))


def prefer_fast_compiles(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Append ``FAST_COMPILE_FLAGS`` (XLA's classic elemental emitters instead of the MLIR fusion emitters,
    and LLVM level 1 where no level is set) to ``XLA_FLAGS``, each unless the flags already set it, and only
    while JAX is not imported (a process that has imported it keeps the flags it started with); returns
    whether it did.

    For commands whose programs compile for longer than they run (``verify``: 2-3 s of compiling against
    well under a second of running per program): at level 1 the classic emitters take about 25% less
    compile CPU (edit-resample and fresh accumulate at T = 30, d = 5), running 20-30% longer (BENCHMARKS.md,
    "verify"). At level 2 they would compile 2-4x slower, hence the level. No fast-math either way: the same
    IEEE operations, results equal to the default flags' to rounding. JAX hashes ``XLA_FLAGS`` into its
    persistent-cache keys, so programs compiled with these flags never serve a command run with the default
    ones.
    """
    return "jax" not in sys.modules and _add_missing(environ, FAST_COMPILE_FLAGS)


def _add_missing(environ: MutableMapping[str, str], settings: tuple[str, ...]) -> bool:
    """Append each ``--flag=value`` of ``settings`` to ``XLA_FLAGS`` unless it already names that flag (a
    user's own choice wins); returns whether any was added."""
    flags = environ.get("XLA_FLAGS", "")
    added = [setting for setting in settings if setting.split("=")[0] not in flags]
    environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    return bool(added)


def lower_linear_algebra_with_xla() -> bool:
    """Lower Cholesky factorisations and triangular solves on CPU with XLA's own expanders (the HLO
    ``cholesky`` and ``triangular_solve`` ops, loops of ordinary XLA operations) instead of jaxlib's LAPACK
    calls, for every CPU program this process compiles from now on; returns whether it could.

    For a process that partitions its programs over several CPU devices (:func:`.devices.trial_mesh`). The
    devices' executions share one intra-op thread pool (one thread per core), and jaxlib 0.10's LAPACK
    kernels split a batch whose work reaches 2e5 (batch x n^3 / 3 for a Cholesky) into pieces on that pool
    and block their thread until the pieces are done. Once as many calls block as the pool has threads,
    nothing is left to run the pieces: 2 CPU devices on 2 cores deadlock (accumulate-subsample, T = 100,
    d = 10, from 250 trials per device; docs/xla_hang.md). The scheduler flag of :func:`configure_xla` cannot
    help: the concurrent calls are in different devices' executions. The expanders compute the same
    factorisation without blocking; rounding differs, so a run on several devices agrees with a one-device run
    to rtol 1e-12, not bit for bit.

    The rules come from JAX's private lowering table (``jax._src``); if they move, this returns False and
    LAPACK stays.
    """
    def rules():
        from jax._src.lax import linalg
        return ((linalg.cholesky_p, linalg._cholesky_lowering),
                (linalg.triangular_solve_p, linalg._triangular_solve_lowering))

    return _lower_on_cpu_with(rules)


def unroll_threefry_on_cpu(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Lower the Threefry-2x32 hash behind every ``jax.random`` draw on CPU as straight-line code (JAX's rule
    for GPUs) instead of JAX's CPU rule, a ``fori_loop`` over its 5 groups of 4 rounds; returns whether it did.

    The same 20 rounds on the same words, so every draw is the same bit for bit. Unrolled, XLA's fusion
    emitters fuse the hash with its consumer into one vectorised loop instead of 5 passes over the counters
    through memory: a 64-bit word costs 2.5 ns instead of 11.6 ns on the 2-core Xeon, and the simulator's
    programs run 9-18% faster at about the same compile time (benchmarks/bench_threefry.py; BENCHMARKS.md,
    "sixth landing"). Programs lowered from now on use it.

    Not under XLA's classic emitters (``--xla_cpu_use_fusion_emitters=false`` in ``XLA_FLAGS``: the fast
    compiles of ``verify`` and the test suite), which compile the unrolled hash 1.2-2.7x slower; JAX's rule
    stays. The rule comes from JAX's private lowering table (``jax._src``); if it moves, this returns False
    and JAX's own CPU rule stays.
    """
    if "--xla_cpu_use_fusion_emitters=false" in environ.get("XLA_FLAGS", "").split():
        return False

    def rules():
        from jax._src.random import threefry2x32
        return ((threefry2x32.threefry2x32_p, threefry2x32._threefry2x32_lowering_rule),)

    return _lower_on_cpu_with(rules)


def _lower_on_cpu_with(rules: Callable[[], tuple]) -> bool:
    """Register ``rules()``, (primitive, lowering rule) pairs looked up in JAX's private modules, for the CPU
    platform; False, registering nothing, when a name has moved."""
    try:
        from jax._src.interpreters import mlir
        pairs = rules()
    except (ImportError, AttributeError):
        return False
    for primitive, rule in pairs:
        mlir.register_lowering(primitive, rule, platform="cpu")
    return True
