"""Multi-head scaled dot-product attention with an optional key mask and dropout on the probabilities.

    out = softmax(q kᵀ / sqrt(d_qk) masked) v        (per head; softmax always in float32)

A masked key gets the logit ``finfo(float32).min`` (as Hugging Face's eager Perceiver does), so a query
whose keys are *all* masked attends uniformly to every key instead of producing NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def dot_product_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    mask: jax.Array | None = None,
    *,
    dropout: Callable[[jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """Attention over ``query [B,T,N,Hqk]``, ``key [B,S,N,Hqk]``, ``value [B,S,N,Hv]`` → ``[B,T,N,Hv]``.

    ``mask [B,S]`` (True = attend) hides keys for every query and head. ``dropout``, when given, is
    applied to the attention probabilities (training); then the explicit path below is used because
    ``jax.nn.dot_product_attention`` has no dropout. Otherwise, when the q/k and v head widths agree,
    ``jax.nn.dot_product_attention`` computes the same thing (XLA, or cuDNN where it applies).
    """
    if mask is not None:
        mask = mask.astype(bool)[:, None, None, :]  # [B,1,1,S]: broadcast over heads and queries
    if dropout is None and query.shape[-1] == value.shape[-1]:
        return jax.nn.dot_product_attention(query, key, value, mask=mask)
    # Heads first, once: the batched matmuls take [B,N,T,H] operands. Contracting "btnh,bsnh->bnts"
    # directly made XLA:CPU copy k and the output gradient into two layouts each.
    query, key, value = (jnp.swapaxes(t, 1, 2) for t in (query, key, value))
    logits = jnp.einsum("bnth,bnsh->bnts", query, key, preferred_element_type=jnp.float32)
    logits = logits * (1.0 / jnp.sqrt(jnp.float32(query.shape[-1])))
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    if dropout is not None:
        probs = dropout(probs)
    return jnp.swapaxes(jnp.einsum("bnts,bnsh->bnth", probs.astype(value.dtype), value), 1, 2)

