"""Which devices train which group: the device list cut into equal slices, groups run side by side on them.

A group (runs of one input shape) splits its runs over the devices of one mesh, padded to a multiple of
its size. A group smaller than the device count would leave most devices training padding (Table 6: 8
modality sets of 3 seeds each; on 8 GPUs each set alone would train 3 runs and 5 copies), so the devices
are cut into `n` slices of `s` devices and up to `n` groups train at once, one per slice.

The slice size is chosen by a cost model counted in run-epochs per device ("units"): a group takes
ceil(runs / s) units on a slice of s devices (per chunk, `--chunk`), groups go to the first free slice
longest-first, and the size with the shortest makespan wins (the larger size on a tie: fewer programs
to compile, less padding). It assumes that k runs vmapped on one device take k times one run's time,
which is the case once one run fills the device (paper-size ViPER on a GPU) and pessimistic otherwise.

Over several processes every slice would have to be driven by every process in the same order, so there
the devices stay one mesh (one slice) and groups run one after another.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Sequence


def group_units(chunk_sizes: Sequence[int], slice_size: int) -> int:
    """Run-epochs per device of a group whose chunks have `chunk_sizes` runs, on `slice_size` devices."""
    return sum(math.ceil(n / slice_size) for n in chunk_sizes)


def makespan(groups: Sequence[Sequence[int]], devices: int, slice_size: int) -> int:
    """Units until every group is done on devices // slice_size slices (longest group first, first free slice)."""
    free = [0] * (devices // slice_size)
    for units in sorted((group_units(g, slice_size) for g in groups), reverse=True):
        heapq.heappush(free, heapq.heappop(free) + units)
    return max(free)


def slice_size(devices: int, groups: Sequence[Sequence[int]], *, processes: int = 1) -> int:
    """The number of devices per slice (a divisor of `devices`) for groups of these chunk sizes."""
    if processes > 1 or devices <= 1 or len(groups) <= 1:
        return devices
    sizes = [s for s in range(devices, 0, -1) if devices % s == 0]  # largest first: it wins a tie
    return min(sizes, key=lambda s: makespan(groups, devices, s))
