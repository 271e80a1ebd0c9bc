"""Data parallelism over the devices: the batch is split along its first axis, the state replicated.

One mesh axis, `data`, over every device of every process (or the ones given). With one device this is
the plain single-device program; with several, `jax.jit` inserts the gradient all-reduce itself because
the loss is a mean over the global batch. Over several processes (training/processes.py) every process
reads the whole dataset and forms the same global batches (same seeded shuffle); `shard_batch` keeps the
rows of its own devices, and predictions come back whole (replicated) to every process.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named `data` over `devices` (default: every device of every process)."""
    devices = list(devices) if devices is not None else jax.devices()
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array (parameters, optimizer state)."""
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """The first axis is split over the `data` axis (examples of a batch)."""
    return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """The batch must split evenly over the devices; ValueError saying what would work otherwise."""
    n = mesh.devices.size
    if batch_size % n:
        raise ValueError(f"batch size {batch_size} does not split over {n} devices; "
                         f"use a multiple of {n} (e.g. {batch_size + n - batch_size % n})")


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put every array of `tree` on all devices of `mesh` (every process passes the same values)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, replicated(mesh))
    # A mesh over several processes takes host values only (jax.device_put refuses an array already on one
    # device); PRNG key arrays travel as their key data.
    sharding = replicated(mesh)

    def put(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(leaf)), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        return jax.device_put(np.asarray(leaf), sharding)

    return jax.tree.map(put, tree)


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Put each array of a batch (leading axis = examples) on the devices, split along that axis.

    `batch` is the global batch, the same in every process; each process places its devices' rows.
    """
    return jax.device_put(batch, batch_sharded(mesh))
