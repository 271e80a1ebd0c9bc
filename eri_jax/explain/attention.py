"""The latents' cross-attention over a clip's tokens (frames), as ViPER itself weighs them.

Attention is not attribution: a weight says how much of a frame's value vector the latents mix in, not
how much the prediction would change without the frame. The values pass through the value projection,
the self-attention stack and the decoder before they reach an output, and the weights are the same for
every emotion; integrated gradients (attribution.py) measure the effect on each output.
"""
from __future__ import annotations

import numpy as np
from flax import nnx


@nnx.jit
def _mean_weights(model, x, mask):
    return model.cross_attention_weights(x, mask).mean(axis=(1, 2))  # [B, heads, latents, T] -> [B, T]


def frame_attention(model, x: np.ndarray, mask: np.ndarray | None, *, batch_size: int) -> np.ndarray:
    """float [N, T]: ViPER's cross-attention weights averaged over its heads and latents, `batch_size` clips at a
    time; each row sums to 1 over the clip's unmasked frames, a masked frame gets 0."""
    parts = []
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        parts.append(np.asarray(_mean_weights(model, x[rows], None if mask is None else mask[rows])))
    return np.concatenate(parts)
