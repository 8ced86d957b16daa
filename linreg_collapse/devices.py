"""Trials spread over every JAX device: a one-axis mesh ``"trials"`` over ``jax.devices()``.

Under ``jax.distributed.initialize()`` that is every device of every process: each process builds the
same host arrays, keeps its devices' shards of them (:func:`place`) and gets the whole result back
(:func:`gather`).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .jax_setup import lower_linear_algebra_with_xla

TRIALS = "trials"


@functools.lru_cache(maxsize=1)
def trial_mesh() -> Mesh:
    """Every visible device (all processes' under jax.distributed) on the mesh axis ``"trials"``.

    A process with several CPU devices (``--xla_force_host_platform_device_count``) lowers its linear
    algebra with XLA's expanders from here on: with jaxlib's LAPACK calls the devices' concurrent executions
    deadlock on the shared thread pool (:func:`.jax_setup.lower_linear_algebra_with_xla`)."""
    if jax.local_devices()[0].platform == "cpu" and jax.local_device_count() > 1:
        lower_linear_algebra_with_xla()
    return Mesh(np.array(jax.devices()), (TRIALS,))


def place(array: np.ndarray, mesh: Mesh, spec: PartitionSpec) -> jax.Array:
    """The global array ``array`` laid out by ``spec`` on ``mesh``, each device holding its own shard."""
    return jax.make_array_from_callback(array.shape, NamedSharding(mesh, spec), lambda index: array[index])


def gather(array: jax.Array) -> np.ndarray:
    """A (possibly sharded, possibly multi-process) array as one NumPy array on every process."""
    if jax.process_count() > 1:
        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(array)


def describe(mesh: Mesh) -> dict:
    """JSON-ready: platform, device count and kinds, process count."""
    devices = mesh.devices.ravel().tolist()
    return {"platform": devices[0].platform, "count": len(devices), "processes": jax.process_count(),
            "kinds": sorted({d.device_kind for d in devices})}
