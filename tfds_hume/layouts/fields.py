"""Checks of single values: clip IDs, split names, emotion columns and label cells."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfds_hume.layouts.errors import LayoutError
from tfds_hume.layouts.table import Row, Table

# Every spelling of a split that a layout may use, lower-cased, to the project's split names.
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "dev": "dev", "devel": "dev", "development": "dev",
    "val": "dev", "valid": "dev", "validation": "dev",
    "test": "test", "testing": "test",
}

# Columns that describe the subject, not an emotion (ABAW5 ships Age and Country). Lower-cased.
METADATA_COLUMNS = frozenset({
    "age", "country", "gender", "sex", "ethnicity", "language", "subject", "subject_id", "duration",
})

# Why a Hume layout wants exactly the seven emotions (appended to the error naming a column).
HUME_REQUIRED = (" (the {layout} layout holds the 7 Hume-Reaction emotions; `--emotions a,b,c` reads "
                 "another set)")

# Label cells that mean "no label", as pandas writes and reads them (MuSe's test rows are NaN).
EMPTY_CELLS = frozenset({"nan", "na", "n/a", "null", "none"})

# Characters that would make an ID unsafe or unportable as a file name.
_UNSAFE = set('/\\:\0') | {chr(c) for c in range(32)} | {"\x7f"}


def split_name(value: str) -> str | None:
    """The project split name for `value` (any case), or None if it is not a known spelling."""
    return SPLIT_NAMES.get(value.strip().lower())


def parse_split(value: str, path: Path, line: int) -> str:
    split = split_name(value)
    if split is None:
        raise LayoutError(
            f"unknown split {value!r}; expected one of {sorted(set(SPLIT_NAMES))} (any case)",
            path, line)
    return split


def parse_clip_id(value: str, path: Path, line: int) -> str:
    """The clip ID without surrounding brackets (`[00001]` -> `00001`), checked to be a safe file name."""
    clip_id = value.strip()
    if len(clip_id) >= 2 and clip_id[0] == "[" and clip_id[-1] == "]":
        clip_id = clip_id[1:-1].strip()
    if not clip_id:
        raise LayoutError(f"empty clip ID {value!r}", path, line)
    if clip_id in (".", ".."):
        raise LayoutError(f"clip ID {value!r} is not a file name", path, line)
    bad = sorted(set(clip_id) & _UNSAFE)
    if bad:
        raise LayoutError(
            f"clip ID {value!r} contains {', '.join(repr(c) for c in bad)}; IDs are used as file "
            "names and may not hold path separators, ':', NUL or control characters", path, line)
    return clip_id


def unique_ids(table: Table, id_column: str) -> list[tuple[str, Row]]:
    """(clip ID, row) for every row of `table`, with IDs checked and duplicates an error."""
    column = table.index(id_column)
    first_line: dict[str, int] = {}
    out = []
    for row in table.rows:
        clip_id = parse_clip_id(row.cells[column], table.path, row.line)
        if clip_id in first_line:
            raise LayoutError(
                f"duplicate clip ID {clip_id!r} (first on line {first_line[clip_id]})",
                table.path, row.line)
        first_line[clip_id] = row.line
        out.append((clip_id, row))
    return out


def emotion_columns(table: Table, not_emotions: Sequence[str],
                    expected: Sequence[str] | None = None, why: str = "") -> list[str]:
    """The emotion columns of `table`: every column that is not in `not_emotions` (the ID and split
    columns) nor a known metadata column. With `expected`, the header must hold exactly those
    emotions (a missing or extra column is an error naming it; `why` says where the set comes from)
    and they are returned in `expected`'s order."""
    skip = {c.lower() for c in not_emotions} | METADATA_COLUMNS
    found = [c for c in table.header if c.lower() not in skip]
    if expected is not None:
        expected = [e.strip() for e in expected]
        wanted = f"the emotions {', '.join(expected)}{why}"
        missing = [e for e in expected if e not in found]
        if missing:
            near = [c for c in found if c.lower() in {m.lower() for m in missing}]
            hint = f" (found {', '.join(map(repr, near))}: names are case-sensitive)" if near else ""
            raise LayoutError(f"no emotion column {', '.join(map(repr, missing))}{hint}; expected {wanted}",
                              table.path, 1)
        extra = [c for c in found if c not in expected]
        if extra:
            raise LayoutError(
                f"column {', '.join(map(repr, extra))} is neither one of {wanted} nor known metadata "
                f"({', '.join(sorted(METADATA_COLUMNS))})", table.path, 1)
        return list(expected)
    if not found:
        raise LayoutError(
            f"header {table.header} has no emotion columns (every column besides the ID, split and "
            "metadata columns is an emotion)", table.path, 1)
    return found


def parse_labels(table: Table, row: Row, emotions: Sequence[str], split: str) -> np.ndarray:
    """float32[E] labels of `row`, each a number in [0, 1]. A row whose emotion cells are all empty
    gets NaN labels, allowed only in the test split (labels private); partly empty rows are an error."""
    cells = [row.cells[table.index(e)] for e in emotions]
    empty = [e for e, c in zip(emotions, cells) if not c or c.lower() in EMPTY_CELLS]
    if len(empty) == len(emotions):
        if split != "test":
            raise LayoutError(
                f"no labels for a {split} clip; only test clips may be unlabelled", table.path, row.line)
        return np.full(len(emotions), np.nan, np.float32)
    if empty:
        raise LayoutError(
            f"labels {empty} are empty while others are given; a row is fully labelled or (test "
            "split only) fully empty", table.path, row.line)
    values = []
    for emotion, cell in zip(emotions, cells):
        try:
            value = float(cell)
        except ValueError:
            raise LayoutError(f"label {emotion!r} is {cell!r}, not a number", table.path, row.line) from None
        if not 0.0 <= value <= 1.0:  # also False for nan; inf is out of range
            raise LayoutError(f"label {emotion!r} is {cell!r}, outside [0, 1]", table.path, row.line)
        values.append(value)
    return np.asarray(values, np.float32)
