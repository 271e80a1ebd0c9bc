"""A hand-made extraction export (manifest + random npz files) for builder and loader tests.

Clip 00001 (dev) lacks `fau` (missing); clip 00002 (train) has a `pixels` frame_mask with frames 1 and 3
masked out; the test split is unlabelled (NaN). Clips are listed in the manifest out of id order on
purpose, to check that the builder stores each split in ascending id order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfds_hume.manifest import ClipEntry, FeatureSpec, Manifest, save_value

EMOTIONS = ["Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise"]
T = 4
SPLIT_OF = {"00000": "train", "00001": "dev", "00002": "train", "00003": "test", "00004": "train",
            "00005": "dev", "00006": "test", "00007": "train"}


def tiny_features() -> dict[str, FeatureSpec]:
    return {
        "pixels": FeatureSpec("frame", dim=6, num_frames=T, source="pixels", params={"size": [2, 3]}),
        "fau": FeatureSpec("frame", dim=3, num_frames=T, source="shipped:FAU"),
        "vllava_emb": FeatureSpec("video", dim=5, source="vllava", model_id="tiny/video-llava",
                                  revision="abc123", random_weights=True,
                                  params={"prompt": "Describe the video.", "frames": 8}),
        "vllava_text": FeatureSpec("text", source="vllava", model_id="tiny/video-llava", random_weights=True,
                                   params={"prompt": "Describe the reaction of the subject in the video."}),
        "llava_text": FeatureSpec("frame_text", num_frames=T, source="llava", model_id="tiny/llava",
                                  random_weights=True),
    }


def make_export(export_dir: Path, *, seed: int = 0, synthetic: bool = True,
                features: dict[str, FeatureSpec] | None = None) -> tuple[Manifest, dict]:
    """Write the export; return the manifest and the expected values {id: {key: value}} (masks under
    "<key>/frame_mask")."""
    rng = np.random.default_rng(seed)
    features = features or tiny_features()
    expected: dict[str, dict] = {}
    clips = []
    for cid in sorted(SPLIT_OF, reverse=True):
        split = SPLIT_OF[cid]
        files, exp = {}, {}
        for key, spec in features.items():
            if key == "fau" and cid == "00001":
                continue
            mask = None
            if spec.kind == "frame":
                value = rng.normal(size=(spec.num_frames, spec.dim)).astype(np.float32)
                if key == "pixels" and cid == "00002":
                    mask = np.array([True, False, True, False])
                    value[~mask] = np.nan  # masked rows may hold NaN; the builder zeroes them
            elif spec.kind == "video":
                value = rng.normal(size=(spec.dim,)).astype(np.float32)
            elif spec.kind == "text":
                value = np.array(f"clip {cid}: a smile, then a frown — ünïcödé")
            else:
                value = np.array([f"frame {j} of {cid}" for j in range(spec.num_frames)])
            rel = f"features/{key}/{cid}.npz"
            save_value(export_dir / rel, value, mask)
            files[key] = rel
            exp[key] = value
            if mask is not None:
                exp[f"{key}/frame_mask"] = mask
        labels = [float("nan")] * len(EMOTIONS) if split == "test" else rng.uniform(size=len(EMOTIONS)).tolist()
        exp["labels"] = np.asarray(labels, dtype=np.float32)
        expected[cid] = exp
        clips.append(ClipEntry(id=cid, split=split, labels=labels, files=files))
    manifest = Manifest(dataset="synthetic-demo" if synthetic else "hume-reaction", synthetic=synthetic,
                        emotions=EMOTIONS, features=features, clips=clips, notes={"made_by": "tiny_export"})
    manifest.write(export_dir)
    return manifest, expected
