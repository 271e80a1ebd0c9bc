"""Finding each clip's media and shipped feature CSVs, one folder listing per folder (25k clips)."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from tfds_hume.feature_names import feature_key
from tfds_hume.layouts.errors import LayoutError
from tfds_hume.layouts.fields import split_name
from tfds_hume.records import ClipRecord, DatasetRecords, Skipped

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
AUDIO_EXTS = (".wav",)
FEATURE_EXTS = (".csv",)


class FolderIndex:
    """Files named `<id><ext>` in some folders under a root, looked up by ID.

    Folders are searched in the given order (missing ones are skipped); within a folder the extension
    order of `exts` decides (extensions match in any case: `.MP4` counts as `.mp4`). Entries that are
    not regular files (folders, broken links) are not media.
    """

    def __init__(self, root: Path, folders: Sequence[str], exts: Sequence[str]):
        self.root, self.folders, self.exts = root, list(folders), tuple(exts)
        rank = {ext: i for i, ext in enumerate(self.exts)}
        self._by_id: dict[str, Path] = {}
        for folder in self.folders:
            best: dict[str, tuple[int, Path]] = {}
            for entry in _scan(root / folder):
                stem, ext = os.path.splitext(entry.name)
                r = rank.get(ext.lower())
                if r is not None and (stem not in best or r < best[stem][0]) and entry.is_file():
                    best[stem] = (r, Path(entry.path))
            for stem, (_, path) in best.items():
                self._by_id.setdefault(stem, path)

    def find(self, clip_id: str) -> Path | None:
        return self._by_id.get(clip_id)

    def expected(self, clip_id: str) -> Path:
        """Where the file would be first looked for (for a Skipped entry)."""
        return self.root / self.folders[0] / f"{clip_id}{self.exts[0]}"

    def describe(self, clip_id: str) -> str:
        exts = ",".join(e.lstrip(".") for e in self.exts)
        folders = ", ".join(f"{f.rstrip('/')}/" if f not in ("", ".") else "./" for f in self.folders)
        return f"{clip_id}.{{{exts}}} in {folders} under {self.root}"


def _scan(folder: Path) -> Iterable[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            yield from entries
    except (FileNotFoundError, NotADirectoryError):
        return


def feature_indexes(root: Path) -> dict[str, FolderIndex]:
    """`feats/<Name>/<id>.csv` indexes by folder name; hidden folders are ignored. Two folders that
    name the same dataset feature (`FAU/` and `FAUs/`, see `tfds_hume.feature_names`) are an error."""
    names = sorted(e.name for e in _scan(root / "feats") if e.is_dir() and not e.name.startswith("."))
    by_key: dict[str, str] = {}
    for name in names:
        key = feature_key(name)
        if key in by_key:
            raise LayoutError(f"feats/{by_key[key]}/ and feats/{name}/ both give the feature {key!r}; "
                              "keep one of them", root / "feats")
        by_key[key] = name
    return {name: FolderIndex(root, [f"feats/{name}"], FEATURE_EXTS) for name in names}


def split_folders(root: Path) -> dict[str, list[str]]:
    """Subfolders of `root` named like a split (`train`, `Val`, `validation`, `Test`, ...) by split."""
    out: dict[str, list[str]] = {}
    for entry in sorted(_scan(root), key=lambda e: e.name):
        split = split_name(entry.name)
        if split and entry.is_dir():
            out.setdefault(split, []).append(entry.name)
    return out


def assemble(root: Path, layout: str, emotions: list[str],
             clips: Iterable[tuple[str, str, np.ndarray]],
             video: Callable[[str], FolderIndex], audio: Callable[[str], FolderIndex | None],
             features: dict[str, FolderIndex]) -> DatasetRecords:
    """DatasetRecords for (id, split, labels) triples: `video(split)` and `audio(split)` give the
    index to search for that split. A clip without a video is Skipped; audio and feature CSVs are
    optional (absent means None / left out of `feature_csvs`)."""
    records, skipped = [], []
    for clip_id, split, labels in clips:
        videos = video(split)
        path = videos.find(clip_id)
        if path is None:
            skipped.append(Skipped(clip_id, str(videos.expected(clip_id)),
                                   f"no video file: looked for {videos.describe(clip_id)}"))
            continue
        audios = audio(split)
        records.append(ClipRecord(
            id=clip_id, split=split, labels=labels, video=path,
            audio=audios.find(clip_id) if audios is not None else None,
            feature_csvs={name: p for name, index in features.items()
                          if (p := index.find(clip_id)) is not None}))
    return DatasetRecords(root=root, layout=layout, emotions=list(emotions), records=records,
                          skipped=skipped)
