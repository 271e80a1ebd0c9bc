"""The record a layout reader yields for each clip, and the list of them for a whole dataset."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

SPLITS = ("train", "dev", "test")

# The Hume-Reaction emotions in the dataset's order (CSV spelling). Readers take emotions from the
# file header; this list is only for the synthetic generator and for documentation.
HUME_EMOTIONS = ("Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise")


@dataclasses.dataclass
class ClipRecord:
    """One clip of a dataset on disk.

    id: File ID without brackets, safe as a file name.
    split: one of SPLITS.
    labels: float32[E], NaN where unlabelled (e.g. the test split).
    video, audio: media paths, None where absent.
    feature_csvs: shipped per-frame feature CSVs by folder name (e.g. "FAUs" -> feats/FAUs/00001.csv).
    """

    id: str
    split: str
    labels: np.ndarray
    video: Path | None = None
    audio: Path | None = None
    feature_csvs: dict[str, Path] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Skipped:
    """A clip that was listed but could not be used, with the reason (reported, never fatal)."""

    id: str
    path: str
    reason: str


@dataclasses.dataclass
class DatasetRecords:
    """Everything a layout reader found: emotions from the header, usable clips, skipped clips."""

    root: Path
    layout: str
    emotions: list[str]
    records: list[ClipRecord]
    skipped: list[Skipped] = dataclasses.field(default_factory=list)

    def split(self, name: str) -> list[ClipRecord]:
        return [r for r in self.records if r.split == name]
