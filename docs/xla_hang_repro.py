"""Stand-alone reproducer of the jaxlib 0.10 CPU deadlock behind `simulate` hanging (see docs/xla_hang.md).

What it shows: a vmapped program whose batched LAPACK calls (here ``jnp.linalg.solve`` on 1024 16 x 16
systems: ``lapack_sgetrf_ffi`` / ``lapack_strsm_ffi``) run in two *independent* branches -- a solve before a
``lax.scan`` whose loop does not read its result, and the solves inside the loop -- deadlocks on a
2-core CPU. jaxlib >= 0.10.0 splits a large batch over XLA's intra-op thread pool (``jax::ParallelBatchMap``)
and blocks the calling thread until the pieces finish; when XLA's thunk executor runs both branches on the
pool's two threads at once, each blocks waiting for pieces queued behind the other: every thread sleeps on a
futex forever.

Run (safe: a watchdog ends the process after ``--seconds``, exit status 1 on deadlock)::

    python docs/xla_hang_repro.py                # jaxlib 0.10.0-0.10.2 on 2 cores: "DEADLOCK"
    python docs/xla_hang_repro.py --workaround   # the package's XLA flag: "finished"

``--batch 768`` (below jaxlib's split threshold) or jax/jaxlib 0.9.2 (no batch splitting) finish too;
``taskset -c 0`` does not help here (the pool is still sized from the machine's 2 CPUs).
"""

import argparse
import os
import threading
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--batch", type=int, default=1024, help="systems per LAPACK call (default 1024)")
parser.add_argument("--calls", type=int, default=20, help="calls of the compiled program (default 20)")
parser.add_argument("--seconds", type=float, default=20.0, help="watchdog after compilation (default 20)")
parser.add_argument("--workaround", action="store_true",
                    help="set XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false first")
args = parser.parse_args()
if args.workaround:
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_concurrency_optimized_scheduler=false"

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402

T, d, generations = 256, 16, 8


def one(s):
    X = jnp.sin(s * jnp.arange(T * d, dtype=jnp.float32)).reshape(T, d)
    gram = X.T @ X
    y = jnp.cos(s * jnp.arange(T, dtype=jnp.float32))
    first = jnp.linalg.solve(gram, X.T @ y)  # branch 1: the loop below never reads it

    def body(y, n):
        y = y + jnp.sin(n * y)
        return y, jnp.linalg.solve(gram, X.T @ y)  # branch 2

    _, later = jax.lax.scan(body, y, jnp.arange(1.0, generations + 1))
    return jnp.concatenate([first[None], later])


run = jax.jit(jax.vmap(one))
s = jnp.linspace(0.1, 1.0, args.batch)
compiled = run.lower(s).compile()
finished = threading.Event()


def calls():
    for _ in range(args.calls):
        jax.block_until_ready(compiled(s))
    finished.set()


print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}, "
      f"batch {args.batch}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
start = time.time()
threading.Thread(target=calls, daemon=True).start()
ok = finished.wait(args.seconds)
print(f"{'finished' if ok else 'DEADLOCK'} after {time.time() - start:.2f} s ({args.calls} calls)", flush=True)
os._exit(0 if ok else 1)  # a deadlocked XLA thread would block a normal interpreter exit
