"""The manifest: what extraction produced, read by the TFDS builder (so nothing downstream hard-codes a dim).

`python -m extract` writes `<export dir>/manifest.json`; the builder `hume_reaction` reads it. Each
feature is described once (kind, dims, model id, parameters); each clip lists the file that holds
its value for each feature. A feature absent from a clip's `files` is missing for that clip.

Feature kinds and the array each per-clip file (`.npz`, key `value`) holds:
  frame       float32[T, D]  one row per sampled frame/window; optional bool[T] key `frame_mask`
                             (True where the row is real, False where it could not be computed)
  video       float32[D]     one vector per clip
  text        str            one text per clip (0-d unicode array)
  frame_text  str[T]         one text per sampled frame
"""
from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("frame", "video", "text", "frame_text")
MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


@dataclasses.dataclass
class FeatureSpec:
    """One feature of the dataset.

    kind: one of KINDS. dim: D for numeric kinds, None for texts. num_frames: T for frame kinds.
    source: the extractor ("pixels", "shipped:FAU", "vit", ...). model_id/revision: the model, if any.
    random_weights: True when the model was randomly initialised (miniature test models).
    params: extractor settings that change the output (prompt, frames, template set, ...).
    """

    kind: str
    dim: int | None = None
    num_frames: int | None = None
    source: str = ""
    model_id: str | None = None
    revision: str | None = None
    random_weights: bool = False
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"feature kind {self.kind!r} is not one of {KINDS}")
        if self.kind in ("frame", "video") and not self.dim:
            raise ValueError(f"a {self.kind} feature needs a positive dim, got {self.dim!r}")
        if self.kind in ("frame", "frame_text") and not self.num_frames:
            raise ValueError(f"a {self.kind} feature needs num_frames, got {self.num_frames!r}")


@dataclasses.dataclass
class ClipEntry:
    """One clip: id, split, labels (NaN where unlabelled) and the file of each feature it has."""

    id: str
    split: str
    labels: list[float]
    files: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Manifest:
    """The whole export. `dataset` names where the data came from (e.g. "synthetic-demo")."""

    dataset: str
    synthetic: bool
    emotions: list[str]
    features: dict[str, FeatureSpec]
    clips: list[ClipEntry]
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def random_weights(self) -> bool:
        return any(f.random_weights for f in self.features.values())

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for c in d["clips"]:  # JSON has no NaN: unlabelled is null
            c["labels"] = [None if (v is None or v != v) else float(v) for v in c["labels"]]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Manifest":
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"manifest format {d.get('format_version')!r} is not {FORMAT_VERSION}")
        feats = {k: FeatureSpec(**v) for k, v in d["features"].items()}
        clips = []
        for c in d["clips"]:
            labels = [float("nan") if v is None else float(v) for v in c["labels"]]
            clips.append(ClipEntry(id=c["id"], split=c["split"], labels=labels, files=dict(c["files"])))
        return cls(dataset=d["dataset"], synthetic=bool(d["synthetic"]), emotions=list(d["emotions"]),
                   features=feats, clips=clips, notes=dict(d.get("notes", {})))

    def write(self, export_dir: str | os.PathLike) -> Path:
        """Write `<export_dir>/manifest.json` atomically."""
        export_dir = Path(export_dir)
        export_dir.mkdir(parents=True, exist_ok=True)
        path = export_dir / MANIFEST_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Manifest":
        """Read a manifest from its file or from the export folder holding it."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        if not path.exists():
            raise FileNotFoundError(f"no manifest at {path}: run `python -m extract` first")
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a valid manifest ({e})") from e


def load_value(path: str | os.PathLike, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """Load one clip's value of a feature and its frame mask (None unless the file has one); check shapes."""
    with np.load(path, allow_pickle=False) as z:
        value = z["value"]
        mask = z["frame_mask"].astype(bool) if "frame_mask" in z.files else None
    expected = {"frame": (spec.num_frames, spec.dim), "video": (spec.dim,),
                "text": (), "frame_text": (spec.num_frames,)}[spec.kind]
    if value.shape != expected:
        raise ValueError(f"{path}: shape {value.shape}, expected {expected} for a {spec.kind} feature")
    return value, mask


_NPZ_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip member can record: a fixed stamp, not the clock


def save_value(path: str | os.PathLike, value: np.ndarray, frame_mask: np.ndarray | None = None) -> None:
    """Write one clip's value atomically (temporary file, then rename) as an `.npz` that `np.load` reads.

    The same arrays always give the same bytes: `np.savez` stamps each member with the wall-clock time,
    so two runs (a plain and a Ray extraction, or a rerun) could not be compared file for file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"value": np.asarray(value)}
    if frame_mask is not None:
        arrays["frame_mask"] = np.asarray(frame_mask, dtype=bool)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_NPZ_TIME)
            with zf.open(member, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array, allow_pickle=False)
    os.replace(tmp, path)
