"""A dataset whose train split is a subset of its clips, handed to `eri_jax.train.train` as its reader.

`SplitView.train_only(ids)` is a `train.SplitReader`: the train split restricted to `ids` and the other
splits whole, from splits read once and kept in memory. `train(cfg, read_split=...)` then trains a fold
itself, every setting of the run applied as in the run (standardiser and output bias fit on the fold's
rows, LR schedule from the fold's steps per epoch, shuffling, checkpoints, best epoch on dev), without a
second copy of the training loop.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from eri_jax.inputs import dataset as data_mod
from eri_jax.inputs.dataset import SplitData


def take_rows(data: SplitData, rows: np.ndarray) -> SplitData:
    """The rows `rows` (int indices, in that order) of a loaded split, every per-clip array subset."""
    def sub(d):
        return {k: np.asarray(v)[rows] for k, v in d.items()}
    return SplitData(split=data.split, ids=np.asarray(data.ids)[rows], labels=np.asarray(data.labels)[rows],
                     features=sub(data.features), frame_masks=sub(data.frame_masks), missing=sub(data.missing),
                     emotions=list(data.emotions), texts=sub(data.texts))


class SplitView:
    """The splits of dataset `name` (in `data_dir`) with `features`, read once; see the module docstring."""

    def __init__(self, name: str, data_dir: str | None, features: Sequence[str]):
        self.name, self.data_dir, self.features = name, data_dir, list(features)
        self._cache: dict[str, SplitData] = {}

    def raw(self, split: str) -> SplitData:
        """The whole split as `load_split` returns it (read on first use)."""
        if split not in self._cache:
            self._cache[split] = data_mod.load_split(split, self.features, name=self.name, data_dir=self.data_dir)
        return self._cache[split]

    def train_only(self, ids: Iterable[str]) -> Callable[[str], SplitData]:
        """A split reader whose train split holds only the clips `ids` (in dataset order)."""
        train = self.raw("train")
        keep = set(map(str, ids))
        rows = np.flatnonzero([str(i) in keep for i in train.ids])
        unknown = keep - {str(i) for i in train.ids}
        if unknown:
            raise ValueError(f"{len(unknown)} clip(s) are not in the train split of {self.name}, e.g. "
                             f"{sorted(unknown)[:3]}")
        subset = take_rows(train, rows)
        return lambda split: subset if split == "train" else self.raw(split)
