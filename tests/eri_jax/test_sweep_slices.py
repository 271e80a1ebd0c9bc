"""The plan of a sweep's devices (eri_jax/sweep/slices.py): groups side by side on slices where padding would
waste devices, per host over several processes."""
from __future__ import annotations

import pytest

from eri_jax.sweep.slices import Plan, group_units, makespan, plan, schedule


def test_units_count_padding_per_chunk():
    assert group_units([3], 8) == 1 and group_units([3], 1) == 3 and group_units([3], 2) == 2
    assert group_units([4, 2], 4) == 2  # chunks are padded one by one


@pytest.mark.parametrize("devices, groups, expected", [
    (8, [[3]] * 8, 1),     # Table 6 on 8 GPUs: each modality set on its own GPU, 3 units instead of 8
    (64, [[3]] * 8, 8),    # on 64 GPUs: each set on 8 GPUs (1 unit; smaller slices cannot beat it)
    (4, [[6]], 4),         # one group: all devices (runs padded to 8), as before slicing existed
    (4, [[2]] * 4, 2),     # a tie (2 units either way): the larger slice, fewer programs to compile
    (4, [[1]] * 4, 1),
    (1, [[3]] * 8, 1),
    (6, [[3]] * 2, 3),     # 6 devices is not a power of two: 2 slices of 3
])
def test_slice_size_in_one_process(devices, groups, expected):
    p = plan(devices, groups)
    assert p.size == expected
    assert p.owners == ((None,) * len(groups) if expected == devices else (0,) * len(groups))


def test_several_processes_train_their_own_groups():
    # Table 6 on 8 hosts of 8 GPUs: one set per host (its 8 GPUs), not every set on all 64 one after another
    p = plan(8, [[3]] * 8, processes=8)
    assert p.size == 8 and sorted(p.owners) == list(range(8))
    # 2 processes of 2 devices, 4 groups of 1 run: one group per device, two per process
    p = plan(2, [[1]] * 4, processes=2)
    assert p.size == 1 and sorted(p.owners) == [0, 0, 1, 1]
    # one group of 6 runs: split over all 4 devices of both processes (2 units) rather than 2 of them (3)
    assert plan(2, [[6]], processes=2) == Plan(4, (None,))


def test_schedule_matches_the_makespan():
    groups = [[4], [1], [1], [1], [1]]
    slots = schedule(groups, 2, 1)
    load = [sum(group_units(g, 1) for g, k in zip(groups, slots) if k == s) for s in (0, 1)]
    assert max(load) == makespan(groups, 2, 1) == 4


def test_makespan_puts_long_groups_first():
    # groups of 4, 1, 1, 1, 1 runs on 2 one-device slices: 4 | 1+1+1+1 = 4 units, not 5
    assert makespan([[4], [1], [1], [1], [1]], 2, 1) == 4
