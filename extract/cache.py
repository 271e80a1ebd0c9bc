"""The feature cache: one output per (extractor settings, clip), written atomically, so reruns skip finished work.

Layout under the cache root (default `tfds_hume.paths.cache_dir()`):

  features/<dataset>/source.json                       where the dataset's clips came from
  features/<dataset>/<name>-<hash8>/settings.json      the full settings that `hash8` stands for
  features/<dataset>/<name>-<hash8>/<clip_id>.npz      the value (`tfds_hume.manifest.save_value`:
                                                       tmp, then rename)
  features/<dataset>/<name>-<hash8>/<clip_id>.missing.json   the feature cannot exist for this clip
                                                       (no audio track, no shipped CSV), with the reason
  features/<dataset>/<name>-<hash8>/failures.jsonl     one line per failed attempt: id, file, reason, time
  probe/<fingerprint>.json                             `extract.media.probe` results, keyed by file
                                                       path, size and modification time

The dataset level exists because clip ids repeat across datasets (every synthetic set has a clip
00001); `source.json` makes a second data root under the same dataset name an error, not a silent
reuse of the first one's features.
hash8 = first 8 hex digits of the SHA-256 of the settings as canonical JSON (sorted keys), so a changed
setting (model id, revision, frames, prompt, ...) writes a new folder and never mixes with old outputs.
An extractor with several output keys keeps each under `<key>/` inside its folder.
A clip counts as done when every key has a value or a missing marker; failed clips are retried on the
next run. Within a dataset the cache is keyed by clip id, not file content: after replacing a video,
delete its folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from extract.media import MediaInfo, probe
from tfds_hume.manifest import save_value

SETTINGS_NAME = "settings.json"
FAILURES_NAME = "failures.jsonl"


def _canonical(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def settings_hash(settings: dict[str, Any]) -> str:
    """First 8 hex digits of the SHA-256 of `settings` as canonical JSON."""
    return hashlib.sha256(_canonical(settings).encode()).hexdigest()[:8]


def _write_text_atomic(path: Path, text: str) -> None:
    # A temporary name of its own per process and thread: shards of one run (`--shard i/N`) may write
    # the same settings.json at the same moment, and a shared temporary file would interleave them.
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_clip_id(clip_id: str) -> str:
    """Clip ids (and dataset names) become file names: refuse anything that could leave the folder."""
    if (not clip_id or clip_id in (".", "..") or "/" in clip_id or "\\" in clip_id or "\0" in clip_id
            or clip_id.startswith(".")):
        raise ValueError(f"clip id {clip_id!r} is not a safe file name")
    return clip_id


def dataset_features_dir(cache_root: str | os.PathLike, dataset: str, source: dict[str, Any]) -> Path:
    """`<cache_root>/features/<dataset>/`, claimed for `source` (e.g. data root and layout) on first use.

    A later run of the same dataset name from another source is refused: the clip ids would collide.
    """
    check_clip_id(dataset)  # same rules: one safe folder name
    folder = Path(cache_root) / "features" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "source.json"
    if path.exists():
        known = json.loads(path.read_text())
        if _canonical(known) != _canonical(json.loads(json.dumps(source))):
            raise ValueError(f"{path}: the cached features of dataset {dataset!r} came from {known}, this run "
                             f"reads {source}. If the data only moved, delete that file; otherwise give the "
                             f"dataset another name or cache dir")
    else:
        _write_text_atomic(path, json.dumps(source, sort_keys=True, indent=1))
    return folder


class FeatureCache:
    """The folder `<features_dir>/<name>-<hash8>` of one extractor's outputs under one set of settings."""

    def __init__(self, features_dir: str | os.PathLike, name: str, settings: dict[str, Any], keys: Sequence[str]):
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"extractor name {name!r} is not a safe folder name")
        if not keys:
            raise ValueError(f"extractor {name!r} declares no output keys")
        self.name = name
        self.settings = dict(settings)
        self.keys = list(keys)
        self.hash = settings_hash(self.settings)
        self.folder = Path(features_dir) / f"{name}-{self.hash}"
        self.folder.mkdir(parents=True, exist_ok=True)
        sp = self.folder / SETTINGS_NAME
        text = json.dumps(self.settings, sort_keys=True, indent=1)
        if sp.exists():
            if _canonical(json.loads(sp.read_text())) != _canonical(json.loads(text)):
                raise RuntimeError(f"{sp}: holds other settings with the same hash; move the folder away")
        else:
            _write_text_atomic(sp, text)

    def _base(self, clip_id: str, key: str) -> Path:
        if key not in self.keys:
            raise KeyError(f"{self.name}: unknown output key {key!r} (keys: {self.keys})")
        check_clip_id(clip_id)
        folder = self.folder if len(self.keys) == 1 else self.folder / key
        return folder / clip_id

    def value_path(self, clip_id: str, key: str) -> Path:
        return self._base(clip_id, key).with_name(clip_id + ".npz")

    def missing_path(self, clip_id: str, key: str) -> Path:
        return self._base(clip_id, key).with_name(clip_id + ".missing.json")

    def is_done(self, clip_id: str) -> bool:
        return all(self.value_path(clip_id, k).exists() or self.missing_path(clip_id, k).exists()
                   for k in self.keys)

    def files(self, clip_id: str) -> dict[str, Path]:
        """The value file of every key this clip has (a key absent here is missing or not computed)."""
        return {k: p for k in self.keys if (p := self.value_path(clip_id, k)).exists()}

    def missing(self, clip_id: str) -> dict[str, str]:
        """Reason for every key recorded as missing for this clip."""
        out = {}
        for k in self.keys:
            p = self.missing_path(clip_id, k)
            if p.exists():
                out[k] = json.loads(p.read_text())["reason"]
        return out

    def write_value(self, clip_id: str, key: str, value: np.ndarray, frame_mask: np.ndarray | None = None) -> Path:
        path = self.value_path(clip_id, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_value(path, value, frame_mask)
        self.missing_path(clip_id, key).unlink(missing_ok=True)
        return path

    def write_missing(self, clip_id: str, key: str, reason: str) -> Path:
        path = self.missing_path(clip_id, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(path, json.dumps({"id": clip_id, "key": key, "reason": reason}))
        self.value_path(clip_id, key).unlink(missing_ok=True)
        return path

    def record_failure(self, clip_id: str, file: str | None, reason: str) -> dict[str, Any]:
        entry = {"id": clip_id, "file": file, "reason": reason,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with open(self.folder / FAILURES_NAME, "a") as f:  # one short line per write: appends stay whole
            f.write(json.dumps(entry) + "\n")
        return entry

    def failures(self) -> list[dict[str, Any]]:
        p = self.folder / FAILURES_NAME
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


class ProbeCache:
    """`probe` results on disk, so that every extractor of every run decodes a file's timeline once."""

    def __init__(self, root: str | os.PathLike):
        self.folder = Path(root) / "probe"

    def _path(self, path: Path) -> Path:
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        return self.folder / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")

    def __call__(self, path: str | os.PathLike) -> MediaInfo:
        path = Path(path)
        if not path.is_file():
            return probe(path)  # raises the MediaError naming the file
        cp = self._path(path)
        if cp.exists():
            return MediaInfo.from_json(json.loads(cp.read_text()))
        info = probe(path)
        cp.parent.mkdir(parents=True, exist_ok=True)
        _write_text_atomic(cp, json.dumps(info.to_json()))
        return info
