"""A MuSe-2022-faithful `c2_muse_reaction/` tree: the formats as shipped, few and short clips for 2 cores.

Layout as EIHW/MuSe2022's config.py and data_parser.py read it (root `c2_muse_reaction/`):
  labels.csv     File_ID,<7 emotions>; IDs bracketed `[00001]`; a row for every partition ID, test rows empty
  partition.csv  Id,Partition (read by position: ID first, partition last; train/devel/test)
  feats/<Folder>/<id>.csv   two metadata columns, then the features from column 2 on
                 (`feature_idx = 2` in data_parser.py); file names are the IDs without brackets
  raw/mp4/<id>.mp4          where our MuSe reader looks first (MuSe's code reads no media)

Feature widths (FEATURE_WIDTHS): MuSe's code infers them from the CSVs and states none, and the data is
EULA-gated, so none of the four is confirmed against a shipped file. FAUs 20 (Py-Feat's AU
intensities) and VGGFace2 512 are the widths the MuSe-2022 baseline paper is remembered to give for
MuSe-Reaction (the paper could not be read here); eGeMAPS 88 is the size of openSMILE's eGeMAPS
functionals set; DeepSpectrum 1024 is DenseNet-121's pooled width, the network DeepSpectrum's MuSe
baselines are remembered to use. The column names past the two metadata columns are not read by
MuSe's code and are made up here (the FAU names are Py-Feat's).

Built from the synthetic generator (MuSe layout: labels, partition, FAUs at 20, media), then
rewritten where the generator differs from the shipped files: VGGFace2 widened from the generator's
32 to 512 columns, eGeMAPS and DeepSpectrum added with `timestamp` first (MuSe's code does not fix
the order of the two metadata columns, so both orders occur here), partition.csv's header renamed
to `Id,Partition`, every other test row's labels spelled `NaN` (the rest stay empty), and
`synthetic.json` removed (a shipped tree has none).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tfds_hume.synthetic import generate

FEATURE_WIDTHS = {"FAUs": 20, "VGGFace2": 512, "eGeMAPS": 88, "DeepSpectrum": 1024}
# Rows of the added eGeMAPS / DeepSpectrum CSVs: one every 500 ms (a window hop; not confirmed either).
ADDED_HOP_MS = 500


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _write(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _cells(values: np.ndarray) -> list[str]:
    return [f"{v:.4f}" for v in values]


def widen_vggface2(root: Path, rng: np.random.Generator) -> None:
    """Append columns to each VGGFace2 CSV up to the real width (the generator's columns keep their signal)."""
    width = FEATURE_WIDTHS["VGGFace2"]
    for path in sorted((root / "feats" / "VGGFace2").glob("*.csv")):
        rows = _read(path)
        have = len(rows[0]) - 2
        rows[0] = rows[0][:2] + [f"vggface2_{i:03d}" for i in range(width)]
        for row in rows[1:]:
            row.extend(_cells(rng.normal(0.0, 1.0, width - have)))
        _write(path, rows)


def add_timestamp_first(root: Path, folder: str, rng: np.random.Generator) -> None:
    """feats/<folder>/<id>.csv for every clip that has FAUs: `timestamp,File_ID,<width features>`."""
    width = FEATURE_WIDTHS[folder]
    (root / "feats" / folder).mkdir(parents=True, exist_ok=True)
    for fau in sorted((root / "feats" / "FAUs").glob("*.csv")):
        last_ms = int(float(_read(fau)[-1][1]))
        rows = [["timestamp", "File_ID", *(f"{folder.lower()}_{i:04d}" for i in range(width))]]
        rows += [[str(t), f"[{fau.stem}]", *_cells(rng.normal(0.0, 1.0, width))]
                 for t in range(0, last_ms + 1, ADDED_HOP_MS)]
        _write(root / "feats" / folder / fau.name, rows)


def make_muse_root(parent: Path, *, clips_per_split: int = 6, seed: int = 3) -> Path:
    """`parent/c2_muse_reaction/` in the shipped formats (see the module doc); its path."""
    root = generate(Path(parent) / "c2_muse_reaction", layout="muse", clips_per_split=clips_per_split, seed=seed,
                    duration_range=(1.0, 1.6), progress=False)
    rng = np.random.default_rng(seed)
    widen_vggface2(root, rng)
    for folder in ("eGeMAPS", "DeepSpectrum"):
        add_timestamp_first(root, folder, rng)
    partition = _read(root / "partition.csv")
    _write(root / "partition.csv", [["Id", "Partition"], *partition[1:]])
    labels = _read(root / "labels.csv")
    test = [k for k, row in enumerate(labels) if k and not row[1]]
    for k in test[::2]:  # pandas writes NaN as an empty cell; some exports spell it out: have both
        labels[k][1:] = ["NaN"] * (len(labels[k]) - 1)
    _write(root / "labels.csv", labels)
    (root / "synthetic.json").unlink()
    return root
