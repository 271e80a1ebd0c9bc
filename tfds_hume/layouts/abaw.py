"""ABAW5 (ERI challenge) layout: one data_info.csv, media in mp4/ and wav/ or per split folder."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tfds_hume.layouts.fields import HUME_REQUIRED, emotion_columns, parse_labels, parse_split, unique_ids
from tfds_hume.layouts.media import AUDIO_EXTS, VIDEO_EXTS, FolderIndex, assemble, feature_indexes, split_folders
from tfds_hume.layouts.table import read_table
from tfds_hume.records import HUME_EMOTIONS, SPLITS, DatasetRecords

ID_COLUMNS = ("File_ID", "Id")
SPLIT_COLUMNS = ("Split", "Partition")


def read_abaw5(root: Path, emotions: Sequence[str] | None = None) -> DatasetRecords:
    info = read_table(root / "data_info.csv")
    id_column = info.require(ID_COLUMNS, "clip ID")
    split_column = info.require(SPLIT_COLUMNS, "split")
    why = "" if emotions else HUME_REQUIRED.format(layout="abaw5")
    emotions = emotion_columns(info, [id_column, split_column], emotions or HUME_EMOTIONS, why)
    split_at = info.index(split_column)
    clips = []
    for clip_id, row in unique_ids(info, id_column):
        split = parse_split(row.cells[split_at], info.path, row.line)
        clips.append((clip_id, split, parse_labels(info, row, emotions, split)))

    # Shared folders first, then the clip's own split folders (train/mp4, Val/mp4, ...).
    per_split = split_folders(root)
    videos = {s: FolderIndex(root, ["mp4", *(f"{d}/mp4" for d in per_split.get(s, []))], VIDEO_EXTS)
              for s in SPLITS}
    audios = {s: FolderIndex(root, ["wav", *(f"{d}/wav" for d in per_split.get(s, []))], AUDIO_EXTS)
              for s in SPLITS}
    return assemble(root, "abaw5", emotions, clips, videos.__getitem__, audios.__getitem__,
                    feature_indexes(root))
