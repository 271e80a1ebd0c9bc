"""Fold assignment for cross-fitting: each train clip gets one of K folds, fixed by a seed.

The clips are dealt round-robin in an order drawn from `default_rng(SeedSequence([seed, FOLD_STREAM]))`
over the sorted IDs, so fold sizes differ by at most one and the assignment depends only on the set
of IDs, K and the seed (not on the order the dataset stores them in).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FOLD_STREAM = 0x464F4C44  # separates the fold draw from other uses of the same seed


def assign_folds(ids: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """int64 [N]: the fold (0..folds-1) of each clip of `ids`, in the order given.

    ValueError for folds < 2, more folds than clips, or a repeated ID.
    """
    ids = [str(i) for i in ids]
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    if folds > len(ids):
        raise ValueError(f"{folds} folds for {len(ids)} clips: every fold needs at least one clip")
    if len(set(ids)) != len(ids):
        raise ValueError("clip IDs repeat; a fold assignment needs distinct IDs")
    order = np.argsort(np.array(ids, dtype=str), kind="stable")  # sorted IDs -> positions
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), FOLD_STREAM]))
    dealt = order[rng.permutation(len(ids))]
    out = np.empty(len(ids), np.int64)
    out[dealt] = np.arange(len(ids)) % folds
    return out
