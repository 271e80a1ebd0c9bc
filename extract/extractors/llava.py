"""`llava`: LLaVA-1.5's description of every sampled frame, and its RoBERTa embedding (the paper's
per-frame MLLM text token).

Per clip: the `num_frames` sampled frames (whole frames), each with the frame prompt ("Describe the
image." unless `--llava-prompt`) in the checkpoint's chat format, a greedy answer of at most
`max_new_tokens` tokens: `llava_text` (frame_text [num_frames]) and the RoBERTa sentence embedding of
each answer, `llava_text_emb` float32[num_frames, 768 | d].
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from extract.extractors.base import FeatureValue, Media, Output
from extract.extractors.frames import clip_frames
from extract.extractors.model_pool import ModelExtractor, ModelPool
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord


class LlavaExtractor(ModelExtractor):
    """`llava_text` (frame_text [T]) and `llava_text_emb` [T, roberta hidden]."""

    name = "llava"
    kinds = ("llava", "roberta")
    version = 1

    def __init__(self, pool: ModelPool, *, num_frames: int = 32, prompt: str | None = None,
                 max_new_tokens: int = 128, images_per_batch: int = 16, texts_per_batch: int = 64):
        super().__init__(pool)
        if prompt is None:
            # deferred: extract.models imports torch and transformers
            from extract.models import FRAME_PROMPT

            prompt = FRAME_PROMPT
        if num_frames < 1 or max_new_tokens < 1 or images_per_batch < 1 or texts_per_batch < 1 or not prompt.strip():
            raise ValueError(f"llava: bad settings num_frames={num_frames}, max_new_tokens={max_new_tokens}, "
                             f"images_per_batch={images_per_batch}, prompt={prompt!r}")
        self.num_frames, self.prompt, self.max_new_tokens = int(num_frames), prompt, int(max_new_tokens)
        self.images_per_batch, self.texts_per_batch = int(images_per_batch), int(texts_per_batch)
        self.batch_size = max(1, self.images_per_batch // self.num_frames)

    def own_settings(self) -> dict[str, Any]:
        # deferred: extract.models imports torch and transformers
        from extract.models import CHAT_FORMATS

        return {"num_frames": self.num_frames, "sampling": "equidistant-nearest", "image": "whole-frame",
                "prompt": self.prompt, "chat_format": CHAT_FORMATS["image"], "decoding": "greedy",
                "max_new_tokens": self.max_new_tokens, "text_embedding": "roberta-mean-last-hidden"}

    def specs(self) -> dict[str, FeatureSpec]:
        return {"llava_text": self.spec("frame_text", num_frames=self.num_frames),
                "llava_text_emb": self.spec("frame", dim=self.pool.choice("roberta").dim(),
                                            num_frames=self.num_frames, model="roberta")}

    def prepare(self, clip: ClipRecord, media: Media) -> np.ndarray:
        return clip_frames(clip, media, self.num_frames, self.name)

    def compute(self, prepared: Sequence[np.ndarray]) -> list[Output]:
        # deferred: extract.models imports torch and transformers
        from extract.models import describe_images, roberta_embed

        model, processor = self.model("llava")
        roberta, tokenizer = self.model("roberta")
        frames = [f for clip in prepared for f in clip]
        texts, _ = describe_images(model, processor, frames, self.prompt, max_new_tokens=self.max_new_tokens,
                                   batch_size=self.images_per_batch)
        emb = roberta_embed(roberta, tokenizer, texts, batch_size=self.texts_per_batch)
        out = []
        for i in range(len(prepared)):
            rows = slice(i * self.num_frames, (i + 1) * self.num_frames)
            out.append({"llava_text": FeatureValue(np.array(texts[rows])),
                        "llava_text_emb": FeatureValue(emb[rows].astype(np.float32))})
        return out
