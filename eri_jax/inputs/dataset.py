"""Load `hume_reaction` splits from TFDS (ArrayRecord, no TensorFlow) into arrays, and batch them for jit.

    meta = dataset_meta("hume_reaction/demo")            # emotions, feature specs, synthetic flag, splits
    train = load_split("train", ["pixels", "fau"])        # SplitData: whole split as arrays
    for batch in iterate_batches(train, 16, shuffle=True, seed=0, epoch=e): ...

Every batch has exactly `batch_size` rows: the last one is padded with zeros, `mask` False and `index` -1,
so a jitted step never recompiles. Labels keep NaN where a clip is unlabelled (mask them in the loss).
`Batch` is a registered JAX pytree (a dataclass; its leaves are the arrays), so it can be passed to
`jax.jit` functions as is. Texts are not part of batches: look them up with `data.texts[k][batch.index]`
for the rows where `batch.mask` is True.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from tfds_hume import paths
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import SPLITS
from tfds_hume.schema import FEATURES, FRAME_MASK, MISSING, PER_FRAME_KINDS, SCHEMA_VERSION

NUMERIC_KINDS = ("frame", "video")
_READ_CHUNK = 1024  # examples per __getitems__ call: bulk reads without holding every record twice


@dataclasses.dataclass
class DatasetMeta:
    """What a built dataset says about itself (read from its metadata, never hard-coded)."""

    name: str
    emotions: list[str]
    features: dict[str, FeatureSpec]
    synthetic: bool
    random_weights: bool
    dataset: str
    splits: dict[str, int]


@dataclasses.dataclass
class SplitData:
    """A whole split as arrays, rows in the dataset's stored order (ascending clip id).

    features: numeric features, float32 [N, T, D] (frame) or [N, D] (video).
    texts: text features, str [N] (text) or [N, T] (frame_text); always host numpy.
    frame_masks: bool [N, T] for per-frame kinds (all False where the feature is missing).
    missing: bool [N] per requested feature.
    """

    split: str
    ids: np.ndarray
    labels: Any
    features: dict[str, Any]
    frame_masks: dict[str, Any]
    missing: dict[str, Any]
    emotions: list[str]
    texts: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


@dataclasses.dataclass
class Batch:
    """A fixed-size batch. Pad rows: zeros everywhere, `mask` False, `index` -1, `missing` True."""

    inputs: dict[str, Any]
    frame_masks: dict[str, Any]
    labels: Any
    mask: Any
    index: Any
    missing: dict[str, Any] = dataclasses.field(default_factory=dict)


jax.tree_util.register_dataclass(
    Batch, data_fields=["inputs", "frame_masks", "labels", "mask", "index", "missing"], meta_fields=[])


def built_datasets(data_dir: str | os.PathLike | None) -> list[str]:
    """The `name/config` of every dataset built under the TFDS data dir (`<name>/<config>/<version>/`)."""
    root = paths.data_dir(data_dir)
    found = {f"{p.parts[-4]}/{p.parts[-3]}" for p in root.glob("*/*/*/dataset_info.json")}
    return sorted(found)


def _builder(name: str, data_dir: str | os.PathLike | None):
    root = paths.data_dir(data_dir)
    built = built_datasets(root)
    hint = (f"no dataset {name!r} under {root} (built there: {', '.join(built) or 'none'}); build it with "
            f"`python -m extract` (synthetic demo) or `python -m tfds_hume.build EXPORT_DIR --config CONFIG "
            f"--data-dir {root}`, or pass --data-dir")
    try:
        builder = tfds.builder(name, data_dir=os.fspath(root))
    except tfds.core.registered.DatasetNotFoundError as e:
        raise FileNotFoundError(hint) from e
    except ValueError as e:  # a registered builder (tfds_hume imported) without such a config
        if "BuilderConfig" not in str(e):
            raise
        raise FileNotFoundError(hint) from e
    if not builder.is_prepared():  # a registered builder (tfds_hume.hume_reaction imported) with no data
        raise FileNotFoundError(hint)
    return builder


def _meta_from_builder(name: str, builder) -> DatasetMeta:
    md = builder.info.metadata
    if md is None or "features" not in md:
        raise ValueError(f"{name} in {builder.data_dir} has no hume_reaction metadata (metadata.json)")
    if md.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{name} in {builder.data_dir}: schema version {md.get('schema_version')!r}, "
                         f"this code reads {SCHEMA_VERSION}; rebuild the dataset")
    return DatasetMeta(
        name=name, emotions=list(md["emotions"]),
        features={k: FeatureSpec(**v) for k, v in md["features"].items()},
        synthetic=bool(md["synthetic"]), random_weights=bool(md["random_weights"]),
        dataset=str(md["dataset"]),
        splits={s: builder.info.splits[s].num_examples for s in SPLITS if s in builder.info.splits})


def dataset_meta(name: str = "hume_reaction/demo", data_dir: str | os.PathLike | None = None) -> DatasetMeta:
    """Emotions, feature specs (dims, model ids, prompts), synthetic flag and split sizes of a built dataset."""
    return _meta_from_builder(name, _builder(name, data_dir))


def _describe(features: dict[str, FeatureSpec]) -> str:
    def shape(s):
        return {"frame": f"[{s.num_frames}, {s.dim}]", "video": f"[{s.dim}]", "text": "",
                "frame_text": f"[{s.num_frames}]"}[s.kind]
    return ", ".join(f"{k} ({s.kind}{shape(s)})" for k, s in features.items())


def load_split(split: str, features: Sequence[str], name: str = "hume_reaction/demo",
               data_dir: str | os.PathLike | None = None) -> SplitData:
    """Read a whole split; `features` are dataset keys (numeric go to `.features`, texts to `.texts`).

    ValueError names the available features / splits when a requested one is absent.
    """
    builder = _builder(name, data_dir)
    meta = _meta_from_builder(name, builder)
    if split not in meta.splits:
        raise ValueError(f"{name} has no split {split!r}; it has {list(meta.splits)}")
    keys = list(dict.fromkeys(features))
    absent = [k for k in keys if k not in meta.features]
    if absent:
        raise ValueError(f"{name} has no feature(s) {absent}; it has: {_describe(meta.features)}")
    specs = {k: meta.features[k] for k in keys}

    source = builder.as_data_source(split=split)
    n = len(source)
    ids = np.empty(n, dtype=object)
    labels = np.empty((n, len(meta.emotions)), dtype=np.float32)
    numeric = {k: np.empty((n, s.num_frames, s.dim) if s.kind == "frame" else (n, s.dim), np.float32)
               for k, s in specs.items() if s.kind in NUMERIC_KINDS}
    texts = {k: np.empty((n,) if s.kind == "text" else (n, s.num_frames), dtype=object)
             for k, s in specs.items() if s.kind not in NUMERIC_KINDS}
    masks = {k: np.empty((n, s.num_frames), dtype=bool) for k, s in specs.items() if s.kind in PER_FRAME_KINDS}
    missing = {k: np.empty(n, dtype=bool) for k in keys}

    for start in range(0, n, _READ_CHUNK):
        rows = list(range(start, min(n, start + _READ_CHUNK)))
        for i, ex in zip(rows, source.__getitems__(rows)):
            ids[i] = ex["id"]
            labels[i] = ex["labels"]
            for k in numeric:
                numeric[k][i] = ex[FEATURES][k]
            for k in texts:
                texts[k][i] = ex[FEATURES][k]
            for k in masks:
                masks[k][i] = ex[FRAME_MASK][k]
            for k in keys:
                missing[k][i] = ex[MISSING][k]
    return SplitData(
        split=split, ids=_decode(ids), labels=labels, features=numeric, frame_masks=masks,
        missing=missing, emotions=meta.emotions, texts={k: _decode(v) for k, v in texts.items()})


def _decode(a: np.ndarray) -> np.ndarray:
    """UTF-8 bytes (how TFDS returns texts) → str array of the same shape."""
    flat = [b.decode("utf-8") if isinstance(b, bytes) else str(b) for b in a.reshape(-1)]
    return np.array(flat, dtype=str).reshape(a.shape) if flat else np.zeros(a.shape, dtype=str)


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch: ceil(n / batch_size)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return math.ceil(n / batch_size)


def epoch_order(n: int, *, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    """Row order of one epoch: identity, or a permutation fixed by (seed, epoch)."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(n)


def iterate_batches(data: SplitData, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                    epoch: int = 0) -> Iterator[Batch]:
    """Fixed-size batches covering every row exactly once per epoch (see the module docstring).

    Works on host arrays and on arrays placed by `put_on_device` (then batches are gathered on device).
    """
    n = len(data)
    order = epoch_order(n, shuffle=shuffle, seed=seed, epoch=epoch)
    on_device = isinstance(data.labels, jax.Array)
    arrays = {"inputs": data.features, "frame_masks": data.frame_masks, "labels": data.labels,
              "missing": data.missing}
    for b in range(num_batches(n, batch_size)):
        index = np.full(batch_size, -1, dtype=np.int32)
        chunk = order[b * batch_size:(b + 1) * batch_size]
        index[:len(chunk)] = chunk
        valid = index >= 0
        if on_device:
            got = _gather_device(arrays, jnp.asarray(index), jnp.asarray(valid))
        else:
            got = {g: jax.tree_util.tree_map(lambda a, g=g: _gather_host(a, index, valid, _PADS[g]), tree)
                   for g, tree in arrays.items()}
        yield Batch(inputs=got["inputs"], frame_masks=got["frame_masks"], labels=got["labels"],
                    mask=valid, index=index, missing=got["missing"])


# What a pad row holds, per group: no data, no real frames, and every feature missing.
_PADS = {"inputs": 0, "frame_masks": False, "labels": 0, "missing": True}


def _gather_host(a: np.ndarray, index: np.ndarray, valid: np.ndarray, pad) -> np.ndarray:
    out = a[np.maximum(index, 0)]
    out[~valid] = pad
    return out


@jax.jit
def _gather_device(arrays, index, valid):
    def take(a, pad):
        out = jnp.take(a, jnp.maximum(index, 0), axis=0)
        keep = valid.reshape((-1,) + (1,) * (a.ndim - 1))
        return jnp.where(keep, out, jnp.asarray(pad, a.dtype))
    return {g: jax.tree_util.tree_map(lambda a, g=g: take(a, _PADS[g]), tree) for g, tree in arrays.items()}


def put_on_device(data: SplitData, sharding: jax.sharding.Sharding | None = None) -> SplitData:
    """Place labels, numeric features, frame masks and missing flags on the accelerator (once per split).

    `sharding`: where to put them (e.g. a replicated NamedSharding); default: the default device.
    ids and texts stay host numpy.
    """
    def put(a):
        return jax.device_put(a, sharding) if sharding is not None else jax.device_put(a)
    return dataclasses.replace(
        data, labels=put(data.labels), features={k: put(v) for k, v in data.features.items()},
        frame_masks={k: put(v) for k, v in data.frame_masks.items()},
        missing={k: put(v) for k, v in data.missing.items()})
