"""Shipped per-frame feature tables of the MuSe layout, computed from the clip's Expression.

Files as MuSe-2022 ships them (`feats/FAUs/<id>.csv`, `feats/VGGFace2/<id>.csv`): the two metadata
columns `File_ID` (bracketed, `[00001]`) and `timestamp`, then the features from column 2 on, as
EIHW/MuSe2022's data_parser.py slices them. Rows sit on a fixed grid, one every FEATURE_HOP_MS
milliseconds from t = 0 to the clip's end (integer milliseconds), independent of the video frame rate.
  FAUs      20 AU intensities (Py-Feat's AU set, 0-5 scale): the true AU(t) plus measurement noise
            (std FAU_NOISE), clipped to [0, 5].
  VGGFace2  VGG_DIM dims (the real ones have 512; 32 keep the demo small): a fixed random projection of
            [e(t), AU(t)/5] plus the person's identity vector (constant within a clip, dominant across
            clips) plus noise.
"""
from __future__ import annotations

import numpy as np

from tfds_hume.synthetic.expression import AU_NAMES, Expression

FEATURE_HOP_MS = 100
FAU_NOISE = 0.3
VGG_DIM = 32
VGG_NAMES = tuple(f"vgg_{i:02d}" for i in range(VGG_DIM))
IDENTITY_SCALE = 1.0
VGG_NOISE = 0.3


def feature_times(duration: float) -> np.ndarray:
    """int64 timestamps (ms) of the feature rows: 0, hop, 2 hop, ... up to the clip's end."""
    return np.arange(0, int(np.floor(duration * 1000)) + 1, FEATURE_HOP_MS, dtype=np.int64)


def vgg_projection(num_emotions: int, rng: np.random.Generator) -> np.ndarray:
    """float64[E + 20, VGG_DIM]: one projection for a whole dataset (drawn once per seed)."""
    return rng.normal(0.0, 1.0 / np.sqrt(num_emotions + len(AU_NAMES)) * 3.0, (num_emotions + len(AU_NAMES), VGG_DIM))


def fau_table(expr: Expression, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps_ms int64[T], float32[T, 20])."""
    ts = feature_times(expr.duration)
    au = expr.action_units(ts / 1000.0) + rng.normal(0.0, FAU_NOISE, (ts.size, len(AU_NAMES)))
    return ts, np.clip(au, 0.0, 5.0).astype(np.float32)


def vgg_table(expr: Expression, projection: np.ndarray, identity: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps_ms int64[T], float32[T, VGG_DIM])."""
    ts = feature_times(expr.duration)
    t = ts / 1000.0
    latent = np.concatenate([expr.emotion_levels(t), expr.action_units(t) / 5.0], axis=1)
    v = latent @ projection + IDENTITY_SCALE * identity[None, :] + rng.normal(0.0, VGG_NOISE, (ts.size, VGG_DIM))
    return ts, v.astype(np.float32)


def write_feature_csv(path, file_id: str, timestamps: np.ndarray, values: np.ndarray, names) -> None:
    """`File_ID,timestamp,<names>`; File_ID bracketed as in the label files; 4 decimals."""
    lines = [",".join(("File_ID", "timestamp", *names))]
    for ts, row in zip(timestamps, values):
        lines.append(f"[{file_id}],{int(ts)}," + ",".join(f"{v:.4f}" for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
