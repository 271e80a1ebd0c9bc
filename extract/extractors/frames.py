"""The sampled frames every frame-based model extractor starts from (same frames as `pixels` and `shipped`)."""
from __future__ import annotations

import numpy as np

from extract.errors import MediaError
from extract.extractors.base import Media
from extract.media import sample_frames
from tfds_hume.records import ClipRecord


def clip_frames(clip: ClipRecord, media: Media, num: int, who: str) -> np.ndarray:
    """uint8 RGB [num, H, W, 3]: `num` equidistant decoded frames, first and last included, full size.

    A clip with fewer decoded frames than `num` repeats its nearest frames (every row stays real); the
    run summary notes it, naming the extractor `who`.
    """
    if clip.video is None:
        raise MediaError(None, f"clip {clip.id} has no video file")
    info = media.probe(clip.video)
    sample = sample_frames(clip.video, num, info=info)
    if sample.num_unique < num:
        media.note(clip.id, f"{who}: {info.num_frames} decoded frames: {sample.num_unique} distinct frames fill "
                            f"the {num} sampled rows (nearest frames repeat)")
    return sample.frames
