"""`shipped`: the per-frame feature CSVs a dataset ships (MuSe: FAU, VGGFace2, ...), resampled to the sampled frames.

CSV format (MuSe feature files): header `timestamp,File_ID,<feature columns>`; `timestamp` in
milliseconds from the start of the clip (MuSe convention; the synthetic generator writes the same),
File_ID is not checked. Rows must have the header's number of cells, finite numbers and increasing
timestamps; anything else is a `FeatureFileError` naming the file and line (header = line 1), which
fails that clip only.

Resampling: the clip's `num_frames` equidistant decoded frame times (`extract.media.sample_times`,
the same frames the other extractors see) each take the CSV row nearest in time (ties: the earlier
row). frame_mask[i] is False when that row lies further than the CSV's typical spacing (median
timestamp step; 0.5 s for a one-row CSV) from the frame time: a gap in the CSV (e.g. no face found)
or a CSV that ends before the video. A clip without the CSV gets the feature marked missing.

One extractor per feature name: name `shipped-<name lowercase>`, feature key `<name lowercase>`
(`fau`, `vggface2`), source `shipped:<Name>`. The dims come from the CSV headers, which must agree
across clips.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from extract.errors import FeatureFileError, MediaError
from extract.extractors.base import Extractor, FeatureValue, Media, Missing, Output
from extract.media import sample_times
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

SINGLE_ROW_TOLERANCE_S = 0.5


def read_header(path: str | Path) -> list[str]:
    """The feature column names of a shipped CSV (after `timestamp, File_ID`)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError) as e:
        raise FeatureFileError(path, f"cannot read ({e})") from e
    if not header:
        raise FeatureFileError(path, "line 1: empty file, expected a header `timestamp,File_ID,<features>`")
    header = [h.strip() for h in header]
    if len(header) < 3 or header[0].lower() != "timestamp" or header[1].lower() != "file_id":
        raise FeatureFileError(path, f"line 1: header must start with `timestamp,File_ID` and have at "
                                     f"least one feature column, got {header[:4]}")
    if any(not h for h in header[2:]):
        raise FeatureFileError(path, "line 1: a feature column has no name")
    return header[2:]


def read_feature_csv(path: str | Path, columns: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a shipped CSV: (times in seconds float64[R], values float32[R, D]), checked row by row."""
    path = Path(path)
    names = read_header(path)
    if columns is not None and names != columns:
        raise FeatureFileError(path, f"line 1: feature columns differ from the other clips' "
                                     f"({len(names)} vs {len(columns)} columns)")
    times: list[float] = []
    rows: list[list[float]] = []
    width = len(names) + 2
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != width:
                raise FeatureFileError(path, f"line {line}: {len(row)} cells, the header has {width}")
            try:
                vals = [float(c) for c in (row[0], *row[2:])]
            except ValueError:
                bad = next(i for i, c in enumerate(row) if i != 1 and not _is_float(c))
                raise FeatureFileError(path, f"line {line}: column {bad + 1} ({'timestamp' if bad == 0 else names[bad - 2]})"
                                             f" is not a number: {row[bad]!r}") from None
            if not all(math.isfinite(v) for v in vals):
                raise FeatureFileError(path, f"line {line}: non-finite value (nan/inf)")
            t = vals[0] / 1000.0
            if times and t <= times[-1]:
                raise FeatureFileError(path, f"line {line}: timestamp {row[0]} ms does not increase")
            times.append(t)
            rows.append(vals[1:])
    if not rows:
        raise FeatureFileError(path, "no data rows")
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
    """One shipped CSV feature (e.g. "FAU") resampled to the clip's num_frames sampled frame times."""

    version = 1

    def __init__(self, feature: str, columns: list[str], num_frames: int = 32):
        if not columns:
            raise ValueError(f"shipped feature {feature}: no columns")
        self.feature, self.columns, self.num_frames = feature, list(columns), int(num_frames)
        self.key = feature.lower()
        self.name = f"shipped-{self.key}"

    @classmethod
    def for_records(cls, records: Iterable[ClipRecord], num_frames: int = 32) -> list["ShippedExtractor"]:
        """One extractor per shipped feature name found in `records`; columns from the first clip's CSV."""
        first: dict[str, Path] = {}
        for r in records:
            for name, path in r.feature_csvs.items():
                first.setdefault(name, Path(path))
        return [cls(name, read_header(first[name]), num_frames) for name in sorted(first)]

    def settings(self) -> dict[str, Any]:
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
