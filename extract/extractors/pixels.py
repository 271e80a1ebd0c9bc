"""`pixels`: the simplest frame feature, downsampled grayscale frames; a model-free baseline and test bed.

Per clip: the `num_frames` equidistant frames of `extract.media.sample_frames` at full resolution,
to grayscale with the ITU-R BT.601 luma weights (0.299 R + 0.587 G + 0.114 B) / 255, then averaged
over a size x size grid of equal cells (exact area averaging, the aspect ratio is not kept; the same
numbers as OpenCV's INTER_AREA on the float image), flattened: float32[num_frames, size * size] in
[0, 1]. Deterministic: H.264/HEVC decoding is bit-exact, the RGB conversion runs swscale in bit-exact
mode, and the rest is plain numpy.
A clip with fewer decoded frames than num_frames repeats its nearest frames (all rows stay real);
the run summary notes it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from extract.errors import MediaError
from extract.extractors.base import Extractor, FeatureValue, Media, Output
from extract.media import sample_frames
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def area_matrix(n_out: int, n_in: int) -> np.ndarray:
    """float64[n_out, n_in]: row i averages the input pixels under output cell i, weighted by overlap."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    j = np.arange(n_in, dtype=np.float64)
    overlap = np.minimum(j[None, :] + 1, edges[1:, None]) - np.maximum(j[None, :], edges[:-1, None])
    return np.clip(overlap, 0.0, None) / np.diff(edges)[:, None]


def gray_thumbnails(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 RGB [T, H, W, 3] -> float32 [T, size * size]: BT.601 luma in [0, 1], area-averaged."""
    t, h, w, _ = frames.shape
    luma = frames.astype(np.float32) @ _LUMA / np.float32(255.0)
    out = np.einsum("ih,thw,jw->tij", area_matrix(size, h), luma.astype(np.float64), area_matrix(size, w))
    return out.reshape(t, size * size).astype(np.float32)


class PixelsExtractor(Extractor):
    """Grayscale size x size thumbnails of num_frames equidistant frames, one row per frame."""

    name = "pixels"
    version = 1  # bump when the computation changes: the cache folder changes with it

    def __init__(self, num_frames: int = 32, size: int = 12, key: str = "pixels"):
        if num_frames < 1 or size < 1:
            raise ValueError(f"num_frames and size must be positive, got {num_frames}, {size}")
        self.num_frames, self.size, self.key = int(num_frames), int(size), key

    def settings(self) -> dict[str, Any]:
        return {"extractor": self.name, "version": self.version, "num_frames": self.num_frames,
                "size": self.size, "color": "gray-bt601", "scale": "area-exact", "sampling": "equidistant-nearest"}

    def specs(self) -> dict[str, FeatureSpec]:
        return {self.key: FeatureSpec(kind="frame", dim=self.size * self.size, num_frames=self.num_frames,
                                      source=self.name, params=self.settings())}

    def prepare(self, clip: ClipRecord, media: Media) -> Output:
        if clip.video is None:
            raise MediaError(None, f"clip {clip.id} has no video file")
        info = media.probe(clip.video)
        sample = sample_frames(clip.video, self.num_frames, info=info)
        if sample.num_unique < self.num_frames:
            media.note(clip.id, f"{info.num_frames} decoded frames: {sample.num_unique} distinct frames "
                                f"fill the {self.num_frames} sampled rows (nearest frames repeat)")
        return {self.key: FeatureValue(gray_thumbnails(sample.frames, self.size))}
