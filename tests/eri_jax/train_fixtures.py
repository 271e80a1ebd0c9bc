"""A tiny `hume_reaction/full` dataset with planted, learnable signal, for the training tests.

Labels y in [0, 1] (7 emotions) come from a Gaussian latent; features are noisy linear views of y:
`fau` (frame, [8, 6]), `pixels` (frame, [8, 10], last frames of some clips masked), `vllava_emb_p1`
(video, [12]) and `vllava_text_p1` (text). One train clip lacks `fau`; test labels are NaN.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfds_hume.manifest import ClipEntry, FeatureSpec, Manifest, save_value
from tfds_hume.records import HUME_EMOTIONS

T = 8
DIMS = {"fau": 6, "pixels": 10}
VIDEO_DIM = 12
MISSING_FAU_ID = "00003"


def build_dataset(root: Path, *, sizes=(("train", 96), ("dev", 48), ("test", 16)), seed: int = 0,
                  noise: float = 0.5) -> tuple[str, Path]:
    """Write a manifest + npz files under root/export and build TFDS into root/tfds; (name, data_dir)."""
    from tfds_hume.build import build

    rng = np.random.default_rng(seed)
    e = len(HUME_EMOTIONS)
    proj = {k: rng.normal(size=(e, d)) for k, d in DIMS.items()}
    proj_video = rng.normal(size=(e, VIDEO_DIM))
    export = root / "export"
    clips = []
    i = 0
    for split, n in sizes:
        for _ in range(n):
            i += 1
            cid = f"{i:05d}"
            y = 1.0 / (1.0 + np.exp(-1.5 * rng.normal(size=e)))
            files = {}
            for k, d in DIMS.items():
                if k == "fau" and cid == MISSING_FAU_ID:
                    continue
                value = (y @ proj[k])[None, :] + noise * rng.normal(size=(T, d))
                mask = None
                if k == "pixels" and i % 5 == 0:
                    mask = np.arange(T) < T - 2
                    value[~mask] = 0.0
                save_value(export / k / f"{cid}.npz", value.astype(np.float32), mask)
                files[k] = f"{k}/{cid}.npz"
            save_value(export / "vllava_emb_p1" / f"{cid}.npz",
                       (y @ proj_video + noise * rng.normal(size=VIDEO_DIM)).astype(np.float32))
            files["vllava_emb_p1"] = f"vllava_emb_p1/{cid}.npz"
            save_value(export / "vllava_text_p1" / f"{cid}.npz", np.array("a person reacts"))
            files["vllava_text_p1"] = f"vllava_text_p1/{cid}.npz"
            labels = [float("nan")] * e if split == "test" else [float(v) for v in y]
            clips.append(ClipEntry(id=cid, split=split, labels=labels, files=files))
    features = {
        "fau": FeatureSpec(kind="frame", dim=DIMS["fau"], num_frames=T, source="shipped:FAU"),
        "pixels": FeatureSpec(kind="frame", dim=DIMS["pixels"], num_frames=T, source="pixels"),
        "vllava_emb_p1": FeatureSpec(kind="video", dim=VIDEO_DIM, source="vllava", random_weights=True),
        "vllava_text_p1": FeatureSpec(kind="text", source="vllava", random_weights=True),
    }
    Manifest(dataset="planted-test", synthetic=True, emotions=list(HUME_EMOTIONS), features=features,
             clips=clips).write(export)
    data_dir = root / "tfds"
    build(export, config="full", data_dir=data_dir)
    return "hume_reaction/full", data_dir


def small_config(dataset: tuple[str, str], out: Path, *, model: str = "lstm", run_name: str = "run",
                 epochs: int = 4, **overrides):
    """A TrainConfig of a tiny LSTM (with dropout) or probe on `build_dataset`'s data, writing under `out`."""
    from eri_jax.training.config import TrainConfig

    name, data_dir = dataset
    kw = {"lstm": dict(hidden=8, num_layers=1, dropout=0.5), "probe": dict(hidden=16, activation="relu")}[model]
    base = dict(model=model, preset="demo", dataset=name, data_dir=str(data_dir),
                features=["fau"] if model == "lstm" else ["vllava_emb_p1"], model_kwargs=kw,
                optimizer="adam" if model == "lstm" else "adamw", lr=3e-3,
                weight_decay=0.0 if model == "lstm" else 0.01, batch_size=16, epochs=epochs, schedule="step",
                halve_every=2, standardize=model == "lstm", precision="float32", seed=0, run_name=run_name,
                workdir=str(Path(out) / "ck"), runs_dir=str(Path(out) / "runs"))
    base.update(overrides)
    return TrainConfig(**base)
