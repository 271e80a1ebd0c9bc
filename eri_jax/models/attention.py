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
    if dropout is None and query.shape[-1] == value.shape[-1]:
        bcast = None if mask is None else mask.astype(bool)[:, None, None, :]  # [B,1,1,S]
        return jax.nn.dot_product_attention(query, key, value, mask=bcast)
    probs = attention_probs(query, key, mask)
    if dropout is not None:
        probs = dropout(probs)
    return jnp.swapaxes(jnp.einsum("bnts,bnsh->bnth", probs.astype(value.dtype), jnp.swapaxes(value, 1, 2)), 1, 2)


def attention_probs(query: jax.Array, key: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """The attention probabilities ``softmax(q kᵀ / sqrt(d_qk) masked)`` as float32 ``[B,N,T,S]``.

    ``query [B,T,N,Hqk]``, ``key [B,S,N,Hqk]``, ``mask [B,S]`` (True = attend): a masked key gets exactly
    zero probability unless every key of the row is masked (then all are equal).
    """
    # Heads first, once: the batched matmuls take [B,N,T,H] operands. Contracting "btnh,bsnh->bnts"
    # directly made XLA:CPU copy k and the output gradient into two layouts each.
    query, key = (jnp.swapaxes(t, 1, 2) for t in (query, key))
    logits = jnp.einsum("bnth,bnsh->bnts", query, key, preferred_element_type=jnp.float32)
    logits = logits * (1.0 / jnp.sqrt(jnp.float32(query.shape[-1])))
    if mask is not None:
        logits = jnp.where(mask.astype(bool)[:, None, None, :], logits, jnp.finfo(jnp.float32).min)
    return jax.nn.softmax(logits, axis=-1)

