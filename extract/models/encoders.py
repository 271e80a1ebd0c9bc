"""Batched per-frame / per-window / per-text encoders over numpy inputs, returning float32 numpy.

All run under `torch.inference_mode()` on the model's device (or `device`), in chunks of `batch_size`,
and give the same rows whatever the batch size (each row is computed independently of the others).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


def _device(model, device) -> torch.device:
    return torch.device(device) if device is not None else next(model.parameters()).device


def _batched(n: int, batch_size: int, run: Callable[[slice], torch.Tensor], dim: int) -> np.ndarray:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = [run(slice(i, i + batch_size)).float().cpu().numpy() for i in range(0, n, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def _check_images(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """uint8 [N, H, W, 3], or a list of uint8 [H, W, 3] of different sizes (face crops): a list of images."""
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    out = list(images)
    for i, im in enumerate(out):
        if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim != 3 or im.shape[-1] != 3:
            got = f"{im.dtype} {im.shape}" if isinstance(im, np.ndarray) else type(im).__name__
            raise ValueError(f"image {i} must be uint8 [H, W, 3] (images uint8 [N, H, W, 3]), got {got}")
    return out


def _pixels(processor, images: list[np.ndarray], model) -> torch.Tensor:
    out = processor(images=images, return_tensors="pt")
    return out["pixel_values"].to(next(model.parameters()).dtype)


@torch.inference_mode()
def vit_cls(model, processor, images: np.ndarray | Sequence[np.ndarray], *, batch_size: int = 64,
            device=None) -> np.ndarray:
    """CLS token of the ViT's last hidden state (after the final LayerNorm): [N, hidden] (768 for ViT-B)."""
    images = _check_images(images)
    dev = _device(model, device)

    def run(s):
        return model(pixel_values=_pixels(processor, images[s], model).to(dev)).last_hidden_state[:, 0]

    return _batched(len(images), batch_size, run, model.config.hidden_size)


@torch.inference_mode()
def wavlm_xvector(model, processor, windows: np.ndarray, sr: int = 16000, *, batch_size: int = 32,
                  device=None) -> np.ndarray:
    """WavLMForXVector embeddings (the raw x-vector, not L2-normalised) per audio window: [N, 512 | d].

    `windows` is float32 [N, S] mono at `sr`, which must be the feature extractor's sampling rate.
    """
    windows = np.asarray(windows)
    if windows.ndim != 2 or not np.issubdtype(windows.dtype, np.floating):
        raise ValueError(f"windows must be float [N, S], got {windows.dtype} {windows.shape}")
    if sr != processor.sampling_rate:
        raise ValueError(f"audio is at {sr} Hz but the model expects {processor.sampling_rate} Hz; resample first")
    dev = _device(model, device)
    dtype = next(model.parameters()).dtype

    def run(s):
        feats = processor(list(windows[s].astype(np.float32)), sampling_rate=sr, return_tensors="pt",
                          padding=True, return_attention_mask=True)
        return model(input_values=feats["input_values"].to(dev, dtype),
                     attention_mask=feats["attention_mask"].to(dev)).embeddings

    return _batched(len(windows), batch_size, run, model.config.xvector_output_dim)


@torch.inference_mode()
def clip_text_embeds(model, processor, texts: Sequence[str], *, device=None) -> torch.Tensor:
    """L2-normalised CLIP text embeddings [T, proj] (computed once per template set)."""
    dev = _device(model, device)
    tok = processor.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(dev)
    emb = model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).pooler_output
    return torch.nn.functional.normalize(emb.float(), dim=-1)


@torch.inference_mode()
def clip_best_templates(model, processor, images: np.ndarray | Sequence[np.ndarray], templates: Sequence[str], *,
                        batch_size: int = 64, device=None) -> tuple[np.ndarray, list[str]]:
    """For each image the template with the highest CLIP cosine similarity: (indices int64 [N], texts)."""
    images = _check_images(images)
    if not templates:
        raise ValueError("need at least one template")
    dev = _device(model, device)
    text = clip_text_embeds(model, processor, templates, device=dev)

    def run(s):
        img = model.get_image_features(pixel_values=_pixels(processor, images[s], model).to(dev)).pooler_output
        return torch.nn.functional.normalize(img.float(), dim=-1) @ text.T

    sims = _batched(len(images), batch_size, run, len(templates))
    idx = sims.argmax(axis=1).astype(np.int64)
    return idx, [templates[i] for i in idx]


@torch.inference_mode()
def roberta_embed(model, tokenizer, texts: Sequence[str], *, batch_size: int = 32, max_length: int = 512,
                  device=None) -> np.ndarray:
    """Sentence embedding [N, hidden]: mean of the last hidden state over the non-padding tokens.

    The mean includes <s> and </s>; texts longer than `max_length` tokens (capped by the model's position
    table) are truncated. Padding is masked out, so a text embeds the same alone or in a padded batch.
    """
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be strings")
    dev = _device(model, device)
    # RoBERTa's position ids start after the padding index: the table holds max_position_embeddings - pad - 1.
    limit = min(max_length, model.config.max_position_embeddings - model.config.pad_token_id - 1)

    def run(s):
        tok = tokenizer(texts[s], padding=True, truncation=True, max_length=limit, return_tensors="pt").to(dev)
        out = model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        hidden = out.last_hidden_state.float()  # sum in float32 even when the model runs in bfloat16
        mask = tok["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)

    return _batched(len(texts), batch_size, run, model.config.hidden_size)
