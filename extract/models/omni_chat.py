"""Turn a clip's frames and audio into the inputs of the Qwen2.5-Omni thinker, for three input variants.

Why not `Qwen2_5OmniProcessor`: its video processor needs torchvision (see qwen_chat.py). We build the
same inputs from the image processor (video patches, as `QwenChatProcessor` does) and the checkpoint's
`WhisperFeatureExtractor` (audio), following `Qwen2_5OmniProcessor` and the thinker's `get_rope_index`:

- audio: 16 kHz mono, at most 30 s (the extractor's window), as log-mel features padded to 30 s with a
  `feature_attention_mask` of the real frames; the audio tower emits ((L - 1) // 2 + 1 - 2) // 2 + 1
  states for L mel frames, one `<|AUDIO|>` placeholder each;
- video: `pixel_values_videos` and `video_grid_thw` as for Qwen2-VL, one `<|VIDEO|>` per merged patch,
  and `video_second_per_grid` = temporal patch / fps, where fps is the rate the frames were sampled at
  (frames / clip duration), so TMRoPE places each frame at its real time;
- variants: "v" `<|vision_bos|><|VIDEO|>*n<|vision_eos|>`; "a" `<|audio_bos|><|AUDIO|>*m<|audio_eos|>`;
  "av" (the processor's `use_audio_in_video`) `<|vision_bos|><|audio_bos|>` then video and audio
  placeholders interleaved in 2 s chunks of the time axis (25 position ids per second) `<|audio_eos|>
  <|vision_eos|>`, and `use_audio_in_video=True` for the model's position ids.

Few-shot (`with_shots`, the querying baseline): K earlier user/assistant turns, each an example clip (in
the same variant) asked the same prompt and answered with the given text, precede the asked clip's turn.
Row i's clips are then the K shots and its own, in that order, in every input (video patches and grids,
seconds per grid, audio features and masks), and the thinker places them one after the other in time,
as it does for several videos in one conversation.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .qwen_chat import QwenChatProcessor, video_pixel_limits

# Qwen2.5-Omni's default system prompt (its chat template's and model card's).
OMNI_SYSTEM = ("You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
               "auditory and visual inputs, as well as generating text and speech.")
OMNI_SYSTEM_TURN = "<|im_start|>system\n" + OMNI_SYSTEM + "<|im_end|>\n"
OMNI_USER_TURN = "<|im_start|>user\n{media}{prompt}<|im_end|>\n<|im_start|>assistant\n"
OMNI_CHAT_FORMAT = OMNI_SYSTEM_TURN + OMNI_USER_TURN
OMNI_TURN_END = "<|im_end|>\n"  # closes an assistant turn (an earlier answer)
VARIANTS = ("v", "a", "av")
SAMPLE_RATE = 16000
MAX_AUDIO_SECONDS = 30  # WhisperFeatureExtractor's window; the processor pads (and cuts) every clip to it
TOKENS = {"video": "<|VIDEO|>", "audio": "<|AUDIO|>", "vision_bos": "<|vision_bos|>",
          "vision_eos": "<|vision_eos|>", "audio_bos": "<|audio_bos|>", "audio_eos": "<|audio_eos|>"}


@dataclass
class AVClip:
    """One clip for the thinker: uint8 frames [F, H, W, 3], 16 kHz mono audio (None: no track), sampled fps."""

    frames: np.ndarray
    wave: np.ndarray | None
    fps: float


def audio_tokens(mel_frames: int) -> int:
    """Audio-tower states (= `<|AUDIO|>` placeholders) for `mel_frames` log-mel frames."""
    return ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1


def chunk_bounds(positions: np.ndarray, per_chunk: int) -> list[tuple[int, int]]:
    """(start, end) slices of increasing `positions` falling in successive [k * per_chunk, (k+1) * per_chunk)."""
    out, start, chunk = [], 0, 1
    for i, p in enumerate(positions):
        if p >= chunk * per_chunk:
            out.append((start, i))
            start, chunk = i, chunk + 1
    out.append((start, len(positions)))
    return out


@dataclass
class OmniChatProcessor(QwenChatProcessor):
    """`QwenChatProcessor`'s video path + Whisper audio features + the placeholder layout of one variant."""

    feature_extractor: object = None
    variant: str = "av"
    position_id_per_seconds: int = 25
    seconds_per_chunk: float = 2.0
    chat_format: str = OMNI_CHAT_FORMAT
    media_token: str = TOKENS["video"]
    token_types: bool = False  # the thinker derives its 3-D positions from the placeholders themselves
    shot_clips: tuple = ()  # few-shot (`with_shots`): the example clips, before each row's own

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown Omni input variant {self.variant!r}; known: {VARIANTS}")
        self.media = "audio" if self.variant == "a" else "video"

    @classmethod
    def for_thinker(cls, config, tokenizer, image_processor, feature_extractor, video_settings=None,
                    variant: str = "av") -> "OmniChatProcessor":
        """Check the tokenizer against a Qwen2_5OmniThinkerConfig and read the placeholder rule from it."""
        expected = {TOKENS["video"]: config.video_token_id, TOKENS["audio"]: config.audio_token_id,
                    TOKENS["audio_bos"]: config.audio_start_token_id,
                    TOKENS["vision_bos"]: config.vision_start_token_id}
        for token, want in expected.items():
            got = tokenizer.convert_tokens_to_ids(token)
            if got != want:
                raise ValueError(f"tokenizer maps {token} to id {got} but the model expects {want}")
        vision = config.vision_config
        lo, hi = video_pixel_limits(video_settings)
        return cls(tokenizer, image_processor, int(vision.patch_size), int(vision.spatial_merge_size),
                   int(vision.temporal_patch_size), lo, hi, feature_extractor=feature_extractor, variant=variant,
                   position_id_per_seconds=int(config.position_id_per_seconds),
                   seconds_per_chunk=float(config.seconds_per_chunk))

    def with_variant(self, variant: str) -> "OmniChatProcessor":
        return dataclasses.replace(self, variant=variant)

    def with_shots(self, shots: Sequence[tuple[AVClip, str]]) -> "OmniChatProcessor":
        """This processor with K earlier turns before every prompt: each an example clip asked the same prompt,
        answered with the given text (module docstring)."""
        if self.chat_format != OMNI_CHAT_FORMAT:
            raise ValueError("few-shot turns are built for Qwen2.5-Omni's chat format only")
        clips = tuple(clip for clip, _ in shots)
        if clips:
            self._media_only(clips)  # a bad example fails here, once, not in every batch
        return dataclasses.replace(self, shot_clips=clips, shot_answers=tuple(str(a) for _, a in shots))

    def format(self, prompt: str) -> str:
        """The chat text for one user prompt, ending where the assistant's answer starts (after any shots)."""
        media = {"v": "<|vision_bos|><|VIDEO|><|vision_eos|>", "a": "<|audio_bos|><|AUDIO|><|audio_eos|>",
                 "av": "<|vision_bos|><|VIDEO|><|vision_eos|>"}[self.variant]
        if not self.shot_answers:
            return self.chat_format.format(media=media, prompt=prompt)
        turn = OMNI_USER_TURN.format(media=media, prompt=prompt)
        return OMNI_SYSTEM_TURN + "".join(turn + a + OMNI_TURN_END for a in self.shot_answers) + turn

    def media_inputs(self, media: list[AVClip]) -> dict[str, torch.Tensor]:
        """Video inputs ("v", "av") and audio inputs ("a", "av") for a batch of clips (each after the shots)."""
        return self._media_only([c for clip in media for c in (*self.shot_clips, clip)])

    def _media_only(self, media: Sequence[AVClip]) -> dict[str, torch.Tensor]:
        """The inputs of exactly these clips, in order."""
        out: dict[str, torch.Tensor] = {}
        if self.variant != "a":
            frames = [clip.frames for clip in media]
            out.update(super().media_inputs(frames))
            out["video_second_per_grid"] = torch.tensor(
                [self.temporal_patch_size / clip.fps for clip in media], dtype=torch.float64)
        if self.variant != "v":
            missing = [i for i, clip in enumerate(media) if clip.wave is None or len(clip.wave) == 0]
            if missing:
                raise ValueError(f"inputs {missing} have no audio; the {self.variant!r} variant needs it")
            waves = [np.asarray(clip.wave, np.float32)[:MAX_AUDIO_SECONDS * SAMPLE_RATE] for clip in media]
            feats = self.feature_extractor(waves, sampling_rate=SAMPLE_RATE, padding="max_length",
                                           return_attention_mask=True, return_tensors="pt")
            out["input_features"] = feats["input_features"]
            out["feature_attention_mask"] = feats["attention_mask"]
        return out

    def _placeholders(self, media_in: dict, row: int) -> str:
        """The placeholder text that stands for clip `row` of the inputs (see the module docstring)."""
        n_audio = audio_tokens(int(media_in["feature_attention_mask"][row].sum())) if self.variant != "v" else 0
        if self.variant == "a":
            return TOKENS["audio"] * n_audio
        t, h, w = (int(v) for v in media_in["video_grid_thw"][row])
        h, w = h // self.merge_size, w // self.merge_size
        if self.variant == "v":
            return TOKENS["video"] * (t * h * w)
        spg = float(media_in["video_second_per_grid"][row])
        video_pos = np.repeat(np.arange(t) * spg * self.position_id_per_seconds, h * w)
        per_chunk = int(self.position_id_per_seconds * self.seconds_per_chunk)
        v_chunks = chunk_bounds(video_pos, per_chunk)
        a_chunks = chunk_bounds(np.arange(n_audio), per_chunk)
        text = TOKENS["audio_bos"]
        for j in range(max(len(v_chunks), len(a_chunks))):
            if j < len(v_chunks):
                text += TOKENS["video"] * (v_chunks[j][1] - v_chunks[j][0])
            if j < len(a_chunks):
                text += TOKENS["audio"] * (a_chunks[j][1] - a_chunks[j][0])
        return text + TOKENS["audio_eos"]

    def text_inputs(self, media_inputs: dict, prompts: list[str]) -> dict[str, torch.Tensor]:
        """`input_ids`, `attention_mask` (left-padded) and, for "av", `use_audio_in_video`."""
        per_row = len(self.shot_clips) + 1
        rows = len(media_inputs.get("video_grid_thw", media_inputs.get("feature_attention_mask"))) // per_row
        if rows != len(prompts):
            raise ValueError(f"{rows} inputs but {len(prompts)} prompts")
        key = TOKENS["audio"] if self.variant == "a" else TOKENS["video"]
        texts = []
        for i, p in enumerate(prompts):
            parts = self.format(p).split(key)
            if len(parts) != per_row + 1:
                raise ValueError(f"chat text holds {len(parts) - 1} {key} placeholders, {per_row} clips "
                                 "(a prompt must not contain the placeholder itself)")
            texts.append(parts[0] + "".join(self._placeholders(media_inputs, i * per_row + j) + rest
                                            for j, rest in enumerate(parts[1:])))
        enc = self.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
        for name in ("video", "audio"):
            token_id = self.tokenizer.convert_tokens_to_ids(TOKENS[name])
            found = (enc["input_ids"] == token_id).sum(1).tolist()
            want = [t.count(TOKENS[name]) for t in texts]
            if found != want:
                raise ValueError(f"tokenized prompts hold {found} {TOKENS[name]} placeholders, expected {want} "
                                 "(a prompt must not contain the placeholder itself)")
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if self.variant == "av":
            out["use_audio_in_video"] = True
        return out
