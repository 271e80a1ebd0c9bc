"""`clip_text`: per frame, the emotion template CLIP finds closest, embedded by RoBERTa (the paper's text token).

Per clip: the `num_frames` sampled frames (whole frames, as CLIP was trained on whole images) ->
CLIP image embedding -> cosine similarity with every template of `extract.models.EMOTION_TEMPLATES`
(several phrasings per emotion plus neutral) -> the best template per frame -> its RoBERTa sentence
embedding (mean of the last hidden state over its tokens): `clip_text` float32[num_frames, 768 | d],
and the chosen sentences themselves, `clip_template` (frame_text [num_frames]).

The templates are embedded once per run (a row embeds the same alone or in a batch); the template
set's name and digest are part of the cache key, so editing a template recomputes the feature.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from extract.extractors.base import FeatureValue, Media, Output
from extract.extractors.frames import clip_frames
from extract.extractors.model_pool import ModelExtractor, ModelPool
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord


class ClipTextExtractor(ModelExtractor):
    """`clip_text` [T, roberta hidden] and `clip_template` (frame_text [T])."""

    name = "clip_text"
    kinds = ("clip", "roberta")
    version = 1

    def __init__(self, pool: ModelPool, *, num_frames: int = 32, images_per_batch: int = 128,
                 texts_per_batch: int = 64):
        super().__init__(pool)
        if num_frames < 1 or images_per_batch < 1 or texts_per_batch < 1:
            raise ValueError(f"clip_text: bad settings num_frames={num_frames}, images_per_batch="
                             f"{images_per_batch}, texts_per_batch={texts_per_batch}")
        self.num_frames, self.images_per_batch = int(num_frames), int(images_per_batch)
        self.texts_per_batch = int(texts_per_batch)
        self.batch_size = max(1, self.images_per_batch // self.num_frames)
        self._templates: list[str] | None = None
        self._template_emb: np.ndarray | None = None

    def own_settings(self) -> dict[str, Any]:
        # deferred: extract.models imports torch and transformers
        from extract.models.templates import TEMPLATES_NAME, templates_digest

        return {"num_frames": self.num_frames, "sampling": "equidistant-nearest", "image": "whole-frame",
                "templates": TEMPLATES_NAME, "templates_digest": templates_digest(), "similarity": "cosine",
                "text_embedding": "roberta-mean-last-hidden"}

    def specs(self) -> dict[str, FeatureSpec]:
        return {"clip_text": self.spec("frame", dim=self.pool.choice("roberta").dim(), num_frames=self.num_frames),
                "clip_template": self.spec("frame_text", num_frames=self.num_frames)}

    def setup(self) -> None:
        # deferred: extract.models imports torch and transformers
        from extract.models import roberta_embed, template_texts

        super().setup()
        self._templates = template_texts()
        model, tokenizer = self.model("roberta")
        self._template_emb = roberta_embed(model, tokenizer, self._templates, batch_size=self.texts_per_batch)

    def teardown(self) -> None:
        self._template_emb = None

    def prepare(self, clip: ClipRecord, media: Media) -> np.ndarray:
        return clip_frames(clip, media, self.num_frames, self.name)

    def compute(self, prepared: Sequence[np.ndarray]) -> list[Output]:
        # deferred: extract.models imports torch and transformers
        from extract.models import clip_best_templates

        model, processor = self.model("clip")
        frames = [f for clip in prepared for f in clip]  # a list: clips of one batch differ in size
        idx, _ = clip_best_templates(model, processor, frames, self._templates, batch_size=self.images_per_batch)
        out = []
        for i in range(len(prepared)):
            rows = idx[i * self.num_frames:(i + 1) * self.num_frames]
            out.append({"clip_text": FeatureValue(self._template_emb[rows].astype(np.float32)),
                        "clip_template": FeatureValue(np.array([self._templates[j] for j in rows]))})
        return out
