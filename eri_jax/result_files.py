"""Result files, written atomically: text, JSON (NaN and inf as null) and MuSe-format predictions CSVs.

Every writer goes through `atomic_path`: the content goes to a temporary file beside the target
(`.<name>.<random>.tmp`, same folder so the move cannot cross file systems) and is moved onto the
target with `os.replace` only once it is complete. A reader, or a rerun after a crash, sees the old
file or the new one, never half of one; if writing fails the temporary file is removed and the old
file is left as it was. (No fsync: the guarantee is against failed or interrupted writers, not power
loss; result files are cheap to recompute.) Parent folders are created as needed.

Predictions CSV (the MuSe-2022 submission format): header `File_ID,<emotions>`, one row per clip, the
clip ID written exactly as given (the dataset keeps IDs without MuSe's brackets: `00001`, not
`[00001]`), each value as `str()` of its numpy float, the shortest text that reads back to the same
value of its dtype (float32 stays float32-exact).
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    For writers that need a path of their own (matplotlib, `np.savez`); the temporary file is removed
    whatever happens.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A random part keeps two writers of the same file from sharing (and deleting) one temporary file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def json_safe(obj: Any) -> Any:
    """`obj` as plain JSON values, recursively: NaN and +-inf → None, numpy scalars and arrays → Python
    numbers and lists, tuples → lists, `Path` → str, dict keys → str. TypeError naming anything else."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} value {obj!r} is not JSON-serialisable")


def write_json(path: str | os.PathLike, obj: Any, *, indent: int = 1) -> Path:
    """Write `json_safe(obj)` as JSON (then a newline) to `path` atomically; return the path.

    Undefined numbers (NaN, inf) become `null`: JSON has no NaN, and a reader must not mistake an
    undefined Pearson r for a number. A value that cannot be converted raises before anything is written.
    """
    return write_text(path, json.dumps(json_safe(obj), indent=indent, allow_nan=False) + "\n")


def write_predictions(path: str | os.PathLike, ids: Sequence[str], predictions, emotions: Sequence[str]) -> Path:
    """Write a MuSe-format predictions CSV (module docstring) atomically; return the path.

    ids: N clip IDs (written as `str(id)`, nothing stripped or bracketed); predictions: [N, E], E =
    len(emotions); non-float arrays are written as float64. ValueError naming the file for a shape
    mismatch, an ID given twice, or an empty, repeated or `File_ID` emotion name. Values are not
    judged: a diverged run's NaN is written as `nan` for the reader to reject.
    """
    path = Path(path)
    ids = [str(i) for i in ids]
    emotions = [str(e) for e in emotions]
    predictions = np.asarray(predictions)
    if not np.issubdtype(predictions.dtype, np.floating):
        predictions = predictions.astype(np.float64)
    if predictions.shape != (len(ids), len(emotions)):
        raise ValueError(f"{path}: predictions of shape {predictions.shape} for {len(ids)} clips x "
                         f"{len(emotions)} emotions")
    if not emotions or len(set(emotions)) != len(emotions) or "File_ID" in emotions or "" in emotions:
        raise ValueError(f"{path}: emotion names {emotions} must be non-empty, distinct and not 'File_ID'")
    seen: dict[str, int] = {}
    for row, clip_id in enumerate(ids):
        if clip_id in seen:
            raise ValueError(f"{path}: clip ID {clip_id!r} appears twice (rows {seen[clip_id]} and {row})")
        seen[clip_id] = row
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["File_ID", *emotions])
        for clip_id, values in zip(ids, predictions):
            writer.writerow([clip_id, *(str(v) for v in values)])
    return path
