"""Turn frames and prompts into the inputs of a Qwen2-VL chat model (video input).

Why not the Hugging Face processor: `Qwen2VLVideoProcessor` (like every video processor in transformers
5) needs torchvision. The image processor does not (it falls back to its PIL variant), and the video
path differs from the image path only in how frames are grouped, so we build the video inputs from it:

- each frame is resized (`smart_resize`: sides multiples of patch x merge, pixels within the video
  limits), rescaled and normalised by the image processor, which flattens it into patches of
  [C, temporal_patch, p, p] with the frame repeated along the temporal axis;
- frames 2j and 2j+1 (temporal patch 2) then share one temporal patch: we take each frame's first
  temporal slot and stack consecutive frames there, in the video processor's patch order (grid row
  blocks, grid column blocks, merge rows, merge columns), giving `pixel_values_videos` and
  `video_grid_thw` = (frames / 2, grid h, grid w); an odd frame count repeats the last frame;
- one `<|video_pad|>` becomes t * h * w / merge^2 placeholders, the number the vision tower emits;
- `mm_token_type_ids` marks them (video = 2, text = 0), as `Qwen2VLProcessor` does: without it
  transformers' `generate` gives the video tokens plain 1-D positions instead of Qwen2-VL's 3-D
  (time, height, width) rotary positions (transformers versions whose model has no such input get none).

Few-shot (`with_shots`): K earlier user/assistant turns, each an example video asked the same prompt and
answered with the given text, precede the asked video's turn; every row then holds K + 1 videos (the
shots, then its own), whose patches and grids go in that order and fill the placeholders in order.

The video pixel limits come from the checkpoint's `video_preprocessor_config.json` when it has one,
else the defaults of `Qwen2VLVideoProcessor` (128 to 768 merged patches of 28 x 28 pixels per frame).
Frames are resized with PIL's bicubic filter (the image processor's); torchvision's bicubic may
differ in rounding, by about one grey level.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

# Qwen2-VL-Instruct's chat template for one user turn holding a video, with its default system prompt.
QWEN_SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
QWEN_USER_TURN = ("<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>{prompt}<|im_end|>\n"
                  "<|im_start|>assistant\n")
QWEN_CHAT_FORMAT = QWEN_SYSTEM + QWEN_USER_TURN
QWEN_TURN_END = "<|im_end|>\n"  # closes an assistant turn (the template's, for earlier answers)
VIDEO_PIXELS = (128 * 28 * 28, 768 * 28 * 28)  # Qwen2VLVideoProcessor's per-frame (min, max) pixels
VIDEO_CONFIG_FILE = "video_preprocessor_config.json"
VIDEO_TOKEN_TYPE = 2  # `mm_token_type_ids`: text 0, image 1, video 2


def video_pixel_limits(settings: dict[str, Any] | None) -> tuple[int, int]:
    """(min, max) pixels per frame from a video processor config (new `size` or legacy keys), else defaults."""
    if not settings:
        return VIDEO_PIXELS
    size = settings.get("size") or {}
    lo = size.get("shortest_edge", settings.get("min_pixels", VIDEO_PIXELS[0]))
    hi = size.get("longest_edge", settings.get("max_pixels", VIDEO_PIXELS[1]))
    return int(lo), int(hi)


def read_video_settings(name: str, hub: dict) -> dict[str, Any] | None:
    """The checkpoint's video processor config (local folder or HF cache/hub), None when it has none."""
    # deferred: transformers
    from transformers.utils import cached_file

    path = cached_file(name, VIDEO_CONFIG_FILE, _raise_exceptions_for_missing_entries=False,
                       _raise_exceptions_for_connection_errors=False, **hub)
    return json.loads(open(path).read()) if path else None


@dataclass
class QwenChatProcessor:
    """Image processor + tokenizer + the video placeholder rule of a Qwen2-VL model."""

    tokenizer: object
    image_processor: object
    patch_size: int
    merge_size: int
    temporal_patch_size: int
    min_pixels: int
    max_pixels: int
    chat_format: str = QWEN_CHAT_FORMAT
    media: str = "video"
    media_token: str = "<|video_pad|>"
    token_types: bool = True  # send `mm_token_type_ids` (the model reads them for its 3-D positions)
    # Few-shot (`with_shots`): earlier turns' video inputs (patches, grid) and the assistant's answers.
    shot_media: tuple = ()
    shot_answers: tuple[str, ...] = ()

    @property
    def media_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.media_token)

    @classmethod
    def for_model(cls, model_config, tokenizer, image_processor,
                  video_settings: dict[str, Any] | None = None) -> "QwenChatProcessor":
        """Derive the placeholder rule from a Qwen2VLConfig and check the tokenizer agrees with it."""
        for token, expected in (("<|video_pad|>", model_config.video_token_id),
                                ("<|vision_start|>", model_config.vision_start_token_id)):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id != expected:
                raise ValueError(f"tokenizer maps {token} to id {token_id} but the model expects {expected}; "
                                 "the tokenizer must register it as an added special token")
        vision = model_config.vision_config
        if int(getattr(image_processor, "patch_size", vision.patch_size)) != vision.patch_size:
            raise ValueError(f"image processor patch size {image_processor.patch_size} != vision tower's "
                             f"{vision.patch_size}")
        lo, hi = video_pixel_limits(video_settings)
        # deferred: transformers
        from transformers import Qwen2VLForConditionalGeneration

        token_types = "mm_token_type_ids" in inspect.signature(Qwen2VLForConditionalGeneration.forward).parameters
        return cls(tokenizer, image_processor, int(vision.patch_size), int(vision.spatial_merge_size),
                   int(vision.temporal_patch_size), lo, hi, token_types=token_types)

    def with_shots(self, shots: Sequence[tuple[np.ndarray, str]]) -> "QwenChatProcessor":
        """This processor with K earlier turns before every prompt: each a video (uint8 [F, H, W, 3]) asked
        the same prompt, answered with the given text. Row i's videos are then the K shots, then its own."""
        if type(self) is not QwenChatProcessor or self.chat_format != QWEN_CHAT_FORMAT:
            raise ValueError("few-shot turns are built for Qwen2-VL's chat format only")
        self._check(video for video, _ in shots)
        return dataclasses.replace(self, shot_media=tuple(self.video_inputs(v) for v, _ in shots),
                                   shot_answers=tuple(str(a) for _, a in shots))

    def format(self, prompt: str) -> str:
        """The chat text for one user prompt, ending where the assistant's answer starts (after any shots)."""
        if not self.shot_answers:
            return self.chat_format.format(prompt=prompt)
        turns = "".join(QWEN_USER_TURN.format(prompt=prompt) + a + QWEN_TURN_END for a in self.shot_answers)
        return QWEN_SYSTEM + turns + QWEN_USER_TURN.format(prompt=prompt)

    def video_inputs(self, video: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """uint8 [F, H, W, 3] -> (patches float32 [t * h * w, C * tps * p * p], grid (t, h, w))."""
        frames = list(video)
        tps = self.temporal_patch_size
        frames += [frames[-1]] * (-len(frames) % tps)
        out = self.image_processor(frames, size={"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
                                   return_tensors="pt")
        pixels, grids = out["pixel_values"], out["image_grid_thw"]
        if len({tuple(g) for g in grids.tolist()}) != 1 or int(grids[0, 0]) != 1:
            raise ValueError(f"frames of one video were resized to different grids: {grids.tolist()}")
        _, gh, gw = (int(v) for v in grids[0])
        p, ip_tps = self.patch_size, int(getattr(self.image_processor, "temporal_patch_size", tps))
        f, s = len(frames), gh * gw
        channels = pixels.shape[1] // (ip_tps * p * p)
        # Every frame came back repeated over the image processor's temporal slots: keep one slot per frame.
        single = pixels.reshape(f, s, channels, ip_tps, p, p)[:, :, :, 0]
        grouped = single.reshape(f // tps, tps, s, channels, p, p).permute(0, 2, 3, 1, 4, 5)
        return grouped.reshape(f // tps * s, channels * tps * p * p), (f // tps, gh, gw)

    def __call__(self, media: list[np.ndarray], prompts: list[str]) -> dict[str, torch.Tensor]:
        """Model inputs for a batch: one video uint8 [F, H, W, 3] and one prompt per row."""
        if len(media) != len(prompts):
            raise ValueError(f"{len(media)} inputs but {len(prompts)} prompts")
        videos = self.media_inputs(media)
        return {**self.text_inputs(videos, prompts), **videos}

    def media_inputs(self, media: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The pixel part of the inputs: `pixel_values_videos` (all videos' patches) and `video_grid_thw`."""
        self._check(media)
        own = [self.video_inputs(video) for video in media]
        patches, grids = zip(*(x for item in own for x in (*self.shot_media, item)))
        return {"pixel_values_videos": torch.cat(patches), "video_grid_thw": torch.tensor(grids, dtype=torch.long)}

    @staticmethod
    def _check(media) -> None:
        for i, item in enumerate(media):
            if item.dtype != np.uint8 or item.ndim != 4 or item.shape[-1] != 3 or len(item) < 1:
                raise ValueError(f"input {i}: expected uint8 [F, H, W, 3], got {item.dtype} {item.shape}")

    def text_inputs(self, media_inputs: dict[str, torch.Tensor], prompts: list[str]) -> dict[str, torch.Tensor]:
        """`input_ids` and `attention_mask` (left-padded) for one prompt per video of `media_inputs`."""
        grids = media_inputs["video_grid_thw"]
        per_row = len(self.shot_media) + 1
        if len(grids) != len(prompts) * per_row:
            raise ValueError(f"{len(grids) // per_row} inputs but {len(prompts)} prompts")
        each = (grids.prod(-1) // self.merge_size ** 2).tolist()
        rows = [each[i * per_row:(i + 1) * per_row] for i in range(len(prompts))]
        texts = [self._placeholders(self.format(p), row) for p, row in zip(prompts, rows)]
        counts = [sum(row) for row in rows]
        enc = self.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
        found = (enc["input_ids"] == self.media_token_id).sum(dim=1).tolist()
        if found != counts:
            raise ValueError(f"tokenized prompts hold {found} {self.media_token} placeholders, expected {counts} "
                             "(a prompt must not contain the placeholder itself)")
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if self.token_types:
            out["mm_token_type_ids"] = (enc["input_ids"] == self.media_token_id).long() * VIDEO_TOKEN_TYPE
        return out

    def _placeholders(self, text: str, counts: list[int]) -> str:
        """`text` with its k-th video placeholder repeated counts[k] times."""
        parts = text.split(self.media_token)
        if len(parts) != len(counts) + 1:
            raise ValueError(f"chat text holds {len(parts) - 1} {self.media_token} placeholders, {len(counts)} videos "
                             "(a prompt must not contain the placeholder itself)")
        return parts[0] + "".join(self.media_token * n + rest for n, rest in zip(counts, parts[1:]))
