"""Querying extractors: a chat model asked the paper's zero-shot question, `query_answer` (text).

`vllava_query` (config `full`): Video-LLaVA on the same 8 frames as `vllava`. The prompt is verbatim from
the paper, its typo "emphatic pain" included (`--query-prompt` replaces it); greedy decoding of at most
`max_new_tokens` tokens. The answer is stored as generated: turning it into seven scores is
`eri_jax.query`'s job, so a better parser never needs the GPU again. `python -m eri_jax.query --run`
uses these extractors too, so it shares this cache with `python -m extract --config full`.

Other chat kinds get `<kind>_query` (`make_query_extractor`):

  kind      media                         chat format
  vllava    8 equidistant frames, a video "USER: <video>\\n{prompt} ASSISTANT:"
  qwen2vl   8 equidistant frames, a video Qwen2-VL-Instruct's template (`extract.models.QWEN_CHAT_FORMAT`)
  llava     the middle frame, an image    "USER: <image>\\n{prompt} ASSISTANT:" (LLaVA-1.5)
  omni      8 frames + the clip's audio   Qwen2.5-Omni's template (`extract.models.omni_chat`), thinker only

Qwen2.5-Omni hears the subject by default (`omni_input` "av": the frames and the clip's own audio track,
interleaved in time, as the `omni` extractor's `av` variant); "v" (frames only, what Video-LLaVA gets) and
"a" (audio only) show what each sense adds. A clip without an audio track gets no "av"/"a" answer (reported,
never asked without its audio).

Few-shot (`shots`, `FEW_SHOT_KINDS` = Qwen2-VL, Qwen2.5-Omni): K example clips (their frames, and for Omni
their audio) with their answers go first as earlier turns (`with_shots` of the kind's processor); the
examples' ids and answers are part of the settings, so their answers are cached apart from the zero-shot ones.

A new chat kind plugs in with an entry in `extract.models.registry.KINDS`, a miniature builder in
`extract.models.tiny`, a processor that `generate_descriptions` / `describe_images` accept, and a line
in `CHAT_KINDS` here.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from extract.extractors.base import FeatureValue, Media, Missing, Output
from extract.extractors.frames import clip_frames
from extract.extractors.model_pool import ModelExtractor, ModelPool
from extract.extractors.omni import MAX_AUDIO_SECONDS, OmniExtractor
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord

QUERY_PROMPT = ("Can you assign a score between 0 and 1 to each of these emotions based on what is expressed "
                "by the subject in the video: adoration, amusement, anxiety, disgust, emphatic pain, fear and "
                "surprise?")
VIDEO_FRAMES = 8  # Video-LLaVA's frame count; the same 8 frames go to every video chat model
CHAT_KINDS: dict[str, str] = {"vllava": "video", "qwen2vl": "video", "llava": "image",
                              "omni": "clip"}  # kind: media ("clip": frames + audio)
# Kinds whose conversation takes several videos (few-shot turns); Video-LLaVA and LLaVA-1.5 take one.
FEW_SHOT_KINDS = ("qwen2vl", "omni")
OMNI_INPUTS = ("av", "v", "a")  # what Qwen2.5-Omni is given: frames + audio (default), frames, audio


def chat_format(kind: str) -> str:
    # deferred: extract.models imports torch and transformers
    from extract.models import CHAT_FORMATS, QWEN_CHAT_FORMAT
    from extract.models.omni_chat import OMNI_CHAT_FORMAT

    if kind == "omni":
        return OMNI_CHAT_FORMAT
    return QWEN_CHAT_FORMAT if kind == "qwen2vl" else CHAT_FORMATS[CHAT_KINDS[kind]]


class ChatQueryExtractor(ModelExtractor):
    """`query_answer`: a chat model's greedy answer to the querying prompt (see the module docstring)."""

    version = 1

    def __init__(self, pool: ModelPool, kind: str, *, num_frames: int = VIDEO_FRAMES, prompt: str = QUERY_PROMPT,
                 max_new_tokens: int = 128, videos_per_batch: int = 4,
                 shots: Sequence[tuple[str, Any, str]] = (), omni_input: str | None = None):
        super().__init__(pool)
        if shots and kind not in FEW_SHOT_KINDS:
            raise ValueError(f"{kind} takes one video per conversation, so no few-shot examples; models that "
                             f"can: {', '.join(FEW_SHOT_KINDS)}")
        if kind not in CHAT_KINDS:
            raise ValueError(f"no querying support for model kind {kind!r}; chat kinds: {', '.join(CHAT_KINDS)}")
        if omni_input is not None and kind != "omni":
            raise ValueError(f"omni_input applies to the omni chat model only, not {kind}")
        if kind == "omni" and (omni_input or "av") not in OMNI_INPUTS:
            raise ValueError(f"omni_input must be one of {', '.join(OMNI_INPUTS)}, got {omni_input!r}")
        if num_frames < 1 or max_new_tokens < 1 or videos_per_batch < 1 or not prompt.strip():
            raise ValueError(f"{kind}_query: bad settings num_frames={num_frames}, max_new_tokens={max_new_tokens}, "
                             f"videos_per_batch={videos_per_batch}, prompt={prompt!r}")
        self.kind, self.name, self.kinds = kind, f"{kind}_query", (kind,)
        self.media = CHAT_KINDS[kind]
        self.num_frames = int(num_frames) if self.media != "image" else 3  # image: the middle of 3 = mid-clip
        self.prompt, self.max_new_tokens, self.batch_size = prompt, int(max_new_tokens), int(videos_per_batch)
        self.shots = list(shots)  # (clip id, frames | AVClip, answer): earlier turns before every clip
        self._shot_processor = None
        self.omni_input = (omni_input or "av") if kind == "omni" else None

    def own_settings(self) -> dict[str, Any]:
        out = {"num_frames": self.num_frames, "sampling": "equidistant-nearest",
               "media": "video" if self.media == "video" else "middle frame", "prompt": self.prompt,
               "chat_format": chat_format(self.kind), "decoding": "greedy", "max_new_tokens": self.max_new_tokens}
        if self.kind == "qwen2vl":  # answers before this key were made with 1-D positions for the video tokens
            out["positions"] = "3d-rope"
        if self.kind == "omni":
            out.update({"media": "frames + audio" if self.omni_input == "av" else
                        {"v": "frames", "a": "audio"}[self.omni_input], "omni_input": self.omni_input,
                        "audio": "16k-mono-from-first-frame", "max_audio_seconds": MAX_AUDIO_SECONDS})
        if self.shots:  # absent for K = 0, so zero-shot answers keep their cache
            out["shots"] = [{"id": cid, "answer": answer} for cid, _, answer in self.shots]
        return out

    def specs(self) -> dict[str, FeatureSpec]:
        return {"query_answer": self.spec("text")}

    def prepare(self, clip: ClipRecord, media: Media):
        if self.kind == "omni":  # (AVClip, why it has no audio | None)
            return omni_media(clip, media, self.omni_input, self.num_frames)
        frames = clip_frames(clip, media, self.num_frames, self.name)
        return frames if self.media == "video" else frames[len(frames) // 2]

    def compute(self, prepared: Sequence[Any]) -> list[Output]:
        # deferred: extract.models imports torch and transformers
        from extract.models import describe_images, generate_descriptions, generate_for_prompts

        model, processor = self.model(self.kind)
        if self.kind == "omni":
            processor = processor.with_variant(self.omni_input)
        if self.shots:
            if self._shot_processor is None:
                self._shot_processor = processor.with_shots([(f, a) for _, f, a in self.shots])
            processor = self._shot_processor
        out: list[Output] = [{} for _ in prepared]
        if self.kind == "omni":
            rows = [j for j, (_, why) in enumerate(prepared) if why is None]
            for j, (_, why) in enumerate(prepared):
                if why is not None:
                    out[j]["query_answer"] = Missing(f"no audio for the model to hear: {why}")
            items = [prepared[j][0] for j in rows]
            texts = generate_for_prompts(model, processor, items, [self.prompt], max_new_tokens=self.max_new_tokens,
                                         batch_size=len(items), pooled=False)[0][0] if items else []
        else:
            rows, items = list(range(len(prepared))), list(prepared)
            generate = generate_descriptions if self.media == "video" else describe_images
            texts, _ = generate(model, processor, items, self.prompt, max_new_tokens=self.max_new_tokens,
                                batch_size=len(items), pooled=False)
        for j, t in zip(rows, texts):
            out[j]["query_answer"] = FeatureValue(np.array(t))
        return out


def omni_media(clip: ClipRecord, media: Media, omni_input: str, num_frames: int = VIDEO_FRAMES):
    """(AVClip, None) of a clip as Qwen2.5-Omni's `omni_input` variant takes it (the `omni` extractor's frames
    and audio), or (AVClip without audio, why) when the variant needs audio the clip lacks."""
    return OmniExtractor(None, num_frames=num_frames, prompts=["-"], variants=[omni_input]).prepare(clip, media)


class QueryExtractor(ChatQueryExtractor):
    """`vllava_query`: Video-LLaVA's answer to the querying prompt (the paper's querying baseline)."""

    name = "vllava_query"
    kinds = ("vllava",)

    def __init__(self, pool: ModelPool, *, num_frames: int = VIDEO_FRAMES, prompt: str = QUERY_PROMPT,
                 max_new_tokens: int = 128, videos_per_batch: int = 4):
        super().__init__(pool, "vllava", num_frames=num_frames, prompt=prompt, max_new_tokens=max_new_tokens,
                         videos_per_batch=videos_per_batch)


def make_query_extractor(kind: str, pool: ModelPool, *, prompt: str = QUERY_PROMPT, max_new_tokens: int = 128,
                         videos_per_batch: int = 4,
                         shots: Sequence[tuple[str, Any, str]] = (),
                         omni_input: str | None = None) -> ModelExtractor:
    """The querying extractor of chat kind `kind` (Video-LLaVA: `vllava_query`, the cache `full` fills).

    shots: (clip id, frames | AVClip, answer) of the few-shot examples shown first (FEW_SHOT_KINDS only).
    omni_input: what Qwen2.5-Omni is given, one of OMNI_INPUTS (default "av": frames + the clip's audio).
    """
    if kind == "vllava":
        if shots:
            raise ValueError(f"vllava takes one video per conversation, so no few-shot examples; models that "
                             f"can: {', '.join(FEW_SHOT_KINDS)}")
        return QueryExtractor(pool, prompt=prompt, max_new_tokens=max_new_tokens, videos_per_batch=videos_per_batch)
    return ChatQueryExtractor(pool, kind, prompt=prompt, max_new_tokens=max_new_tokens,
                              videos_per_batch=videos_per_batch, shots=shots, omni_input=omni_input)
