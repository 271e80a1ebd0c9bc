"""Integrated gradients of a model's per-emotion outputs, summed over the columns of each input block.

IG_e(x) = x * mean_k grad f_e(a_k x), a_k = (k + 1/2) / steps (midpoint rule on the straight path from the
zero baseline). Completeness: sum over every input entry of IG_e(x) = f_e(x) - f_e(0), up to the quadrature
error, which `completeness_error` reports so a reader can see how far to trust the numbers.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from eri_jax.inputs.token_layout import block_padding


@dataclasses.dataclass(frozen=True)
class Block:
    """Columns [start, stop) of the token that one feature (its zero padding included) fills."""

    name: str
    start: int
    stop: int


def feature_blocks(keys: Sequence[str], dims: dict[str, int], block_widths: dict[str, int] | None = None,
                   modalities: str | None = None) -> list[Block]:
    """The input's blocks in assembly order (inputs/assembly.py); named `F:fau` when the run used letters."""
    pads = block_padding(keys, dims, block_widths)
    letters = [c for c in "VATF" if modalities and c in modalities.upper()]
    names = [f"{c}:{k}" for c, k in zip(letters, keys)] if len(letters) == len(keys) else list(keys)
    blocks, start = [], 0
    for name, k in zip(names, keys):
        stop = start + int(dims[k]) + pads.get(k, 0)
        blocks.append(Block(name, start, stop))
        start = stop
    return blocks


def make_block_ig(fn: Callable[[jax.Array, jax.Array | None], jax.Array], blocks: Sequence[Block],
                  steps: int) -> Callable:
    """A jitted `(x, mask) -> (attr [B,E,T,K], f(x) [B,E], f(0) [B,E])`: IG summed over each block's columns.

    fn: (x [B,T,D] or [B,D], mask [B,T] | None) -> [B,E]; rows must not interact (eval mode). A vector
    input [B,D] is reported as one frame (T = 1).
    """
    if steps < 1:
        raise ValueError(f"integrated gradients need at least 1 step, got {steps}")
    alphas = (jnp.arange(steps, dtype=jnp.float32) + 0.5) / steps

    def run(x, mask):
        def summed(xs):  # rows are independent, so d(sum over rows of f_e)/dx is every row's own gradient
            return fn(xs, mask).sum(axis=0)

        jac = jax.jacrev(summed)

        def body(acc, a):
            return acc + jac(a * x), None

        total, _ = jax.lax.scan(body, jnp.zeros((fn(x, mask).shape[-1], *x.shape), jnp.float32), alphas)
        attr = jnp.moveaxis(total / steps * x[None], 0, 1)  # [B,E,...,D]
        if attr.ndim == 3:
            attr = attr[:, :, None, :]
        per_block = jnp.stack([attr[..., b.start:b.stop].sum(-1) for b in blocks], axis=-1)
        return per_block, fn(x, mask), fn(jnp.zeros_like(x), mask)

    return jax.jit(run)


def completeness_error(attr: np.ndarray, fx: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """|sum of the attributions - (f(x) - f(0))| per clip and emotion [B,E]."""
    return np.abs(np.asarray(attr).sum(axis=(2, 3)) - (np.asarray(fx) - np.asarray(f0)))
