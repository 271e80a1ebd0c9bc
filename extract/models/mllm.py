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

Speed (`GenerationOptions`; none of it changes a generated token, which the tests check on the
miniature models against the plain path): a static KV cache (fixed shapes, so on CUDA transformers
compiles the decode step with CUDA graphs), the next batch preprocessed on a worker thread while this
one generates, items batched in order of prompt length (less left padding; results come back in the
input order), and, with several prompts per item (`generate_for_prompts`), one preprocessing and one
vision-tower pass per batch for all prompts.
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from .chat_processor import ChatProcessor
from .qwen_chat import QwenChatProcessor

Pooling = Literal["generated", "all"]

VIDEO_PROMPTS = ("Describe the video.", "Describe the reaction of the subject in the video.")
FRAME_PROMPT = "Describe the image."


@dataclasses.dataclass(frozen=True)
class GenerationOptions:
    """How batched generation runs. Defaults (`for_device`): all on but compilation, which stays opt-in until
    a GPU run has checked it (it cannot run on the CPU tests; `benchmarks/extract_throughput.py` times it)."""

    cache: Literal["static", "dynamic"] = "static"  # static: preallocated KV cache, fixed decode shapes
    compile: bool = False  # torch.compile of the decode step (static cache only; transformers' CUDA graphs)
    prefetch: bool = True  # preprocess the next batch on a worker thread while this one generates
    sort: bool = True  # batch items in order of prompt length (less padding); results in input order
    encode_once: bool = True  # several prompts per item: one vision-tower pass per batch, not one per prompt

    def __post_init__(self):
        if self.cache not in ("static", "dynamic"):
            raise ValueError(f"cache must be 'static' or 'dynamic', got {self.cache!r}")
        if self.compile and self.cache != "static":
            raise ValueError("compile needs the static cache (a dynamic cache changes shape every step)")

    @classmethod
    def for_device(cls, device: torch.device | str) -> "GenerationOptions":
        # Compilation pays for itself only where kernel launches dominate a decode step (a GPU), and it was
        # never run there with the pooled-state hook: real extraction does not risk it until then.
        del device
        return cls(compile=False)

    @classmethod
    def plain(cls) -> "GenerationOptions":
        """The path before the speed-ups: dynamic cache, eager, input order, no prefetch, a tower pass per prompt."""
        return cls(cache="dynamic", compile=False, prefetch=False, sort=False, encode_once=False)


def generate_descriptions(model, processor: ChatProcessor, videos: Sequence[np.ndarray], prompt: str | Sequence[str],
                          *, max_new_tokens: int, batch_size: int = 4, pooled: bool = True,
                          pooling: Pooling = "generated", min_new_tokens: int | None = None,
                          progress: bool = False, options: GenerationOptions | None = None):
    """One greedy answer per video (uint8 [F, H, W, 3], F = 8 for Video-LLaVA): (texts, pooled [N, hidden] | None).

    `prompt` is one prompt for all videos or one per video. `min_new_tokens` holds back the end of
    sequence (benchmarks use it to fix the amount of work). `options`: `GenerationOptions.for_device`
    of the model's device unless given.
    """
    _check_media(processor, "video")
    return _generate(model, processor, list(videos), prompt, max_new_tokens, min_new_tokens, batch_size, pooled,
                     pooling, progress, options)[0][:2]


def describe_images(model, processor: ChatProcessor, images: Sequence[np.ndarray] | np.ndarray,
                    prompt: str | Sequence[str], *, max_new_tokens: int, batch_size: int = 16, pooled: bool = False,
                    pooling: Pooling = "generated", min_new_tokens: int | None = None, progress: bool = False,
                    options: GenerationOptions | None = None):
    """One greedy answer per image (uint8 [H, W, 3]; e.g. each of a clip's 32 frames for LLaVA-1.5)."""
    _check_media(processor, "image")
    return _generate(model, processor, list(images), prompt, max_new_tokens, min_new_tokens, batch_size, pooled,
                     pooling, progress, options)[0][:2]


def _check_media(processor: ChatProcessor | QwenChatProcessor, media: str) -> None:
    if not isinstance(processor, (ChatProcessor, QwenChatProcessor)):
        raise TypeError(f"expected a ChatProcessor or QwenChatProcessor (from load_model), got "
                        f"{type(processor).__name__}")
    if processor.media != media:
        raise ValueError(f"this model takes {processor.media} input, not {media}")


def generate_for_prompts(model, processor, media: Sequence[np.ndarray], prompts: Sequence[str], *,
                         max_new_tokens: int, batch_size: int = 4, pooled: bool = True,
                         pooling: Pooling = "generated", min_new_tokens: int | None = None, progress: bool = False,
                         options: GenerationOptions | None = None) -> list[tuple[list[str], np.ndarray | None]]:
    """Every item answered with every prompt: [(texts, pooled | None)] per prompt, in the order of `prompts`.

    The same as one `generate_descriptions` / `describe_images` call per prompt, but each batch is
    preprocessed once and (with `options.encode_once`) goes through the vision tower once for all prompts.
    """
    _check_media(processor, getattr(processor, "media", None))
    rounds = [[str(p)] * len(media) for p in prompts]
    return [r[:2] for r in _generate(model, processor, list(media), rounds, max_new_tokens, min_new_tokens,
                                     batch_size, pooled, pooling, progress, options)]


def _generate(model, processor, media, prompt, max_new_tokens, min_new_tokens, batch_size, pooled, pooling,
              progress, options):
    """[(texts, pooled [N, hidden] | None, generated ids per item up to the first end of sequence)] per round.

    `prompt`: one prompt for every item, one per item, or a list of rounds (lists of one prompt per item).
    """
    if pooling not in ("generated", "all"):
        raise ValueError(f"pooling must be 'generated' or 'all', got {pooling!r}")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be >= 1")
    if isinstance(prompt, str):
        rounds = [[prompt] * len(media)]
    else:
        rounds = [list(r) for r in prompt] if prompt and not isinstance(prompt[0], str) else [list(prompt)]
    for r in rounds:
        if len(r) != len(media):
            raise ValueError(f"{len(media)} inputs but {len(r)} prompts")
    options = options or GenerationOptions.for_device(next(model.parameters()).device)
    encode_once = options.encode_once and len(rounds) > 1 and _takes_encoder_outputs(model)
    tok = processor.tokenizer
    # Everything that reads the tokenizer happens before or after the prefetch thread runs: a Rust
    # tokenizer used from two threads at once fails ("Already borrowed").
    eos = _eos_ids(model, tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos[0]
    order = _length_order(processor, media, rounds) if options.sort else list(range(len(media)))
    chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    tokens = [[None] * len(media) for _ in rounds]
    pools = [[None] * len(media) for _ in rounds]
    bar = tqdm(total=len(media) * len(rounds), desc=f"{processor.media} descriptions", unit="answer",
               disable=not progress)
    batches = _inputs(processor, media, rounds, chunks, options.prefetch)
    try:
        for rows, (media_in, text_ins) in zip(chunks, batches):
            shared = _encode_media(model, processor, media_in) if encode_once else None
            for r, text_in in enumerate(text_ins):
                new, n_gen, pool = _generate_batch(model, text_in, media_in, shared, eos, pad, max_new_tokens,
                                                   min_new_tokens, pooled, pooling, options)
                for j, i in enumerate(rows):
                    tokens[r][i] = new[j, :n_gen[j]]
                    if pooled:
                        pools[r][i] = pool[j]
                bar.update(len(rows))
    finally:
        batches.close()
        bar.close()
    hidden = model.config.text_config.hidden_size
    out = []
    for r in range(len(rounds)):
        texts = [tok.decode(t, skip_special_tokens=True).strip() for t in tokens[r]]
        pooled_r = (np.stack(pools[r]) if media else np.zeros((0, hidden), np.float32)) if pooled else None
        out.append((texts, pooled_r, tokens[r]))
    return out


def _length_order(processor, media, rounds) -> list[int]:
    """Item indices by prompt length (chat text tokens, then media shape: Qwen2-VL's placeholders follow it)."""
    lengths = {p: len(processor.tokenizer(processor.format(p))["input_ids"]) for r in rounds for p in set(r)}
    return sorted(range(len(media)), key=lambda i: (*(lengths[r[i]] for r in rounds), np.shape(media[i])))


def _inputs(processor, media, rounds, chunks, prefetch):
    """(media inputs, [text inputs per round]) for each chunk of item indices; with `prefetch`, the next
    chunk's are made on a worker thread while the caller generates."""
    def make(rows):
        media_in = processor.media_inputs([media[i] for i in rows])
        return media_in, [processor.text_inputs(media_in, [r[i] for i in rows]) for r in rounds]

    if not prefetch:
        for rows in chunks:
            yield make(rows)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllm-preprocess")
    try:
        ahead = pool.submit(make, chunks[0]) if chunks else None
        for k in range(len(chunks)):
            current = ahead.result()
            ahead = pool.submit(make, chunks[k + 1]) if k + 1 < len(chunks) else None
            yield current
    finally:  # also when generation fails: wait for the thread, drop what it has not started
        pool.shutdown(wait=True, cancel_futures=True)


PIXEL_KEYS = ("pixel_values", "pixel_values_videos")


def _takes_encoder_outputs(model) -> bool:
    """Whether the model's forward accepts pre-computed vision features (`mm_encoder_outputs`, transformers 5.2x)."""
    return "mm_encoder_outputs" in inspect.signature(model.forward).parameters


def _to_model(model, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    # Flags (Omni's `use_audio_in_video`) pass as they are; float64 holds times (Omni's seconds per video
    # grid), which the model's dtype would round.
    return {k: v if not isinstance(v, torch.Tensor) else v.to(device, dtype)
            if v.is_floating_point() and v.dtype != torch.float64 else v.to(device) for k, v in tensors.items()}


@torch.inference_mode()
def _encode_media(model, processor, media_in) -> dict | None:
    """The vision tower's projected features for a batch, in the form `generate(mm_encoder_outputs=...)` takes
    (None without pixels)."""
    modality = processor.media
    pixels = {k: v for k, v in media_in.items() if k in PIXEL_KEYS or k.endswith("_grid_thw")}
    if not any(k in PIXEL_KEYS for k in pixels):  # audio only (Omni): its tower runs inside generate
        return None
    out = getattr(model.base_model, f"get_{modality}_features")(**_to_model(model, pixels), return_dict=True)
    # Only the projected features are read; the tower's per-layer states (gigabytes at 7B sizes) are dropped.
    return {modality: type(out)(pooler_output=out.pooler_output)}


def _eos_ids(model, tokenizer) -> list[int]:
    eos = model.generation_config.eos_token_id
    eos = tokenizer.eos_token_id if eos is None else eos
    return [eos] if isinstance(eos, int) else list(eos)


@torch.inference_mode()
def _generate_batch(model, text_in, media_in, shared, eos, pad, max_new_tokens, min_new_tokens, pooled, pooling,
                    options: GenerationOptions):
    """(new tokens [B, T], tokens per row up to and including the first end of sequence, pooled | None).

    `shared`: the batch's vision features (`_encode_media`), or None to let `generate` run the tower.
    """
    if shared is None:
        inputs = _to_model(model, {**text_in, **media_in})
    else:  # the pixels are already encoded; grids and the like still go in (Qwen2-VL's rotary positions)
        inputs = _to_model(model, {**text_in, **{k: v for k, v in media_in.items() if k not in PIXEL_KEYS}})
        inputs["mm_encoder_outputs"] = dict(shared)  # generate may write into it: a fresh dict per call
    catcher = _StateCatcher(model.get_decoder(), inputs["attention_mask"], pooling) if pooled else None
    cache = {"cache_implementation": "static", "disable_compile": not options.compile} \
        if options.cache == "static" else {}
    try:
        out = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                             min_new_tokens=min_new_tokens, eos_token_id=eos, pad_token_id=pad, **cache)
    finally:
        if catcher is not None:
            catcher.remove()
    new = out[:, inputs["input_ids"].shape[1]:].cpu()
    # Tokens per row up to and including the first end-of-sequence; the rest is padding.
    is_eos = torch.isin(new, torch.tensor(eos))
    n_gen = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, new.shape[1])
    return new, n_gen.tolist(), (catcher.pool(n_gen) if pooled else None)


class _StateCatcher:
    """Forward hook on the decoder collecting what the pooled embedding needs, step by step."""

    def __init__(self, decoder, prompt_mask: torch.Tensor, pooling: Pooling):
        self.prompt_mask, self.pooling = prompt_mask, pooling
        self.prompt_sum: torch.Tensor | None = None  # [B, H]: sum over non-padding prompt positions
        self.steps: list[torch.Tensor] = []  # [B, H] each: prefill's last position, then each decode step
        self.handle = decoder.register_forward_hook(self._hook)

    # Kept out of a compiled decode step: under CUDA graphs the decoder's output buffer is overwritten by
    # the next replay, so the copy below must be an eager op of its own.
    @torch.compiler.disable
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
