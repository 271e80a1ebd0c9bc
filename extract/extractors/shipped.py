"""`shipped`: the per-frame feature CSVs a dataset ships (MuSe: FAUs, VGGFace2, ...), resampled to the sampled frames.

CSV format (MuSe-2022 feature files, as EIHW/MuSe2022's data_parser.py reads them): a header, two
metadata columns, `timestamp` and the clip ID (`File_ID`; also `Id`, `segment_id`, `video_id`), in
either order (MuSe's code does not fix it), then the feature columns from column 2 on. `timestamp` is in
milliseconds from the start of the clip (MuSe convention; the synthetic generator writes the same);
the ID column is not checked. Each row must have the header's number of cells, finite numbers and increasing
timestamps, and there must be at least one data row. Anything else (also an empty file, a file
that is not UTF-8 text, or feature columns that differ from the other clips') is a
`FeatureFileError` naming the file and line (header = line 1): it fails that clip only, wherever
the clip comes in the run.

Resampling: the clip's `num_frames` equidistant decoded frame times (`extract.media.sample_times`,
the same frames the other extractors see) each take the CSV row nearest in time (ties: the earlier
row). frame_mask[i] is False when that row lies further than the CSV's typical spacing (median
timestamp step; 0.5 s for a one-row CSV) from the frame time: a gap in the CSV (e.g. no face found)
or a CSV that ends before the video. A clip without the CSV gets the feature marked missing.

One extractor per feature folder: feature key from `tfds_hume.feature_names` (`FAUs` -> `fau`,
`VGGFace2` -> `vggface2`), name `shipped-<key>`, source `shipped:<Folder>` (the folder name as
shipped). The feature columns come from the most common header among the first HEADER_SAMPLE
clips whose header reads (so one broken or odd file, first or not, fails only its own clip); a
feature none of whose CSVs has a readable header is a ValueError (bad input: the run stops before
any work, exit code 2 from the CLI).
"""
from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from extract.errors import FeatureFileError, MediaError
from extract.extractors.base import Extractor, FeatureValue, Media, Missing, Output
from extract.media import sample_times
from tfds_hume.feature_names import feature_key
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

SINGLE_ROW_TOLERANCE_S = 0.5
HEADER_SAMPLE = 25
ID_COLUMNS = ("file_id", "id", "segment_id", "video_id")  # the metadata column beside timestamp, any case
_EXPECTED = "expected `timestamp,File_ID,<features>` (timestamp and File_ID in either order)"


def _rows(path: Path):
    """(line, cells) of every row of `path`, turning read errors into FeatureFileErrors."""
    line = 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for cells in reader:
                yield line, cells
                line = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise FeatureFileError(path, f"line {line}: not UTF-8 text ({e.reason})") from None
    except csv.Error as e:
        raise FeatureFileError(path, f"line {line}: malformed CSV ({e})") from None
    except OSError as e:
        raise FeatureFileError(path, f"cannot read ({e.strerror or e})") from None


def _parse_header(path: Path, cells: list[str] | None) -> tuple[list[str], int]:
    """(feature column names, index of the timestamp column: 0 or 1) from a header row."""
    if not cells or not any(c.strip() for c in cells):
        raise FeatureFileError(path, f"line 1: empty file, {_EXPECTED}")
    header = [h.strip() for h in cells]
    meta = [h.lower() for h in header[:2]]
    # The ID column is named, not guessed: a file without one would silently lose a feature column.
    other = meta[1 - meta.index("timestamp")] if len(meta) == 2 and "timestamp" in meta else None
    if len(header) < 3 or other not in ID_COLUMNS:
        raise FeatureFileError(path, f"line 1: {_EXPECTED} and at least one feature column, got {header[:4]}")
    if any(not h for h in header[2:]):
        raise FeatureFileError(path, "line 1: a feature column has no name")
    return header[2:], meta.index("timestamp")


def read_header(path: str | Path) -> list[str]:
    """The feature column names of a shipped CSV (the columns after its two metadata columns)."""
    path = Path(path)
    first = next(_rows(path), (1, None))[1]
    return _parse_header(path, first)[0]


def read_feature_csv(path: str | Path, columns: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a shipped CSV: (times in seconds float64[R], values float32[R, D]), checked row by row."""
    path = Path(path)
    rows_in = _rows(path)
    names, t_at = _parse_header(path, next(rows_in, (1, None))[1])
    if columns is not None and names != columns:
        raise FeatureFileError(path, f"line 1: feature columns differ from the other clips' "
                                     f"({len(names)} vs {len(columns)} columns)")
    times: list[float] = []
    rows: list[list[float]] = []
    width = len(names) + 2
    for line, row in rows_in:
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != width:
            raise FeatureFileError(path, f"line {line}: {len(row)} cells, the header has {width}")
        try:
            vals = [float(c) for c in (row[t_at], *row[2:])]
        except ValueError:
            bad = next(i for i, c in enumerate(row) if (i == t_at or i >= 2) and not _is_float(c))
            what = "timestamp" if bad == t_at else names[bad - 2]
            raise FeatureFileError(path, f"line {line}: column {bad + 1} ({what}) is not a number: "
                                         f"{row[bad]!r}") from None
        if not all(math.isfinite(v) for v in vals):
            raise FeatureFileError(path, f"line {line}: non-finite value (nan/inf)")
        t = vals[0] / 1000.0
        if times and t <= times[-1]:
            raise FeatureFileError(path, f"line {line}: timestamp {row[t_at]} ms does not increase")
        times.append(t)
        rows.append(vals[1:])
    if not rows:
        raise FeatureFileError(path, "line 2: no data rows after the header")
    return np.asarray(times, dtype=np.float64), np.asarray(rows, dtype=np.float32)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def resample_nearest(times: np.ndarray, values: np.ndarray, targets: np.ndarray,
                     tolerance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row of `values` nearest in time to each target (ties: earlier row), and the mask of rows within tolerance.

    tolerance defaults to the median step of `times` (SINGLE_ROW_TOLERANCE_S for one row).
    """
    times = np.asarray(times, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if tolerance is None:
        tolerance = float(np.median(np.diff(times))) if len(times) > 1 else SINGLE_ROW_TOLERANCE_S
    hi = np.clip(np.searchsorted(times, targets, side="left"), 0, len(times) - 1)
    lo = np.clip(hi - 1, 0, len(times) - 1)
    idx = np.where(np.abs(targets - times[lo]) <= np.abs(times[hi] - targets), lo, hi)
    mask = np.abs(times[idx] - targets) <= tolerance + 1e-9
    return values[idx].astype(np.float32), mask


class ShippedExtractor(Extractor):
    """One shipped CSV feature folder (e.g. "FAUs") resampled to the clip's num_frames sampled frame times."""

    version = 1

    def __init__(self, feature: str, columns: list[str], num_frames: int = 32):
        if not columns:
            raise ValueError(f"shipped feature {feature}: no columns")
        self.feature, self.columns, self.num_frames = feature, list(columns), int(num_frames)
        self.key = feature_key(feature)
        self.name = f"shipped-{self.key}"

    @classmethod
    def for_records(cls, records: Iterable[ClipRecord], num_frames: int = 32) -> list["ShippedExtractor"]:
        """One extractor per shipped feature folder found in `records`; columns as the module doc says."""
        paths: dict[str, list[Path]] = {}
        for r in records:
            for name, path in r.feature_csvs.items():
                paths.setdefault(name, []).append(Path(path))
        return [cls(name, _usual_columns(name, paths[name]), num_frames) for name in sorted(paths)]

    def settings(self) -> dict[str, Any]:
        # `feature` is the folder as shipped; the dataset key is derived from it.
        return {"extractor": "shipped", "version": self.version, "feature": self.feature,
                "num_frames": self.num_frames, "time_unit": "ms", "resample": "nearest",
                "tolerance": "median-step", "sampling": "equidistant-nearest"}

    def specs(self) -> dict[str, FeatureSpec]:
        params = dict(self.settings(), columns=self.columns)
        return {self.key: FeatureSpec(kind="frame", dim=len(self.columns), num_frames=self.num_frames,
                                      source=f"shipped:{self.feature}", params=params)}

    def prepare(self, clip: ClipRecord, media: Media) -> Output:
        csv_path = clip.feature_csvs.get(self.feature)
        if csv_path is None:
            return {self.key: Missing(f"no {self.feature} CSV for clip {clip.id}")}
        if clip.video is None:
            raise MediaError(None, f"clip {clip.id} has no video to align {self.feature} to")
        times, values = read_feature_csv(csv_path, self.columns)
        _, frame_times = sample_times(media.probe(clip.video).frame_times, self.num_frames)
        value, mask = resample_nearest(times, values, frame_times)
        if not mask.all():
            media.note(clip.id, f"{self.feature}: {int((~mask).sum())} of {self.num_frames} frames have no "
                                f"CSV row nearby (masked)")
        return {self.key: FeatureValue(value, mask)}


def _usual_columns(folder: str, paths: list[Path]) -> list[str]:
    """The most common header among the first HEADER_SAMPLE readable ones (ties: the earliest)."""
    seen: Counter[tuple[str, ...]] = Counter()
    first_error = None
    for path in paths:
        try:
            seen[tuple(read_header(path))] += 1
        except FeatureFileError as e:
            first_error = first_error or e
            continue
        if sum(seen.values()) >= HEADER_SAMPLE:
            break
    if not seen:
        raise ValueError(f"feats/{folder}/: no CSV has a readable header, so its columns are unknown "
                         f"(first: {first_error})")
    return list(max(seen, key=seen.__getitem__))  # max keeps the first of equal counts (insertion order)
