"""Generic CSV layout: labels.csv with id, split and emotion columns; media in media/ or videos/."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tfds_hume.layouts.fields import emotion_columns, parse_labels, parse_split, unique_ids
from tfds_hume.layouts.media import AUDIO_EXTS, VIDEO_EXTS, FolderIndex, assemble, feature_indexes
from tfds_hume.layouts.table import read_table
from tfds_hume.records import DatasetRecords

ID_COLUMNS = ("id", "File_ID", "clip_id")
SPLIT_COLUMNS = ("split", "Partition")
VIDEO_FOLDERS = ("media", "videos")
AUDIO_FOLDERS = ("media", "audio")


def read_csv_layout(root: Path, emotions: Sequence[str] | None = None) -> DatasetRecords:
    labels = read_table(root / "labels.csv")
    id_column = labels.require(ID_COLUMNS, "clip ID")
    split_column = labels.require(SPLIT_COLUMNS, "split")
    emotions = emotion_columns(labels, [id_column, split_column], emotions)
    split_at = labels.index(split_column)
    clips = []
    for clip_id, row in unique_ids(labels, id_column):
        split = parse_split(row.cells[split_at], labels.path, row.line)
        clips.append((clip_id, split, parse_labels(labels, row, emotions, split)))

    videos = FolderIndex(root, VIDEO_FOLDERS, VIDEO_EXTS)
    audios = FolderIndex(root, AUDIO_FOLDERS, AUDIO_EXTS)
    return assemble(root, "csv", emotions, clips, lambda _: videos, lambda _: audios,
                    feature_indexes(root))
