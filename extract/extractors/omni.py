"""`omni`: Qwen2.5-Omni's (thinker only) description of each clip from what it sees, hears, or both, for the
paper's two prompts, its pooled hidden state, and the RoBERTa embedding of the description.

Per clip: 8 equidistant frames (as `vllava`), full size, and the clip's own audio (its .wav if the layout
has one, else the video's track; 16 kHz mono, from the first video frame, at most 30 s) go to the thinker
in three input variants <v>: `v` video only, `a` audio only, `av` video + audio interleaved in time
(Omni's `use_audio_in_video`; see `extract.models.omni_chat`). Per variant and prompt p (the prompts and
the pooling of `vllava`), greedy decoding, giving:
  omni_<v>_text_p<i>       text            the description
  omni_<v>_emb_p<i>        video [3584|d]  the thinker's last hidden state pooled as for `vllava_emb_p<i>`
  omni_<v>_text_emb_p<i>   video [768|d]   RoBERTa sentence embedding of the description
A clip without an audio track has its `a` and `av` features marked missing (the video-only ones stay).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from extract.errors import MediaError, NoAudioError
from extract.extractors.base import FeatureValue, Media, Missing, Output
from extract.extractors.frames import clip_frames
from extract.extractors.model_pool import ModelExtractor, ModelPool
from extract.extractors.vllava import POOLINGS
from extract.media import load_audio
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

VARIANTS = ("v", "a", "av")  # video only, audio only, video + audio
SAMPLE_RATE = 16000
MAX_AUDIO_SECONDS = 30


class OmniExtractor(ModelExtractor):
    """Descriptions, pooled states and RoBERTa embeddings per input variant and prompt (`omni_<v>_*_p<i>`)."""

    name = "omni"
    kinds = ("omni", "roberta")
    version = 1

    def __init__(self, pool: ModelPool, *, num_frames: int = 8, prompts: Sequence[str] | None = None,
                 max_new_tokens: int = 128, pooling: str = "generated", variants: Sequence[str] = VARIANTS,
                 clips_per_batch: int = 2, texts_per_batch: int = 64):
        super().__init__(pool)
        if prompts is None:
            # deferred: extract.models imports torch and transformers
            from extract.models import VIDEO_PROMPTS

            prompts = VIDEO_PROMPTS
        if pooling not in POOLINGS:
            raise ValueError(f"omni: pooling must be one of {POOLINGS}, got {pooling!r}")
        bad = [v for v in variants if v not in VARIANTS]
        if (bad or not variants or num_frames < 2 or max_new_tokens < 1 or clips_per_batch < 1
                or texts_per_batch < 1 or not prompts):
            raise ValueError(f"omni: bad settings variants={list(variants)} (known {VARIANTS}), "
                             f"num_frames={num_frames} (at least 2), max_new_tokens={max_new_tokens}, "
                             f"clips_per_batch={clips_per_batch}, prompts={prompts!r}")
        self.num_frames, self.prompts = int(num_frames), [str(p) for p in prompts]
        self.variants = [v for v in VARIANTS if v in variants]
        self.max_new_tokens, self.pooling = int(max_new_tokens), pooling
        self.batch_size, self.texts_per_batch = int(clips_per_batch), int(texts_per_batch)

    def own_settings(self) -> dict[str, Any]:
        # deferred: extract.models imports torch and transformers
        from extract.models.omni_chat import OMNI_CHAT_FORMAT

        return {"num_frames": self.num_frames, "sampling": "equidistant-nearest", "prompts": self.prompts,
                "variants": self.variants, "chat_format": OMNI_CHAT_FORMAT, "audio": "16k-mono-from-first-frame",
                "max_audio_seconds": MAX_AUDIO_SECONDS, "decoding": "greedy", "max_new_tokens": self.max_new_tokens,
                "pooling": self.pooling, "text_embedding": "roberta-mean-last-hidden"}

    def specs(self) -> dict[str, FeatureSpec]:
        out = {}
        for v in self.variants:
            for i, _ in enumerate(self.prompts, 1):
                out[f"omni_{v}_text_p{i}"] = self.spec("text")
                out[f"omni_{v}_emb_p{i}"] = self.spec("video", dim=self.pool.choice("omni").dim())
                out[f"omni_{v}_text_emb_p{i}"] = self.spec("video", dim=self.pool.choice("roberta").dim(),
                                                           model="roberta")
        return out

    def prepare(self, clip: ClipRecord, media: Media):
        # deferred: extract.models imports torch and transformers
        from extract.models.omni_chat import AVClip

        frames = clip_frames(clip, media, self.num_frames, self.name)
        info = media.probe(clip.video)
        if info.duration <= 0:
            raise MediaError(clip.video, "video has no duration to place its frames and audio in time")
        wave, why = None, None
        if "a" in self.variants or "av" in self.variants:
            wave, why = self._audio(clip, media, info.duration)
        return AVClip(frames, wave, self.num_frames / info.duration), why

    def _audio(self, clip: ClipRecord, media: Media, duration: float) -> tuple[np.ndarray | None, str | None]:
        """The clip's audio on the video's clock (from its first frame, at most its duration and 30 s)."""
        source = clip.audio or clip.video
        try:
            track = load_audio(source, SAMPLE_RATE)
        except NoAudioError as e:
            return None, str(e)
        start = track.start if source == clip.video else 0.0
        wave = track.wave
        lead = int(round(start * SAMPLE_RATE))
        if lead > 0:  # the track starts after the first frame: silence before it keeps the two in time
            media.note(clip.id, f"omni: audio starts {start:.2f} s after the first frame (silence before it)")
            wave = np.concatenate([np.zeros(lead, np.float32), wave])
        elif lead < 0:
            wave = wave[-lead:]
        wave = wave[:int(min(duration, MAX_AUDIO_SECONDS) * SAMPLE_RATE)]
        if duration > MAX_AUDIO_SECONDS:
            media.note(clip.id, f"omni: the model hears the first {MAX_AUDIO_SECONDS} s of {duration:.1f} s")
        if not len(wave):
            return None, f"{source}: no audio within the video's {duration:.2f} s"
        return wave.astype(np.float32), None

    def compute(self, prepared: Sequence[Any]) -> list[Output]:
        # deferred: extract.models imports torch and transformers
        from extract.models import generate_for_prompts, roberta_embed

        model, processor = self.model("omni")
        roberta, tokenizer = self.model("roberta")
        out: list[Output] = [{} for _ in prepared]
        clips = [c for c, _ in prepared]
        for v in self.variants:
            rows = [j for j, (_, why) in enumerate(prepared) if v == "v" or why is None]
            for j, (_, why) in enumerate(prepared):
                if j not in rows:
                    for i, _ in enumerate(self.prompts, 1):
                        for key in ("text", "emb", "text_emb"):
                            out[j][f"omni_{v}_{key}_p{i}"] = Missing(f"no audio for the model to hear: {why}")
            if not rows:
                continue
            # All prompts in one call: the clips are preprocessed and through the vision tower once per variant.
            answers = generate_for_prompts(model, processor.with_variant(v), [clips[j] for j in rows], self.prompts,
                                           max_new_tokens=self.max_new_tokens, batch_size=len(rows), pooled=True,
                                           pooling=self.pooling)
            for i, (texts, pooled) in enumerate(answers, 1):
                emb = roberta_embed(roberta, tokenizer, texts, batch_size=self.texts_per_batch)
                for j, text, p, e in zip(rows, texts, pooled, emb):
                    out[j][f"omni_{v}_text_p{i}"] = FeatureValue(np.array(text))
                    out[j][f"omni_{v}_emb_p{i}"] = FeatureValue(p.astype(np.float32))
                    out[j][f"omni_{v}_text_emb_p{i}"] = FeatureValue(e.astype(np.float32))
        return out
