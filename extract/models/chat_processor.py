"""Turn frames and prompts into the inputs of a LLaVA-style chat model (Video-LLaVA, LLaVA-1.5).

Why not the Hugging Face processor: `VideoLlavaProcessor` cannot even be constructed without torchvision
(its video processor imports it), and its output keys are being renamed across transformers releases.
So we use the two stable parts, the image processor and the tokenizer, and expand the placeholders
ourselves from the model's own config, with a check that the count matches what the vision tower emits:

- Video-LLaVA: every frame goes through the image processor (`VideoLlavaImageProcessor` gives the same
  [F, 3, 224, 224] tensor as the video processor); one `<video>` token becomes F * ((H/p)*(W/p) + 1)
  placeholders, because the video path keeps the CLS token (8 frames at 224 px, p = 14: 2,056).
- LLaVA-1.5: one `<image>` becomes (H/p)*(W/p) placeholders with the "default" feature strategy (CLS
  dropped; 576 at 336 px), one more with "full".
Texts are left-padded so that every row's last prompt token sits at the end, as batched generation needs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

# The chat formats the checkpoints were trained with.
CHAT_FORMATS = {
    "video": "USER: <video>\n{prompt} ASSISTANT:",
    "image": "USER: <image>\n{prompt} ASSISTANT:",
}


@dataclass
class ChatProcessor:
    """Image processor + tokenizer + the placeholder rule of one chat model."""

    tokenizer: object
    image_processor: object
    media: Literal["video", "image"]
    patch_size: int
    image_size: int  # what the vision tower was built for
    keeps_cls: bool  # whether the projected features include the CLS token
    chat_format: str

    @property
    def media_token(self) -> str:
        return "<video>" if self.media == "video" else "<image>"

    @property
    def media_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.media_token)

    @classmethod
    def for_model(cls, model_config, tokenizer, image_processor) -> "ChatProcessor":
        """Derive the placeholder rule from a VideoLlavaConfig or LlavaConfig."""
        media = "video" if model_config.model_type == "video_llava" else "image"
        vision = model_config.vision_config
        keeps_cls = media == "video" or model_config.vision_feature_select_strategy == "full"
        token = "<video>" if media == "video" else "<image>"
        token_id = tokenizer.convert_tokens_to_ids(token)
        expected = model_config.video_token_id if media == "video" else model_config.image_token_id
        if token_id != expected:
            raise ValueError(
                f"tokenizer maps {token} to id {token_id} but the model expects {expected}; "
                "the tokenizer must register it as an added special token"
            )
        return cls(tokenizer, image_processor, media, vision.patch_size, vision.image_size, keeps_cls,
                   CHAT_FORMATS[media])

    def format(self, prompt: str) -> str:
        """The chat text for one user prompt, ending where the assistant's answer starts."""
        return self.chat_format.format(prompt=prompt)

    def tokens_per_frame(self, height: int, width: int) -> int:
        """Placeholders one processed frame (or image) of height x width pixels takes."""
        return (height // self.patch_size) * (width // self.patch_size) + (1 if self.keeps_cls else 0)

    def pixel_values(self, frames: list[np.ndarray]) -> torch.Tensor:
        """uint8 [H, W, 3] frames -> float32 [len(frames), 3, S, S] through the model's image processor."""
        out = self.image_processor(list(frames), return_tensors="pt")
        # VideoLlavaImageProcessor still answers with the legacy key; CLIPImageProcessor with the new one.
        pixels = out["pixel_values"] if "pixel_values" in out else out["pixel_values_images"]
        if tuple(pixels.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"image processor gives {tuple(pixels.shape[-2:])} pixels but the vision tower expects "
                f"{self.image_size}x{self.image_size}"
            )
        return pixels

    def __call__(self, media: list[np.ndarray], prompts: list[str]) -> dict[str, torch.Tensor]:
        """Model inputs for a batch: one video [F, H, W, 3] (or one image [H, W, 3]) and one prompt per row."""
        if len(media) != len(prompts):
            raise ValueError(f"{len(media)} inputs but {len(prompts)} prompts")
        pixels = self.media_inputs(media)
        return {**self.text_inputs(pixels, prompts), **pixels}

    def media_inputs(self, media: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The pixel part of the inputs (`pixel_values_videos` [B, F, 3, S, S] or `pixel_values` [B, 3, S, S])."""
        for i, item in enumerate(media):
            want = 4 if self.media == "video" else 3
            if item.dtype != np.uint8 or item.ndim != want or item.shape[-1] != 3:
                shape = "[F, H, W, 3]" if want == 4 else "[H, W, 3]"
                raise ValueError(f"input {i}: expected uint8 {shape}, got {item.dtype} {item.shape}")
        if self.media == "video":
            frames = [frame for video in media for frame in video]
            n_frames = {len(video) for video in media}
            if len(n_frames) != 1:
                raise ValueError(f"all videos in a batch need the same number of frames, got {sorted(n_frames)}")
            (f,) = n_frames
            pixels = self.pixel_values(frames)
            return {"pixel_values_videos": pixels.reshape(len(media), f, *pixels.shape[1:])}
        return {"pixel_values": self.pixel_values(media)}

    def text_inputs(self, media_inputs: dict[str, torch.Tensor], prompts: list[str]) -> dict[str, torch.Tensor]:
        """`input_ids` and `attention_mask` (left-padded) for one prompt per row of `media_inputs`."""
        (pixels,) = media_inputs.values()
        if len(pixels) != len(prompts):
            raise ValueError(f"{len(pixels)} inputs but {len(prompts)} prompts")
        frames = pixels.shape[1] if self.media == "video" else 1
        n_tokens = frames * self.tokens_per_frame(*pixels.shape[-2:])
        texts = [self.format(p).replace(self.media_token, self.media_token * n_tokens, 1) for p in prompts]
        enc = self.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
        counts = (enc["input_ids"] == self.media_token_id).sum(dim=1)
        if not bool((counts == n_tokens).all()):
            raise ValueError(
                f"tokenized prompts hold {counts.tolist()} {self.media_token} placeholders, expected {n_tokens} "
                "each (a prompt must not contain the placeholder itself)"
            )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
