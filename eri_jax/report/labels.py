"""The dataset side of the report: labels per split (from TFDS), Table 2 statistics and Figure 1 densities."""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
from scipy.stats import gaussian_kde

KDE_POINTS = 201  # Figure 1 density evaluated on this many points over [0, 1]


@dataclasses.dataclass
class SplitLabels:
    """Clip IDs [N] and labels float64 [N, E] (NaN where unlabelled) of one split, in dataset order."""

    ids: list[str]
    labels: np.ndarray

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.float64)
        if self.labels.shape[0] != len(self.ids):
            raise ValueError(f"{len(self.ids)} IDs but {self.labels.shape[0]} label rows")
        self._row = {cid: k for k, cid in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            raise ValueError("a clip ID appears twice in the split")

    def rows(self, ids: Sequence[str], where: str) -> np.ndarray:
        """Row index of each ID; ValueError naming `where` (file) and the line of the first unknown ID."""
        out = np.empty(len(ids), dtype=np.int64)
        for k, cid in enumerate(ids):
            row = self._row.get(cid)
            if row is None:
                raise ValueError(f"{where}, line {k + 2}: clip ID {cid!r} is not in this split of the dataset")
            out[k] = row
        return out

    @property
    def labelled(self) -> bool:
        return bool(len(self.ids)) and bool(np.isfinite(self.labels).any())


@dataclasses.dataclass
class DatasetLabels:
    """What the report needs from a dataset: its name, provenance flags, emotions and labels per split."""

    name: str
    source: str
    synthetic: bool
    random_weights: bool
    emotions: list[str]
    splits: dict[str, SplitLabels]

    @property
    def tags(self) -> list[str]:
        """What every title must say about the data ('synthetic data', 'randomly initialised ...')."""
        return data_tags(self.synthetic, self.random_weights)


def data_tags(synthetic: bool, random_weights: bool) -> list[str]:
    """The words every title adds about a dataset: 'synthetic data', 'features from randomly initialised models'."""
    out = []
    if synthetic:
        out.append("synthetic data")
    if random_weights:
        out.append("features from randomly initialised models")
    return out


def load_dataset_labels(name: str, data_dir: str | os.PathLike | None = None) -> DatasetLabels:
    """Labels of every split of a built `hume_reaction` TFDS dataset (no features are read)."""
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import dataset_meta, load_split

    meta = dataset_meta(name, data_dir)
    splits = {}
    for split, size in meta.splits.items():
        if size:
            data = load_split(split, [], name=name, data_dir=data_dir)
            splits[split] = SplitLabels([str(i) for i in data.ids], data.labels)
    return DatasetLabels(name=name, source=meta.dataset, synthetic=meta.synthetic,
                         random_weights=meta.random_weights, emotions=list(meta.emotions), splits=splits)


def label_stats(labels: np.ndarray, emotions: Sequence[str]) -> dict[str, dict]:
    """Per emotion: mean and population std (ddof=0, as metrics_<split>.json) of the labelled clips, and n."""
    out = {}
    for k, e in enumerate(emotions):
        v = labels[:, k][~np.isnan(labels[:, k])]
        out[e] = {"mean": float(v.mean()) if v.size else None, "std": float(v.std()) if v.size else None,
                  "n": int(v.size)}
    return out


def label_density(values: np.ndarray, grid: np.ndarray | None = None) -> dict:
    """Gaussian KDE (scipy.stats.gaussian_kde, Scott's bandwidth) of one emotion's labelled values.

    Returns {"grid": [...], "density": [...], "n": n} or, when a KDE is undefined (fewer than 2 values
    or all values equal), {"constant": value or None, "n": n, "density": None}.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    grid = np.linspace(0.0, 1.0, KDE_POINTS) if grid is None else grid
    if v.size < 2 or np.ptp(v) == 0:
        return {"constant": float(v[0]) if v.size else None, "n": int(v.size), "grid": None, "density": None}
    kde = gaussian_kde(v)
    return {"constant": None, "n": int(v.size), "grid": grid.tolist(), "density": kde(grid).tolist(),
            "bandwidth": math.sqrt(float(kde.covariance[0, 0]))}  # kernel std = factor x data std
