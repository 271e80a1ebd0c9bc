"""Which devices train which group: the devices cut into equal slices, groups run side by side on them.

A group (runs of one input shape) splits its runs over the devices of one mesh, padded to a multiple of
its size. A group smaller than the device count would leave most devices training padding (Table 6: 8
modality sets of 3 seeds each; on 8 GPUs each set alone would train 3 runs and 5 copies), so the devices
are cut into slices of `s` devices and groups train at once, one per slice.

The plan is chosen by a cost model counted in run-epochs per device ("units"): a group takes
ceil(runs / s) units on a slice of s devices (per chunk, `--chunk`), groups go to the first free slice
longest-first, and the plan with the shortest makespan wins. It assumes that k runs vmapped on one device
take k times one run's time, which is the case once one run fills the device (paper-size ViPER on a GPU)
and pessimistic otherwise.

Over several processes a slice never spans two of them: each process trains its own groups on its own
devices (no collective while training) and the results are shared afterwards (`share`). The alternative,
every group on one mesh over all processes' devices (as with one slice), is kept where it is as quick
(one group bigger than a host's devices, e.g.); a tie keeps the larger slices: fewer programs to compile.
"""
from __future__ import annotations

import dataclasses
import heapq
import math
import pickle
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np


def group_units(chunk_sizes: Sequence[int], slice_size: int) -> int:
    """Run-epochs per device of a group whose chunks have `chunk_sizes` runs, on `slice_size` devices."""
    return sum(math.ceil(n / slice_size) for n in chunk_sizes)


def makespan(groups: Sequence[Sequence[int]], devices: int, slice_size: int) -> int:
    """Units until every group is done on devices // slice_size slices (longest group first, first free slice)."""
    free = [0] * (devices // slice_size)
    for units in sorted((group_units(g, slice_size) for g in groups), reverse=True):
        heapq.heappush(free, heapq.heappop(free) + units)
    return max(free)


@dataclasses.dataclass(frozen=True)
class Plan:
    """`size` devices per slice; `owners[g]`: the process that trains group g (None: every process, on
    the one mesh over all devices)."""

    size: int
    owners: tuple[int | None, ...]


def plan(local_devices: int, groups: Sequence[Sequence[int]], *, processes: int = 1) -> Plan:
    """How `processes` processes of `local_devices` devices each train groups of these chunk sizes."""
    total = local_devices * processes
    best = Plan(total, (None,) * len(groups))
    best_cost = makespan(groups, total, total)
    if len(groups) <= 1:
        return best
    for size in (s for s in range(local_devices, 0, -1) if local_devices % s == 0):
        cost = makespan(groups, total, size)
        if cost < best_cost:
            per_process = local_devices // size
            best_cost, best = cost, Plan(size, tuple(k // per_process for k in schedule(groups, total, size)))
    return best


def schedule(groups: Sequence[Sequence[int]], devices: int, slice_size: int) -> list[int]:
    """The slice (0 ..) each group trains on, longest group first onto the first free slice (as `makespan`)."""
    free = [(0, k) for k in range(devices // slice_size)]
    out = [0] * len(groups)
    for g in sorted(range(len(groups)), key=lambda g: -group_units(groups[g], slice_size)):
        t, k = heapq.heappop(free)
        out[g] = k
        heapq.heappush(free, (t + group_units(groups[g], slice_size), k))
    return out


def share(obj: Any, owner: int) -> Any:
    """`obj` of process `owner`, in every process (every process calls this, in the same order).

    Pickled and broadcast over the devices (`multihost_utils.broadcast_one_to_all`): no shared
    filesystem needed. The byte buffer is padded to a power of two, so few programs are compiled.
    """
    from jax.experimental import multihost_utils  # deferred: only runs over several processes

    mine = jax.process_index() == owner
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL) if mine else b""
    n = int(multihost_utils.broadcast_one_to_all(np.int64(len(data)), is_source=mine))
    buf = np.zeros(1 << max(10, (n - 1).bit_length()), np.uint8)
    if mine:
        buf[:n] = np.frombuffer(data, np.uint8)
    buf = np.asarray(multihost_utils.broadcast_one_to_all(buf, is_source=mine))
    return obj if mine else pickle.loads(buf[:n].tobytes())
