"""`vit`: ViT CLS embedding of the main face in each of a clip's sampled frames (the paper's visual token).

Per clip: `num_frames` equidistant frames (first and last included, as every frame extractor) ->
the largest face per frame (OpenCV Haar cascade, `extract.faces`), box widened by `margin` and
squared, cropped and resized to `crop_size` px -> the ViT's own image processor -> CLS token of the
last hidden state: `vit` float32[num_frames, hidden] (768 for ViT-B).

Frames without a detected face use the whole frame instead (a real, documented fallback: the row
is still a ViT embedding of that frame, so its frame_mask stays True). Which rows that happened on
is stored as a second frame feature, `face_found` float32[num_frames, 1] (1.0 face crop, 0.0 whole
frame), so a model or an analysis can use or filter it; the run summary notes clips with fallbacks.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from extract.extractors.base import FeatureValue, Media, Output
from extract.extractors.frames import clip_frames
from extract.extractors.model_pool import ModelExtractor, ModelPool
from extract.faces import CASCADE, FaceDetector, crop_faces
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

# Passed explicitly (not left to FaceDetector's defaults) so that they are part of the cache key.
DETECTOR = {"min_size_frac": 0.08, "scale_factor": 1.1, "min_neighbors": 5}


class VitExtractor(ModelExtractor):
    """`vit` [T, hidden] from face crops, and `face_found` [T, 1]."""

    name = "vit"
    kinds = ("vit",)
    version = 1

    def __init__(self, pool: ModelPool, *, num_frames: int = 32, images_per_batch: int = 128,
                 crop_size: int = 224, margin: float = 0.2):
        super().__init__(pool)
        if num_frames < 1 or images_per_batch < 1 or crop_size < 8 or margin < 0:
            raise ValueError(f"vit: bad settings num_frames={num_frames}, images_per_batch={images_per_batch}, "
                             f"crop_size={crop_size}, margin={margin}")
        self.num_frames, self.crop_size, self.margin = int(num_frames), int(crop_size), float(margin)
        self.images_per_batch = int(images_per_batch)
        self.batch_size = max(1, self.images_per_batch // self.num_frames)  # clips per compute call
        self._local = threading.local()  # one cascade per prepare thread (OpenCV's is not thread-safe)

    def __getstate__(self) -> dict[str, Any]:  # a thread-local cannot be pickled (Ray ships extractors)
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _local=threading.local())

    def own_settings(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "sampling": "equidistant-nearest",
                "faces": {"detector": f"opencv-haar:{CASCADE}", **DETECTOR, "pick": "largest",
                          "margin": self.margin, "square": True, "crop_size": self.crop_size,
                          "resize": "cv2-area", "fallback": "whole-frame"},
                "output": "cls-of-last-hidden-state"}

    def specs(self) -> dict[str, FeatureSpec]:
        found = FeatureSpec(kind="frame", dim=1, num_frames=self.num_frames, source=self.name,
                            model_id=f"opencv-haar:{CASCADE}", params=self.settings())
        return {"vit": self.spec("frame", dim=self.pool.choice("vit").dim(), num_frames=self.num_frames),
                "face_found": found}

    def _detector(self) -> FaceDetector:
        if not hasattr(self._local, "detector"):
            self._local.detector = FaceDetector(**DETECTOR)
        return self._local.detector

    def prepare(self, clip: ClipRecord, media: Media) -> tuple[np.ndarray, np.ndarray]:
        frames = clip_frames(clip, media, self.num_frames, self.name)
        faces = crop_faces(frames, self._detector(), size=self.crop_size, margin=self.margin)
        if not faces.found.all():
            media.note(clip.id, f"vit: no face found in {int((~faces.found).sum())} of {self.num_frames} frames "
                                f"(whole frame used there)")
        return faces.crops, faces.found

    def compute(self, prepared: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[Output]:
        # deferred: extract.models imports torch and transformers
        from extract.models import vit_cls

        model, processor = self.model("vit")
        crops = np.concatenate([c for c, _ in prepared])
        emb = vit_cls(model, processor, crops, batch_size=self.images_per_batch).astype(np.float32)
        out = []
        for i, (_, found) in enumerate(prepared):
            rows = emb[i * self.num_frames:(i + 1) * self.num_frames]
            out.append({"vit": FeatureValue(rows),
                        "face_found": FeatureValue(found.astype(np.float32)[:, None])})
        return out
