"""The slice size of a sweep's devices (eri_jax/sweep/slices.py): groups side by side where padding would waste."""
from __future__ import annotations

import pytest

from eri_jax.sweep.slices import group_units, makespan, slice_size


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
def test_slice_size(devices, groups, expected):
    assert slice_size(devices, groups) == expected


def test_several_processes_keep_one_mesh():
    assert slice_size(8, [[3]] * 8, processes=2) == 8


def test_makespan_puts_long_groups_first():
    # groups of 4, 1, 1, 1, 1 runs on 2 one-device slices: 4 | 1+1+1+1 = 4 units, not 5
    assert makespan([[4], [1], [1], [1], [1]], 2, 1) == 4
