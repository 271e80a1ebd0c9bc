"""Layout readers: a dataset folder on disk -> `tfds_hume.records.DatasetRecords`.

    read_layout(root, layout="auto", *, emotions=None) -> DatasetRecords
    detect_layout(root) -> "muse" | "abaw5" | "csv"
    LayoutError   (a ValueError naming the file and the line at fault)

Layouts (file names as written; column names in any case; CSVs are UTF-8, a BOM is fine):

  muse   MuSe-2022 (MuSe-Reaction), as EIHW/MuSe2022's data_parser.py reads it; the root is often
         named `c2_muse_reaction/`. `labels.csv`: `File_ID` (or `Id`) + the emotion columns; it may
         list every clip (test rows with empty or NaN labels, as shipped) or only the labelled ones.
         `partition.csv` is read by position: first column the clip ID, last column the partition
         (train/devel/test), header names free (a header row is required). Clips in partition.csv
         but not in labels.csv are allowed only in the test split (labels private) and get NaN
         labels; a train/dev clip without labels, or a labels.csv row whose clip is not in
         partition.csv, is a LayoutError (the two files disagree: silently dropping training clips
         would be worse). Video: `raw/mp4/`, `mp4/`, then the root itself; audio: `raw/wav/`,
         `wav/`, then the root.
  abaw5  ABAW5 ERI challenge. `data_info.csv`: `File_ID`, `Split` (Train/Val/Test), one column per
         emotion, and metadata columns (Age, Country, ...; see METADATA_COLUMNS) that are not emotions.
         Test rows have empty label cells (NaN). Video: `mp4/`, then the clip's own split folders
         (`train/mp4/`, `Val/mp4/`, `validation/mp4/`, `Test/mp4/`, ... any split spelling, any case);
         audio likewise with `wav/`.
  csv    Your own data. `labels.csv`: `id` (or `File_ID`, `clip_id`), `split` (or `Partition`), one
         column per emotion (metadata columns allowed as in abaw5). Video: `media/`, then `videos/`;
         audio: `media/`, then `audio/`.

Shared rules:
  - Emotions: muse and abaw5 require exactly the seven Hume-Reaction emotions (HUME_EMOTIONS, CSV
    spelling `Empathic-Pain`, case-sensitive); a missing or extra column is a LayoutError naming the
    file, line 1 and the column. csv takes them from the header, in file order: every column
    besides the ID, split and known metadata columns. In any layout `emotions=[...]` requires
    exactly that set instead (returned in that order).
  - Clip IDs lose one pair of surrounding brackets (`[00001]` -> `00001`) in every layout; the
    stripped ID names the files (`mp4/00001.mp4`). IDs must be safe file names: not empty, not `.`
    or `..`, no `/`, `\\`, `:`, NUL or control characters. Duplicate IDs (after stripping) are errors.
  - Split names are normalised: train/training -> train; dev/devel/development/val/valid/validation
    -> dev; test/testing -> test (any case). Anything else is an error.
  - Labels are float32[E] numbers in [0, 1]. A row with all label cells empty gets NaN labels and is
    allowed only in the test split; a partly empty row is an error. `NaN`, `NA`, `N/A`, `null` and
    `None` (any case) count as empty, as pandas writes and reads them.
  - Video files: `<id>.mp4|.mov|.avi|.mkv|.webm` (this order of preference, extension in any case),
    first folder in the listed order wins. A clip with no video is reported in
    `DatasetRecords.skipped` (Skipped(id, expected path, reason)) and left out of `records`.
  - Audio is `<id>.wav` where such a file exists, else None: extraction then reads the audio track
    of the video container (the synthetic generator writes MP4 with AAC audio and no separate wav).
  - Shipped per-frame features: `feats/<Name>/<id>.csv` (all layouts) become
    `ClipRecord.feature_csvs[Name]` (keyed by folder name; the dataset key comes from
    `tfds_hume.feature_names`, and two folders giving the same key are an error); a clip without
    one simply lacks that key (missing, not zero). Their content (`timestamp` and `File_ID` in
    either order, then features) is checked by whoever reads them (extract's `shipped` extractor).

What counts as bad input ("missing or extra" columns): a header column without a name (e.g. a
trailing comma) or repeated; a data row with more or fewer cells than the header; no ID or split
column; no emotion column at all; with `emotions=` (or the Hume default of muse/abaw5), a header
that lacks one of them or has a column that is neither one of them nor known metadata. Rows whose cells are
all empty are skipped. Errors give the 1-based
line number in the file (the header is line 1), e.g. `labels.csv, line 4: ...`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tfds_hume.layouts.abaw import read_abaw5
from tfds_hume.layouts.errors import LayoutError
from tfds_hume.layouts.fields import METADATA_COLUMNS, SPLIT_NAMES
from tfds_hume.layouts.generic import ID_COLUMNS as CSV_ID_COLUMNS
from tfds_hume.layouts.generic import SPLIT_COLUMNS as CSV_SPLIT_COLUMNS
from tfds_hume.layouts.generic import read_csv_layout
from tfds_hume.layouts.muse import read_muse
from tfds_hume.layouts.table import read_header
from tfds_hume.records import DatasetRecords

__all__ = ["LAYOUTS", "LayoutError", "METADATA_COLUMNS", "SPLIT_NAMES", "detect_layout", "read_layout"]

LAYOUTS = ("muse", "abaw5", "csv")
_READERS = {"muse": read_muse, "abaw5": read_abaw5, "csv": read_csv_layout}


def _root(root: str | os.PathLike) -> Path:
    path = Path(root).expanduser().absolute()
    if not path.exists():
        raise LayoutError("dataset folder not found", path)
    if not path.is_dir():
        raise LayoutError("is a file, expected a dataset folder", path)
    return path


def detect_layout(root: str | os.PathLike, *, look_below: bool = True) -> str:
    """The layout of `root`: data_info.csv -> abaw5; labels.csv + partition.csv -> muse; labels.csv
    whose header has ID and split columns -> csv. Otherwise a LayoutError saying what was looked for and
    (look_below) which sub-folder holds a layout instead."""
    root = _root(root)
    if (root / "data_info.csv").is_file():
        return "abaw5"
    labels = root / "labels.csv"
    if labels.is_file():
        if (root / "partition.csv").is_file():
            return "muse"
        header = {c.lower() for c in read_header(labels)}
        lacks = [f"{what} column (one of {list(names)})"
                 for what, names in (("an ID", CSV_ID_COLUMNS), ("a split", CSV_SPLIT_COLUMNS))
                 if not any(n.lower() in header for n in names)]
        if not lacks:
            return "csv"
        raise LayoutError(
            "labels.csv but no partition.csv beside it (muse layout), and the header lacks "
            f"{' and '.join(lacks)} (csv layout)",
            labels, 1)
    below = _layouts_below(root) if look_below else []
    hint = (f"; {', '.join(f'{p.name}/ has the {name} layout' for p, name in below)}: pass that folder "
            f"(--data-root {below[0][0]})") if below else ""
    raise LayoutError(
        "no known dataset layout: looked for data_info.csv (abaw5), labels.csv + partition.csv "
        f"(muse), or labels.csv with id and split columns (csv){hint}", root)


def _layouts_below(root: Path) -> list[tuple[Path, str]]:
    """The sub-folders of `root` that hold a layout (e.g. the `c2_muse_reaction/` of an unpacked archive);
    one level only, so a folder of videos costs one listing."""
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            found.append((child, detect_layout(child, look_below=False)))
        except (LayoutError, OSError):
            continue
    return found


def read_layout(root: str | os.PathLike, layout: str = "auto", *,
                emotions: Sequence[str] | None = None) -> DatasetRecords:
    """Read the dataset at `root` in `layout` ("auto", "muse", "abaw5" or "csv"); see the module doc.

    `emotions`: if given, the label columns the header must hold (in this order in the labels);
    default: the seven Hume-Reaction emotions for muse and abaw5, the header's for csv.
    Raises LayoutError for bad input; clips whose video is missing come back in `.skipped`.
    """
    if layout != "auto" and layout not in _READERS:
        raise LayoutError(f"unknown layout {layout!r}; choose one of {['auto', *LAYOUTS]}")
    path = _root(root)
    if layout == "auto":
        layout = detect_layout(path)
    return _READERS[layout](path, emotions)
