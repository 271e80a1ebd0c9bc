"""A run's model inputs: its splits assembled from the dataset, the jit-facing batch dict, predictions."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from eri_jax.inputs import assembly as feats
from eri_jax.training import sharding as shd
from eri_jax.training.config import TrainConfig

# (split name) -> the raw split (`eri_jax.inputs.dataset.SplitData`) with the run's features, in place of reading it
# from the dataset: cross-fitting (eri_jax.crossfit) trains on a subset of the train clips this way.
SplitReader = Callable[[str], Any]


def load_inputs(cfg: TrainConfig, split: str, meta: Any, standardizer: feats.Standardizer | None = None, *,
                read_split: SplitReader | None = None):
    """Load `split` with the run's features (or take it from `read_split`) and assemble the model input."""
    if read_split is None:
        from eri_jax.inputs.dataset import load_split  # deferred: imports tensorflow_datasets

        raw = load_split(split, cfg.features, name=cfg.dataset, data_dir=cfg.data_dir)
    else:
        raw = read_split(split)
    data = feats.assemble(raw, cfg.features, meta.features, cfg.model, cfg.block_widths)
    return standardizer.apply(data) if standardizer is not None else data


def fit_standardizer(train_data: Any) -> feats.Standardizer:
    return feats.Standardizer.fit(train_data.features[feats.INPUT_KEY],
                                  train_data.frame_masks.get(feats.INPUT_KEY))


def batch_arrays(batch: Any) -> dict[str, np.ndarray]:
    """The jit-facing dict of a `data.Batch` (training/step.py describes the keys)."""
    out = {"x": batch.inputs[feats.INPUT_KEY], "labels": batch.labels, "mask": batch.mask}
    if feats.INPUT_KEY in batch.frame_masks:
        out["frame_mask"] = batch.frame_masks[feats.INPUT_KEY]
    return out


def predict_split(predict: Callable, state: Any, data: Any, batch_size: int, mesh) -> np.ndarray:
    """Predictions float32 [N,E] for every clip of an assembled split, in its row order."""
    from eri_jax.inputs.dataset import iterate_batches  # deferred: imports tensorflow_datasets

    n, e = data.labels.shape
    out = np.full((n, e), np.nan, np.float32)
    for batch in iterate_batches(data, batch_size, shuffle=False):
        pred = np.asarray(predict(state, shd.shard_batch(batch_arrays(batch), mesh)))
        out[batch.index[batch.mask]] = pred[batch.mask]
    return out


def has_labels(data: Any) -> bool:
    return bool(len(data.ids)) and bool(np.isfinite(data.labels).any())


