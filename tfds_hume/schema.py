"""The TFDS feature schema of `hume_reaction`, derived from a Manifest, and the example of one clip.

Nothing here hard-codes a feature key or a dim: both come from the manifest. One example is

    id           Text                    clip ID (File ID without brackets), joins back to predictions
    split        Text                    "train" | "dev" | "test"
    labels       float32[E]              NaN where unlabelled (the test split)
    features/<k> frame:      float32[T, D]
                 video:      float32[D]
                 text:       Text
                 frame_text: Tensor of strings [T]
    missing/<k>  bool                    True when the clip has no value for k (the value is then all
                                         zeros / empty strings, never to be used as data)
    frame_mask/<k>  bool[T]              per-frame kinds only: True where the row is real; all True
                                         when the file has no `frame_mask`, all False when missing

`frame_mask` is absent from the schema when the manifest has no per-frame feature. Texts decode to
bytes (UTF-8) when read with `tfds.data_source`.
"""
from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from tfds_hume.manifest import ClipEntry, FeatureSpec, Manifest, load_value
from tfds_hume.records import SPLITS

FEATURES, MISSING, FRAME_MASK = "features", "missing", "frame_mask"
PER_FRAME_KINDS = ("frame", "frame_text")
SCHEMA_VERSION = 1

# Feature keys become parts of the flat record keys ("features/<k>"), so "/" and odd characters break them.
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def feature_connector(spec: FeatureSpec) -> tfds.features.FeatureConnector:
    """The TFDS connector holding one clip's value of a feature of this spec."""
    if spec.kind == "frame":
        return tfds.features.Tensor(shape=(spec.num_frames, spec.dim), dtype=np.float32)
    if spec.kind == "video":
        return tfds.features.Tensor(shape=(spec.dim,), dtype=np.float32)
    if spec.kind == "text":
        return tfds.features.Text()
    # TFDS spells a string tensor with dtype object.
    return tfds.features.Tensor(shape=(spec.num_frames,), dtype=np.object_)


def check_feature_keys(features: dict[str, FeatureSpec], where: str = "manifest") -> None:
    """Raise ValueError for a key that cannot be a TFDS feature name."""
    bad = [k for k in features if not _KEY_RE.match(k)]
    if bad:
        raise ValueError(f"{where}: feature keys {bad} must match {_KEY_RE.pattern} (no '/' or spaces)")


def features_dict(features: dict[str, FeatureSpec], num_emotions: int) -> tfds.features.FeaturesDict:
    """The whole example schema (see the module docstring) for these features and E emotions."""
    check_feature_keys(features)
    if num_emotions < 1:
        raise ValueError(f"need at least one emotion, got {num_emotions}")
    schema: dict[str, Any] = {
        "id": tfds.features.Text(),
        "split": tfds.features.Text(),
        "labels": tfds.features.Tensor(shape=(num_emotions,), dtype=np.float32),
        FEATURES: {k: feature_connector(s) for k, s in features.items()},
        MISSING: {k: tfds.features.Scalar(dtype=np.bool_) for k in features},
    }
    per_frame = {k: s for k, s in features.items() if s.kind in PER_FRAME_KINDS}
    if per_frame:
        schema[FRAME_MASK] = {k: tfds.features.Tensor(shape=(s.num_frames,), dtype=np.bool_)
                              for k, s in per_frame.items()}
    return tfds.features.FeaturesDict(schema)


def metadata(manifest: Manifest, features: dict[str, FeatureSpec], config: str) -> dict[str, Any]:
    """The JSON-able dataset metadata: everything downstream needs to know without hard-coding it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "config": config,
        "dataset": manifest.dataset,
        "synthetic": bool(manifest.synthetic),
        "random_weights": any(f.random_weights for f in features.values()),
        "emotions": list(manifest.emotions),
        "features": {k: dataclasses.asdict(s) for k, s in features.items()},
        "notes": manifest.notes,
    }


def resolve(export_dir: Path, file: str) -> Path:
    """A clip's feature file: relative paths are relative to the export folder; absolute ones stay."""
    return Path(export_dir) / file


def clip_example(clip: ClipEntry, features: dict[str, FeatureSpec], emotions: list[str],
                 export_dir: str | Path) -> dict[str, Any]:
    """Load and check one clip's files; return the example dict matching `features_dict`.

    Raises ValueError / FileNotFoundError naming the clip, the feature and the file on bad input.
    A feature the clip does not list is missing: zeros / empty strings AND missing=True.
    """
    if clip.split not in SPLITS:
        raise ValueError(f"clip {clip.id!r}: split {clip.split!r} is not one of {SPLITS}")
    labels = np.asarray(clip.labels, dtype=np.float32)
    if labels.shape != (len(emotions),):
        raise ValueError(f"clip {clip.id!r}: {labels.size} labels for {len(emotions)} emotions {emotions}")
    if np.isinf(labels).any():
        raise ValueError(f"clip {clip.id!r}: infinite label {clip.labels}")
    unknown = sorted(set(clip.files) - set(features))
    if unknown:
        raise ValueError(f"clip {clip.id!r}: files for features {unknown} not described in the manifest")

    values, missing, masks = {}, {}, {}
    for key, spec in features.items():
        if key not in clip.files:
            values[key], missing[key] = _empty(spec), True
            if spec.kind in PER_FRAME_KINDS:
                masks[key] = np.zeros(spec.num_frames, dtype=bool)
            continue
        path = resolve(Path(export_dir), clip.files[key])
        if not path.is_file():
            raise FileNotFoundError(f"clip {clip.id!r}, feature {key!r}: {path} does not exist")
        try:
            value, mask = load_value(path, spec)
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:  # bad shape, corrupt npz
            msg = str(e) if str(path) in str(e) else f"{path}: cannot read ({type(e).__name__}: {e})"
            raise ValueError(f"clip {clip.id!r}, feature {key!r}: {msg}") from e
        if spec.kind in PER_FRAME_KINDS:
            if mask is None:
                mask = np.ones(spec.num_frames, dtype=bool)
            elif mask.shape != (spec.num_frames,):
                raise ValueError(f"{path}: frame_mask shape {mask.shape}, expected ({spec.num_frames},)")
            masks[key] = mask
        values[key], missing[key] = _checked_value(value, mask, spec, path), False
    example = {"id": clip.id, "split": clip.split, "labels": labels, FEATURES: values, MISSING: missing}
    if any(s.kind in PER_FRAME_KINDS for s in features.values()):
        example[FRAME_MASK] = masks
    return example


def _empty(spec: FeatureSpec) -> Any:
    if spec.kind == "frame":
        return np.zeros((spec.num_frames, spec.dim), dtype=np.float32)
    if spec.kind == "video":
        return np.zeros((spec.dim,), dtype=np.float32)
    if spec.kind == "text":
        return ""
    return np.array([""] * spec.num_frames, dtype=object)


def _checked_value(value: np.ndarray, mask: np.ndarray | None, spec: FeatureSpec, path: Path) -> Any:
    if spec.kind in ("frame", "video"):
        if not np.issubdtype(value.dtype, np.number):
            raise ValueError(f"{path}: dtype {value.dtype}, expected numbers for a {spec.kind} feature")
        value = value.astype(np.float32)
        bad = ~np.isfinite(value)
        if spec.kind == "frame":
            bad_rows = bad.any(axis=1) & mask  # rows masked out may hold NaN: they are not data
            if bad_rows.any():
                raise ValueError(f"{path}: non-finite values in unmasked frames {np.flatnonzero(bad_rows).tolist()}")
            # Zero the masked rows so a NaN cannot leak through a matmul (0 * NaN = NaN); the mask says why.
            value = np.where(mask[:, None], value, np.float32(0))
        elif bad.any():
            raise ValueError(f"{path}: {int(bad.sum())} non-finite values in a video feature")
        return value
    if value.dtype.kind != "U":
        raise ValueError(f"{path}: dtype {value.dtype}, expected unicode text for a {spec.kind} feature")
    if spec.kind == "text":
        return str(value[()])
    return value.astype(object)

