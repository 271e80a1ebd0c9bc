"""Data parallelism over the local devices: the batch is split along its first axis, the state replicated.

One mesh axis, `data`, over all local devices (or the ones given). With one device this is the plain
single-device program; with several, `jax.jit` inserts the gradient all-reduce itself because the loss
is a mean over the global batch.
"""
from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named `data` over `devices` (default: all local devices)."""
    devices = list(devices) if devices is not None else jax.local_devices()
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
    """Put every array of `tree` on all devices of `mesh`."""
    return jax.device_put(tree, replicated(mesh))


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Put each array of a batch (leading axis = examples) on the devices, split along that axis."""
    return jax.device_put(batch, batch_sharded(mesh))
