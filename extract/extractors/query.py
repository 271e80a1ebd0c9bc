"""`vllava_query`: the paper's zero-shot querying baseline: Video-LLaVA asked to score the seven emotions.

Per clip: the same 8 frames as `vllava`, the querying prompt (verbatim from the paper, its typo
"emphatic pain" included; `--query-prompt` replaces it), a greedy answer of at most
`max_new_tokens` tokens: `query_answer` (text). The answer is stored as generated; turning it into
seven scores is `eri_jax.query`'s job, so a better parser never needs the GPU again.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from extract.extractors.base import FeatureValue, Media, Output
from extract.extractors.frames import clip_frames
from extract.extractors.model_pool import ModelExtractor, ModelPool
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

QUERY_PROMPT = ("Can you assign a score between 0 and 1 to each of these emotions based on what is expressed "
                "by the subject in the video: adoration, amusement, anxiety, disgust, emphatic pain, fear and "
                "surprise?")


class QueryExtractor(ModelExtractor):
    """`query_answer`: Video-LLaVA's answer to the querying prompt."""

    name = "vllava_query"
    kinds = ("vllava",)
    version = 1

    def __init__(self, pool: ModelPool, *, num_frames: int = 8, prompt: str = QUERY_PROMPT,
                 max_new_tokens: int = 128, videos_per_batch: int = 4):
        super().__init__(pool)
        if num_frames < 1 or max_new_tokens < 1 or videos_per_batch < 1 or not prompt.strip():
            raise ValueError(f"vllava_query: bad settings num_frames={num_frames}, max_new_tokens={max_new_tokens}, "
                             f"videos_per_batch={videos_per_batch}, prompt={prompt!r}")
        self.num_frames, self.prompt, self.max_new_tokens = int(num_frames), prompt, int(max_new_tokens)
        self.batch_size = int(videos_per_batch)

    def own_settings(self) -> dict[str, Any]:
        from extract.models import CHAT_FORMATS

        return {"num_frames": self.num_frames, "sampling": "equidistant-nearest", "prompt": self.prompt,
                "chat_format": CHAT_FORMATS["video"], "decoding": "greedy", "max_new_tokens": self.max_new_tokens}

    def specs(self) -> dict[str, FeatureSpec]:
        return {"query_answer": self.spec("text")}

    def prepare(self, clip: ClipRecord, media: Media) -> np.ndarray:
        return clip_frames(clip, media, self.num_frames, self.name)

    def compute(self, prepared: Sequence[np.ndarray]) -> list[Output]:
        from extract.models import generate_descriptions

        model, processor = self.model("vllava")
        texts, _ = generate_descriptions(model, processor, list(prepared), self.prompt,
                                         max_new_tokens=self.max_new_tokens, batch_size=len(prepared), pooled=False)
        return [{"query_answer": FeatureValue(np.array(t))} for t in texts]
