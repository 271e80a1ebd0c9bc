"""Finding run folders, reading their attributes and predictions, and grouping them into seeds of a setting.

A run folder is any folder holding `predictions_<split>.csv` (MuSe format `File_ID,<emotions>`). Both
kinds of folders the project writes qualify:
* `python -m eri_jax.train` / `eri_jax.evaluate` (and the querying baseline): `<runs>/<run>/` with
  `metrics_<split>.json` (its `meta`) and `config.json`;
* `python -m eri_jax.sweep`: `<out>/runs/<run_id>/` with `run.json`.
A run's attributes are the union of `metrics_<split>.json`'s `meta`, `config.json` and `run.json` (later
ones win). Its seed is the `seed` attribute, else the `-s<digits>` suffix of its name; its setting is its
folder path without that suffix, so `viper-paper-VATF-clip-s0` .. `-s4` are five seeds of one setting.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_SEED_SUFFIX = re.compile(r"-s(\d+)$")
MODALITY_ORDER = "VATF"


@dataclasses.dataclass
class Run:
    """One run folder. `name`: its path relative to the runs folder (POSIX); `attrs`: its attributes."""

    path: Path
    name: str
    attrs: dict[str, Any]

    @property
    def seed(self) -> int | None:
        if isinstance(self.attrs.get("seed"), int):
            return int(self.attrs["seed"])
        m = _SEED_SUFFIX.search(self.path.name)
        return int(m[1]) if m else None

    @property
    def setting(self) -> str:
        return _SEED_SUFFIX.sub("", self.name)

    @property
    def dataset(self) -> str | None:
        d = self.attrs.get("dataset")
        return str(d) if d is not None else None

    def predictions_file(self, split: str) -> Path:
        return self.path / f"predictions_{split}.csv"

    def recorded_mean_pearson(self, split: str) -> tuple[float | None, Path | None]:
        """The mean Pearson the run recorded for `split` itself, and the file it is in (None when absent)."""
        metrics = self.path / f"metrics_{split}.json"
        if metrics.exists():
            value = read_json_object(metrics).get("mean_pearson")
            return (None if value is None else float(value)), metrics
        run_json = self.path / "run.json"
        if split == "dev" and run_json.exists():
            value = read_json_object(run_json).get("dev_mean_pearson")
            return (None if value is None else float(value)), run_json
        return None, None


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; ValueError naming the file when it is not valid JSON or not an object."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def read_attrs(path: Path, split: str) -> dict[str, Any]:
    """The run's attributes (module docstring)."""
    attrs: dict[str, Any] = {}
    metrics = path / f"metrics_{split}.json"
    if metrics.exists():
        attrs.update(read_json_object(metrics).get("meta") or {})
    for name in ("config.json", "run.json"):
        if (path / name).exists():
            attrs.update(read_json_object(path / name))
    return attrs


def find_runs(runs_dir: Path, patterns: Sequence[str], split: str) -> list[Run]:
    """Run folders under `runs_dir` matching any glob pattern that hold `predictions_<split>.csv`, sorted."""
    found: dict[Path, Run] = {}
    for pattern in patterns:
        for path in sorted(runs_dir.glob(pattern)):
            if path.is_dir() and path not in found and (path / f"predictions_{split}.csv").is_file():
                found[path] = Run(path=path, name=path.relative_to(runs_dir).as_posix(),
                                  attrs=read_attrs(path, split))
    return sorted(found.values(), key=lambda r: (r.setting, r.seed if r.seed is not None else -1, r.name))


def _normalise(key: str, value: Any) -> Any:
    if key == "modalities" and isinstance(value, str):
        letters = value.replace("+", "").upper()
        return "".join(c for c in MODALITY_ORDER if c in letters) + "".join(
            sorted(c for c in set(letters) if c not in MODALITY_ORDER))
    if isinstance(value, tuple):
        return list(value)
    return value


def matches(run: Run, where: dict[str, Any]) -> bool:
    """True when the run has every attribute of `where` with an equal value (modalities as letter sets)."""
    for key, want in where.items():
        if key not in run.attrs:
            return False
        if _normalise(key, run.attrs[key]) != _normalise(key, want):
            return False
    return True


def group_settings(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs by setting (folder path without the seed suffix), in sorted order."""
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.setting, []).append(r)
    return out


def read_predictions(path: Path, emotions: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(ids, float64 [N, E] in the order of `emotions`) from a MuSe-format predictions CSV.

    ValueError naming the file and row for: a header that is not `File_ID` + the dataset's emotions (in any
    order), a row of the wrong width, a value that is not a finite number, an ID given twice.
    """
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path}: empty file, expected a header File_ID,<emotions>")
    header = [h.strip() for h in rows[0]]
    if not header or header[0] != "File_ID" or sorted(header[1:]) != sorted(emotions) \
            or len(set(header[1:])) != len(header) - 1:
        raise ValueError(f"{path}: header {header} is not File_ID followed by the dataset's emotions "
                         f"{list(emotions)}")
    order = [header.index(e) for e in emotions]
    ids: list[str] = []
    values = np.empty((len(rows) - 1, len(emotions)), dtype=np.float64)
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} columns, the header has {len(header)}")
        clip_id = row[0].strip()
        if clip_id in seen:
            raise ValueError(f"{path}, line {line}: clip ID {clip_id!r} already on line {seen[clip_id]}")
        seen[clip_id] = line
        try:
            vals = [float(row[k]) for k in order]
        except ValueError:
            raise ValueError(f"{path}, line {line}: a prediction is not a number: {row[1:]}") from None
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{path}, line {line}: a prediction is not finite: {row[1:]}")
        ids.append(clip_id)
        values[line - 2] = vals
    return ids, values
