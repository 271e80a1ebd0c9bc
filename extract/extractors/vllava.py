"""`vllava`: Video-LLaVA's description of each clip for the paper's two prompts, its pooled hidden state,
and the RoBERTa embedding of the description.

Per clip: 8 equidistant frames (first and last included; Video-LLaVA's own frame count), full size,
through the model's image processor; for each prompt p (p1 "Describe the video.", p2 "Describe the
reaction of the subject in the video.", in the checkpoint's chat format) a greedy answer of at most
`max_new_tokens` tokens, giving per prompt:
  vllava_text_p<i>       text          the description
  vllava_emb_p<i>        video [4096|d] the decoder's last hidden state averaged over the states that
                                       emitted the answer (`pooling="generated"`) or over every token
                                       read (`pooling="all"`); see `extract.models.mllm`
  vllava_text_emb_p<i>   video [768|d]  RoBERTa sentence embedding of the description
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from extract.extractors.base import FeatureValue, Media, Output
from extract.extractors.frames import clip_frames
from extract.extractors.model_pool import ModelExtractor, ModelPool
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

POOLINGS = ("generated", "all")


class VideoLlavaExtractor(ModelExtractor):
    """Descriptions, pooled states and their RoBERTa embeddings for each prompt (keys `*_p1`, `*_p2`)."""

    name = "vllava"
    kinds = ("vllava", "roberta")
    version = 1

    def __init__(self, pool: ModelPool, *, num_frames: int = 8, prompts: Sequence[str] | None = None,
                 max_new_tokens: int = 128, pooling: str = "generated", videos_per_batch: int = 4,
                 texts_per_batch: int = 64):
        super().__init__(pool)
        if prompts is None:
            # deferred: extract.models imports torch and transformers
            from extract.models import VIDEO_PROMPTS

            prompts = VIDEO_PROMPTS
        if pooling not in POOLINGS:
            raise ValueError(f"vllava: pooling must be one of {POOLINGS}, got {pooling!r}")
        if num_frames < 1 or max_new_tokens < 1 or videos_per_batch < 1 or texts_per_batch < 1 or not prompts:
            raise ValueError(f"vllava: bad settings num_frames={num_frames}, max_new_tokens={max_new_tokens}, "
                             f"videos_per_batch={videos_per_batch}, prompts={prompts!r}")
        self.num_frames, self.prompts = int(num_frames), [str(p) for p in prompts]
        self.max_new_tokens, self.pooling = int(max_new_tokens), pooling
        self.batch_size, self.texts_per_batch = int(videos_per_batch), int(texts_per_batch)

    def own_settings(self) -> dict[str, Any]:
        # deferred: extract.models imports torch and transformers
        from extract.models import CHAT_FORMATS

        return {"num_frames": self.num_frames, "sampling": "equidistant-nearest", "prompts": self.prompts,
                "chat_format": CHAT_FORMATS["video"], "decoding": "greedy", "max_new_tokens": self.max_new_tokens,
                "pooling": self.pooling, "text_embedding": "roberta-mean-last-hidden"}

    def specs(self) -> dict[str, FeatureSpec]:
        out = {}
        for i, _ in enumerate(self.prompts, 1):
            out[f"vllava_text_p{i}"] = self.spec("text")
            out[f"vllava_emb_p{i}"] = self.spec("video", dim=self.pool.choice("vllava").dim())
            out[f"vllava_text_emb_p{i}"] = self.spec("video", dim=self.pool.choice("roberta").dim(), model="roberta")
        return out

    def prepare(self, clip: ClipRecord, media: Media) -> np.ndarray:
        return clip_frames(clip, media, self.num_frames, self.name)

    def compute(self, prepared: Sequence[np.ndarray]) -> list[Output]:
        # deferred: extract.models imports torch and transformers
        from extract.models import generate_for_prompts, roberta_embed

        model, processor = self.model("vllava")
        roberta, tokenizer = self.model("roberta")
        out: list[Output] = [{} for _ in prepared]
        # All prompts in one call: the clips are preprocessed and through the vision tower once, not per prompt.
        answers = generate_for_prompts(model, processor, list(prepared), self.prompts,
                                       max_new_tokens=self.max_new_tokens, batch_size=len(prepared), pooled=True,
                                       pooling=self.pooling)
        for i, (texts, pooled) in enumerate(answers, 1):
            emb = roberta_embed(roberta, tokenizer, texts, batch_size=self.texts_per_batch)
            for o, text, p, e in zip(out, texts, pooled, emb):
                o[f"vllava_text_p{i}"] = FeatureValue(np.array(text))
                o[f"vllava_emb_p{i}"] = FeatureValue(p.astype(np.float32))
                o[f"vllava_text_emb_p{i}"] = FeatureValue(e.astype(np.float32))
        return out
