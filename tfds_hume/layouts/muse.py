"""MuSe-2022 (MuSe-Reaction) layout: labels.csv + partition.csv, feats/, raw media.

Read as EIHW/MuSe2022's data_parser.py reads it: partition.csv by position (first column the ID, last
the partition; header names not fixed), labels.csv by its `File_ID` column, with a row for every
clip (test rows empty) or for the labelled clips only.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfds_hume.layouts.errors import LayoutError
from tfds_hume.layouts.fields import HUME_REQUIRED, emotion_columns, parse_labels, parse_split, split_name, unique_ids
from tfds_hume.layouts.media import AUDIO_EXTS, VIDEO_EXTS, FolderIndex, assemble, feature_indexes
from tfds_hume.layouts.table import read_table
from tfds_hume.records import HUME_EMOTIONS, DatasetRecords

ID_COLUMNS = ("File_ID", "Id")
VIDEO_FOLDERS = ("raw/mp4", "mp4", "")
AUDIO_FOLDERS = ("raw/wav", "wav", "")


def read_muse(root: Path, emotions: Sequence[str] | None = None) -> DatasetRecords:
    labels = read_table(root / "labels.csv")
    label_id = labels.require(ID_COLUMNS, "clip ID")
    why = "" if emotions else HUME_REQUIRED.format(layout="muse")
    emotions = emotion_columns(labels, [label_id], emotions or HUME_EMOTIONS, why)
    labelled = dict(unique_ids(labels, label_id))

    partition = read_table(root / "partition.csv")
    if len(partition.header) < 2:
        raise LayoutError(f"header {partition.header} has one column; expected the clip ID first and the "
                          "partition (train/devel/test) last", partition.path, 1)
    if split_name(partition.header[-1]) is not None:
        raise LayoutError(f"the first row {partition.header} looks like data; partition.csv needs a header "
                          "row (e.g. Id,Partition)", partition.path, 1)
    part_id, split_at = partition.header[0], len(partition.header) - 1

    clips: list[tuple[str, str, np.ndarray]] = []
    for clip_id, row in unique_ids(partition, part_id):
        split = parse_split(row.cells[split_at], partition.path, row.line)
        label_row = labelled.pop(clip_id, None)
        if label_row is not None:
            clips.append((clip_id, split, parse_labels(labels, label_row, emotions, split)))
        elif split == "test":
            clips.append((clip_id, split, np.full(len(emotions), np.nan, np.float32)))
        else:
            raise LayoutError(
                f"{split} clip {clip_id!r} has no row in {labels.path.name}; only test clips may be "
                "unlabelled", partition.path, row.line)
    if labelled:
        clip_id, row = next(iter(labelled.items()))
        raise LayoutError(
            f"clip {clip_id!r} is not listed in {partition.path.name} ({len(labelled)} labelled clips "
            "have no split)", labels.path, row.line)

    videos = FolderIndex(root, VIDEO_FOLDERS, VIDEO_EXTS)
    audios = FolderIndex(root, AUDIO_FOLDERS, AUDIO_EXTS)
    return assemble(root, "muse", emotions, clips, lambda _: videos, lambda _: audios,
                    feature_indexes(root))
