"""Batched greedy generation with a LLaVA-style chat model, and the pooled last hidden state.

`generate_descriptions` (videos: Video-LLaVA, Qwen2-VL) and `describe_images` (images, LLaVA-1.5) take any
prompt, so the zero-shot querying baseline reuses them with its own prompt.

Pooled embedding (`pooled=True`), always float32, from the decoder's final layer (after its last norm,
i.e. `hidden_states[-1]` of a forward pass), averaged per row over:
- pooling="generated" (default): the n states that emitted the n generated tokens, i.e. the last prompt
  position and the positions of generated tokens 1..n-1; n counts up to and including the first
  end-of-sequence token. This embedding depends on the prompt, not on the padding or the batch.
- pooling="all": every non-padding prompt position (chat text and all media placeholders) plus the
  positions of generated tokens 1..n-1 — every token the model read.
The last generated token is never fed back through the model, so it has no state of its own.
States are caught by a forward hook on the decoder during `generate` (no second pass, and no
all-layer `output_hidden_states`, which for 8 frames x 257 tokens would take gigabytes).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from .chat_processor import ChatProcessor
from .qwen_chat import QwenChatProcessor

Pooling = Literal["generated", "all"]

VIDEO_PROMPTS = ("Describe the video.", "Describe the reaction of the subject in the video.")
FRAME_PROMPT = "Describe the image."


def generate_descriptions(model, processor: ChatProcessor, videos: Sequence[np.ndarray], prompt: str | Sequence[str],
                          *, max_new_tokens: int, batch_size: int = 4, pooled: bool = True,
                          pooling: Pooling = "generated", min_new_tokens: int | None = None,
                          progress: bool = False):
    """One greedy answer per video (uint8 [F, H, W, 3], F = 8 for Video-LLaVA): (texts, pooled [N, hidden] | None).

    `prompt` is one prompt for all videos or one per video. `min_new_tokens` holds back the end of
    sequence (benchmarks use it to fix the amount of work).
    """
    _check_media(processor, "video")
    return _generate(model, processor, list(videos), prompt, max_new_tokens, min_new_tokens, batch_size, pooled,
                     pooling, progress)


def describe_images(model, processor: ChatProcessor, images: Sequence[np.ndarray] | np.ndarray,
                    prompt: str | Sequence[str], *, max_new_tokens: int, batch_size: int = 16, pooled: bool = False,
                    pooling: Pooling = "generated", min_new_tokens: int | None = None, progress: bool = False):
    """One greedy answer per image (uint8 [H, W, 3]; e.g. each of a clip's 32 frames for LLaVA-1.5)."""
    _check_media(processor, "image")
    return _generate(model, processor, list(images), prompt, max_new_tokens, min_new_tokens, batch_size, pooled,
                     pooling, progress)


def _check_media(processor: ChatProcessor | QwenChatProcessor, media: str) -> None:
    if not isinstance(processor, (ChatProcessor, QwenChatProcessor)):
        raise TypeError(f"expected a ChatProcessor or QwenChatProcessor (from load_model), got "
                        f"{type(processor).__name__}")
    if processor.media != media:
        raise ValueError(f"this model takes {processor.media} input, not {media}")


def _generate(model, processor, media, prompt, max_new_tokens, min_new_tokens, batch_size, pooled, pooling,
              progress):
    if pooling not in ("generated", "all"):
        raise ValueError(f"pooling must be 'generated' or 'all', got {pooling!r}")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be >= 1")
    prompts = [prompt] * len(media) if isinstance(prompt, str) else list(prompt)
    if len(prompts) != len(media):
        raise ValueError(f"{len(media)} inputs but {len(prompts)} prompts")
    texts: list[str] = []
    pools: list[np.ndarray] = []
    bar = tqdm(total=len(media), desc=f"{processor.media} descriptions", unit=processor.media,
               disable=None if progress else True)  # None: on a terminal only
    for start in range(0, len(media), batch_size):
        t, p = _generate_batch(model, processor, media[start:start + batch_size],
                               prompts[start:start + batch_size], max_new_tokens, min_new_tokens, pooled, pooling)
        texts += t
        if pooled:
            pools.append(p)
        bar.update(len(t))
    bar.close()
    if not pooled:
        return texts, None
    hidden = model.config.text_config.hidden_size
    return texts, (np.concatenate(pools) if pools else np.zeros((0, hidden), np.float32))


def _eos_ids(model, tokenizer) -> list[int]:
    eos = model.generation_config.eos_token_id
    eos = tokenizer.eos_token_id if eos is None else eos
    return [eos] if isinstance(eos, int) else list(eos)


@torch.inference_mode()
def _generate_batch(model, processor: ChatProcessor, media, prompts, max_new_tokens, min_new_tokens, pooled,
                    pooling):
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
              for k, v in processor(media, prompts).items()}
    tok = processor.tokenizer
    eos = _eos_ids(model, tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos[0]
    catcher = _StateCatcher(model.get_decoder(), inputs["attention_mask"], pooling) if pooled else None
    try:
        out = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                             min_new_tokens=min_new_tokens, eos_token_id=eos, pad_token_id=pad)
    finally:
        if catcher is not None:
            catcher.remove()
    new = out[:, inputs["input_ids"].shape[1]:]
    # Tokens per row up to and including the first end-of-sequence; the rest is padding.
    is_eos = torch.isin(new, torch.tensor(eos, device=new.device))
    n_gen = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, new.shape[1])
    texts = [tok.decode(row[:n], skip_special_tokens=True).strip() for row, n in zip(new, n_gen.tolist())]
    return texts, (catcher.pool(n_gen) if pooled else None)


class _StateCatcher:
    """Forward hook on the decoder collecting what the pooled embedding needs, step by step."""

    def __init__(self, decoder, prompt_mask: torch.Tensor, pooling: Pooling):
        self.prompt_mask, self.pooling = prompt_mask, pooling
        self.prompt_sum: torch.Tensor | None = None  # [B, H]: sum over non-padding prompt positions
        self.steps: list[torch.Tensor] = []  # [B, H] each: prefill's last position, then each decode step
        self.handle = decoder.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        h = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        if not self.steps:
            if h.shape[1] != self.prompt_mask.shape[1]:
                raise RuntimeError(f"expected one prefill pass over {self.prompt_mask.shape[1]} tokens, got "
                                   f"{h.shape[1]}: this generation mode is not supported for pooling")
            if self.pooling == "all":  # row by row: a float32 copy of one row, not of the whole prefill
                self.prompt_sum = torch.stack([
                    (h[b].float() * self.prompt_mask[b].float().unsqueeze(-1)).sum(0) for b in range(h.shape[0])
                ])
        elif h.shape[1] != 1:
            raise RuntimeError(f"expected one token per decoding step, got {h.shape[1]}")
        self.steps.append(h[:, -1].float())

    def remove(self) -> None:
        self.handle.remove()

    def pool(self, n_generated: torch.Tensor) -> np.ndarray:
        """Mean per row given n generated tokens per row (see the module docstring)."""
        steps = torch.stack(self.steps, 1)  # [B, T, H]
        t = torch.arange(steps.shape[1], device=steps.device)
        n = n_generated.to(steps.device)
        if self.pooling == "generated":
            keep = (t[None] < n[:, None]).float().unsqueeze(-1)  # steps 0..n-1
            pooled = (steps * keep).sum(1) / keep.sum(1)
        else:
            keep = ((t[None] >= 1) & (t[None] < n[:, None])).float().unsqueeze(-1)  # decode steps 1..n-1
            total = self.prompt_sum + (steps * keep).sum(1)
            count = self.prompt_mask.sum(1, keepdim=True).float() + keep.sum(1)
            pooled = total / count
        return pooled.cpu().numpy().astype(np.float32)
