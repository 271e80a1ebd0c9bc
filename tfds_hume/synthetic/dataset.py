"""Plans the clips of a synthetic dataset and writes the dataset tree in the MuSe-2022 or ABAW5 layout."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tfds_hume.records import HUME_EMOTIONS, SPLITS
from tfds_hume.synthetic import audio, expression, face, features, labels, writer

LAYOUTS = ("muse", "abaw5")
# Cycled over clip numbers, so any 6 consecutive clips cover all rates, including NTSC's non-integer ones.
FRAME_RATES = (Fraction(24000, 1001), Fraction(25), Fraction(30), Fraction(15), Fraction(30000, 1001), Fraction(20))
DURATION_RANGE = (2.0, 6.0)  # seconds
FRAME_SIZE = (96, 96)  # width, height
# faults=True adds these train clips (listed in the label files like any other clip).
FAULT_IDS = {"truncated": "99997", "empty": "99998", "no_audio": "99999"}
MUSE_PARTITION = {"train": "train", "dev": "devel", "test": "test"}
ABAW5_SPLIT = {"train": "Train", "dev": "Val", "test": "Test"}
COUNTRIES = ("United States", "South Africa")
METADATA_NAME = "synthetic.json"
LABEL_FORMAT = "{:.4f}"
FAU_FOLDER, VGG_FOLDER = "FAUs", "VGGFace2"  # feats/ folder names as MuSe-2022 ships them

# Sub-streams of each clip's random generator (entropy [seed, clip number, stream]).
_LABELS, _EXPRESSION, _STYLE, _VOICE, _FEATURES = range(5)
_DATASET_STREAM = 1_000_000  # entropy slot for dataset-wide draws; clip numbers stay below it


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """One clip, fully determined by (seed, number). `true` drives the media, `labels` go to the files."""

    id: str
    number: int
    split: str
    true: np.ndarray  # float32[E]
    labels: np.ndarray  # float32[E]
    fps: Fraction
    num_frames: int
    age: int
    country: str
    fault: str | None = None

    @property
    def duration(self) -> float:
        return float(self.num_frames / self.fps)


def _rng(seed: int, number: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, number, stream])


def _counts(clips_per_split: int | Mapping[str, int]) -> dict[str, int]:
    if isinstance(clips_per_split, Mapping):
        unknown = set(clips_per_split) - set(SPLITS)
        if unknown:
            raise ValueError(f"clips_per_split has unknown splits {sorted(unknown)}; splits are {SPLITS}")
        counts = {s: clips_per_split.get(s, 0) for s in SPLITS}
    else:
        counts = {s: clips_per_split for s in SPLITS}
    for s, n in counts.items():
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ValueError(f"clips_per_split[{s!r}] must be a non-negative int, got {n!r}")
    if sum(counts.values()) >= min(int(i) for i in FAULT_IDS.values()):
        raise ValueError(f"at most {min(int(i) for i in FAULT_IDS.values()) - 1} clips fit 5-digit IDs")
    return {s: int(n) for s, n in counts.items()}


def plan_clips(clips_per_split: int | Mapping[str, int] = 8, *, seed: int = 0, faults: bool = False,
               emotions: Sequence[str] = HUME_EMOTIONS,
               duration_range: tuple[float, float] = DURATION_RANGE) -> list[ClipPlan]:
    """Every clip of the dataset, sorted by ID, with true and written intensities (no files written).

    Clips are numbered 1..N (ID = 5-digit number); splits are dealt out by a seeded shuffle. The
    fault clips, if any, follow with the IDs in FAULT_IDS.
    """
    counts = _counts(clips_per_split)
    emotions = list(emotions)
    lo, hi = duration_range
    if not 0 < lo <= hi:
        raise ValueError(f"duration_range must satisfy 0 < low <= high, got {duration_range}")
    order = [s for s in SPLITS for _ in range(counts[s])]
    order = [order[i] for i in np.random.default_rng([seed, _DATASET_STREAM, 0]).permutation(len(order))]
    numbered = [(k + 1, split, None) for k, split in enumerate(order)]
    if faults:
        numbered += [(int(fid), "train", kind) for kind, fid in FAULT_IDS.items()]
    plans = []
    for number, split, fault in numbered:
        rng = _rng(seed, number, _LABELS)
        true, written = labels.sample_intensities(1, rng, emotions)
        fps = FRAME_RATES[(number - 1) % len(FRAME_RATES)]
        num_frames = max(2, int(round(rng.uniform(lo, hi) * fps)))
        plans.append(ClipPlan(id=f"{number:05d}", number=number, split=split, true=true[0], labels=written[0],
                              fps=fps, num_frames=num_frames, age=int(rng.integers(18, 66)),
                              country=COUNTRIES[int(rng.integers(len(COUNTRIES)))], fault=fault))
    return plans


def _write_csv(path: Path, header: Sequence[str], rows) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def _label_cells(values: np.ndarray) -> list[str]:
    return [LABEL_FORMAT.format(float(v)) for v in values]


def write_label_files(root: Path, layout: str, plans: Sequence[ClipPlan], emotions: Sequence[str]) -> None:
    """The label/partition tables of `layout`; test labels stay private like in the real data (MuSe:
    a labels.csv row for every clip, test rows empty; ABAW5: empty label cells)."""
    if layout == "muse":
        _write_csv(root / "labels.csv", ["File_ID", *emotions],
                   ([f"[{p.id}]", *(_label_cells(p.labels) if p.split != "test" else [""] * len(emotions))]
                    for p in plans))
        _write_csv(root / "partition.csv", ["File_ID", "Partition"],
                   ([f"[{p.id}]", MUSE_PARTITION[p.split]] for p in plans))
    elif layout == "abaw5":
        _write_csv(root / "data_info.csv", ["File_ID", "Split", *emotions, "Age", "Country"],
                   ([f"[{p.id}]", ABAW5_SPLIT[p.split],
                     *(_label_cells(p.labels) if p.split != "test" else [""] * len(emotions)), p.age, p.country]
                    for p in plans))
    else:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")


def clip_expression(plan: ClipPlan, seed: int, emotions: Sequence[str]) -> expression.Expression:
    """The expression timeline that the clip's face, voice and feature rows follow."""
    return expression.sample_expression(plan.true, emotions, plan.duration, _rng(seed, plan.number, _EXPRESSION))


def write_clip_media(path: Path, plan: ClipPlan, seed: int, emotions: Sequence[str],
                     frame_size: tuple[int, int] = FRAME_SIZE) -> None:
    """The clip's MP4 (or its planted fault)."""
    if plan.fault == "empty":
        writer.write_empty(path)
        return
    expr = clip_expression(plan, seed, emotions)
    style = face.sample_style(_rng(seed, plan.number, _STYLE))
    voice = audio.sample_voice(_rng(seed, plan.number, _VOICE))
    width, height = frame_size
    times = np.arange(plan.num_frames) / float(plan.fps)
    frames = face.render_frames(expr, style, times, width, height)
    sound = None
    if plan.fault != "no_audio":
        sound = audio.render_audio(expr, voice, int(round(plan.duration * audio.SAMPLE_RATE)))
    writer.write_mp4(path, frames, width, height, plan.fps, sound)
    if plan.fault == "truncated":
        writer.truncate_in_middle(path)


def write_clip_features(feats_dir: Path, plan: ClipPlan, seed: int, emotions: Sequence[str],
                        projection: np.ndarray) -> None:
    """feats/FAUs/<id>.csv and feats/VGGFace2/<id>.csv of one clip (MuSe-2022's folder names)."""
    expr = clip_expression(plan, seed, emotions)
    rng = _rng(seed, plan.number, _FEATURES)
    identity = rng.standard_normal(features.VGG_DIM)
    ts, fau = features.fau_table(expr, rng)
    features.write_feature_csv(feats_dir / FAU_FOLDER / f"{plan.id}.csv", plan.id, ts, fau, expression.AU_NAMES)
    ts, vgg = features.vgg_table(expr, projection, identity, rng)
    features.write_feature_csv(feats_dir / VGG_FOLDER / f"{plan.id}.csv", plan.id, ts, vgg, features.VGG_NAMES)


def generate(root, *, layout: str = "muse", clips_per_split: int | Mapping[str, int] = 8, seed: int = 0,
             faults: bool = False, emotions: Sequence[str] = HUME_EMOTIONS,
             frame_size: tuple[int, int] = FRAME_SIZE, duration_range: tuple[float, float] = DURATION_RANGE,
             progress: bool = True) -> Path:
    """Writes a synthetic reaction-video dataset under `root` in `layout` and returns `root`.

    Same arguments give identical label files and identical decoded media. See the package
    docstring for the file layout and what the media encode.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    width, height = frame_size
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"frame_size must be even and at least 16x16 (yuv420p), got {frame_size}")
    emotions = list(emotions)
    root = Path(root)
    plans = plan_clips(clips_per_split, seed=seed, faults=faults, emotions=emotions, duration_range=duration_range)
    media_dir = root / ("raw/mp4" if layout == "muse" else "mp4")
    media_dir.mkdir(parents=True, exist_ok=True)
    feats_dir = root / "feats"
    projection = None
    if layout == "muse":
        for name in (FAU_FOLDER, VGG_FOLDER):
            (feats_dir / name).mkdir(parents=True, exist_ok=True)
        projection = features.vgg_projection(len(emotions), np.random.default_rng([seed, _DATASET_STREAM, 1]))
    # disable=None: tqdm draws the bar on a terminal only, never into a log.
    for plan in tqdm(plans, desc=f"synthetic {layout} clips", unit="clip", disable=None if progress else True):
        write_clip_media(media_dir / f"{plan.id}.mp4", plan, seed, emotions, frame_size)
        if layout == "muse":
            write_clip_features(feats_dir, plan, seed, emotions, projection)
    write_label_files(root, layout, plans, emotions)
    meta = {
        "synthetic": True,
        "generator": "tfds_hume.synthetic",
        "layout": layout,
        "seed": seed,
        "clips_per_split": {s: sum(p.split == s and p.fault is None for p in plans) for s in SPLITS},
        "fault_ids": {kind: fid for kind, fid in FAULT_IDS.items()} if faults else {},
        "emotions": emotions,
        "frame_size": [width, height],
        "duration_range_s": list(duration_range),
        "audio_sample_rate": audio.SAMPLE_RATE,
        "feature_hop_ms": features.FEATURE_HOP_MS if layout == "muse" else None,
        "label_reliability": labels.LABEL_RELIABILITY,
    }
    (root / METADATA_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return root
