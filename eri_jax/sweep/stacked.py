"""Probe runs that share a seed, trained as one wide probe: the stacked layout and its forward pass.

Runs with the same seed see the same batches (the shuffle key derives from the seed), so their first
layers can share one matrix product. With M runs' kernels stacked *inside* one array, the M forwards
`x [B,D] @ W_m [D,H]` become one plain GEMM with N = M*H, and the M weight gradients another. (`jax.vmap`
over the runs instead gives a batched dot over `[M, D, H]`; with the batch broadcast, autodiff's gradient
comes out `[M, H, D]` and XLA:CPU transposes it every step.)

Layout rule (`to_stacked`), for every leaf of a run's `(model, optimizer)` state: a matrix `[..., P, Q]` is
stored transposed, `[..., Q, M, P]`; a vector `[Q]` becomes `[M, Q]`; a scalar `[M, 1]`; a group axis G of
such blocks leads. Matrices transposed: XLA:CPU runs `W^T [H, D] . x^T`, the contraction over the
contiguous axis, faster than `x . W [D, H]` (about 15 %, `benchmarks/sweep.py --kernels`).
The run axis second to last everywhere: the optimizer's elementwise arithmetic broadcasts per run as it
is (AdamW moments `[H, M, D]` against a learning rate or step count `[M, 1]`), so optax runs unchanged and
every run follows exactly the arithmetic of training alone, up to the summation order inside the GEMMs.

Only the forward pass is model-specific (`probe_forward`, mirroring `eri_jax.models.probe.Probe`);
`eri_jax.sweep.engine` converts the carry to and from this layout once per epoch.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from eri_jax.models.probe import ACTIVATION_NAMES, ACTIVATIONS
from eri_jax.training.step import masked_mse

Groups = tuple[tuple[int, ...], ...]  # run indices per group, every group the same size


@dataclasses.dataclass(frozen=True)
class Stacking:
    """How a sweep's runs are stacked (static, part of the compiled program).

    groups: run indices (carry order) per seed group; slot m of every group is run `groups[g][m]`.
    activations: the probe's activation index per slot when it is the same in every group (then each
    slot applies only its own activation), else None (every branch computed, each slot selecting its own).
    """

    groups: Groups
    activations: tuple[int, ...] | None = None


def seed_groups(seeds: Sequence[int]) -> Groups | None:
    """Runs grouped by seed (first-appearance order), or None unless every seed has the same >= 2 runs."""
    by_seed: dict[int, list[int]] = {}
    for i, s in enumerate(seeds):
        by_seed.setdefault(int(s), []).append(i)
    sizes = {len(g) for g in by_seed.values()}
    if len(sizes) != 1 or sizes.pop() < 2:
        return None
    return tuple(tuple(g) for g in by_seed.values())


def plan(seeds: Sequence[int], activations: Sequence[int]) -> Stacking | None:
    """The `Stacking` of runs with these seeds and activation indices, or None (no seed groups)."""
    groups = seed_groups(seeds)
    if groups is None:
        return None
    slots = {tuple(int(activations[r]) for r in g) for g in groups}
    return Stacking(groups, slots.pop() if len(slots) == 1 else None)


def to_stacked(tree: Any, groups: Groups) -> Any:
    """Leaves [R, *s] (runs in carry order) -> the stacked layout (module docstring) with a group axis G first."""
    order = np.asarray(groups).reshape(-1)
    g, m = len(groups), len(groups[0])

    def one(a):
        if not np.array_equal(order, np.arange(order.size)):
            a = jnp.take(a, order, axis=0)
        a = a.reshape((g, m) + a.shape[1:])  # [G, M, *s]
        if a.ndim == 2:
            return a[..., None]  # [G, M, 1]
        if a.ndim == 3:
            return a  # [G, M, Q]
        return jnp.moveaxis(jnp.swapaxes(a, -1, -2), 1, -2)  # [G, ..., Q, M, P]

    return jax.tree.map(one, tree)


def from_stacked(tree: Any, like: Any, groups: Groups) -> Any:
    """Inverse of `to_stacked`: back to [R, ...] in carry order, shaped as `like`'s leaves."""
    order = np.asarray(groups).reshape(-1)

    def one(a, ref):
        if ref.ndim == 1:
            a = a[..., 0]
        elif ref.ndim >= 3:
            a = jnp.swapaxes(jnp.moveaxis(a, -2, 1), -1, -2)
        a = a.reshape(ref.shape)
        return a if np.array_equal(order, np.arange(order.size)) else jnp.take(a, np.argsort(order), axis=0)

    return jax.tree.map(one, tree, like)


def per_run(values: jax.Array, groups: Groups) -> jax.Array:
    """[G, M, ...] values of the stacked runs -> [R, ...] in carry order."""
    order = np.asarray(groups).reshape(-1)
    flat = values.reshape((order.size,) + values.shape[2:])
    return flat if np.array_equal(order, np.arange(order.size)) else jnp.take(flat, np.argsort(order), axis=0)


# ----------------------------------------------------------------------------------- forward pass


@jax.custom_vjp
def wide_dot(kernel_t: jax.Array, x: jax.Array) -> jax.Array:
    """`kernel_t [H,M,D] . x [B,D] -> [H,M,B]`: M runs' first layers as one GEMM over the contiguous D axis."""
    return jax.lax.dot_general(kernel_t, x, (((2,), (1,)), ((), ())))


def _wide_dot_fwd(kernel_t, x):
    return wide_dot(kernel_t, x), (kernel_t, x)


def _wide_dot_bwd(res, ct):
    kernel_t, x = res
    # Written out to pin both products to plain GEMMs in the stored order (gradient [H,M,D] = ct . x).
    # dx is exact too; XLA drops it when, as in training, nothing uses it.
    dkernel = jax.lax.dot_general(ct, x, (((2,), (0,)), ((), ())))
    dx = jax.lax.dot_general(ct, kernel_t, (((0, 1), (0, 1)), ((), ())))
    return dkernel, dx


wide_dot.defvjp(_wide_dot_fwd, _wide_dot_bwd)


def _linear(layer: Any, x: jax.Array) -> jax.Array:
    """`nnx.Linear` on stacked variables: [B,D] -> [B,M,H] (first layer) or [B,M,H] -> [B,M,E] (run by run)."""
    kernel_t, bias = layer.kernel[...], layer.bias[...]  # kernel_t [H,M,D] or [E,M,H]; bias [M,H] or [M,E]
    x, kernel_t, bias = layer.promote_dtype((x, kernel_t, bias), dtype=layer.dtype)  # nnx.Linear's casts
    if x.ndim == 2:
        y = jnp.transpose(wide_dot(kernel_t, x), (2, 1, 0))  # [H,M,B] -> [B,M,H] (small)
    else:  # run m's activations [B,H] with run m's kernel
        y = jnp.moveaxis(jax.lax.dot_general(x, kernel_t, (((2,), (2,)), ((1,), (1,)))), 0, 1)  # [M,B,E] -> [B,M,E]
    return y + bias


def _activation(index: Any, h: jax.Array, slots: tuple[int, ...] | None) -> jax.Array:
    """Each run's activation on its slice of h [B,M,H].

    index: the model's (a static int, or [M,1] one per run); slots: the same per run, static (`Stacking`),
    used when given: each run of equal activations then computes only its own.
    """
    if isinstance(index, int):
        return ACTIVATIONS[ACTIVATION_NAMES[index]](h)
    if slots is not None:
        parts, start = [], 0
        for end in range(1, len(slots) + 1):
            if end == len(slots) or slots[end] != slots[start]:
                parts.append(ACTIVATIONS[ACTIVATION_NAMES[slots[start]]](h[:, start:end]))
                start = end
        return jnp.concatenate(parts, axis=1)
    which = jnp.broadcast_to(jnp.asarray(index, jnp.int32)[:, 0][None, :, None], h.shape)
    # Every branch is computed on [B,M,H] (small next to the GEMMs); each run keeps its own, and the
    # others get a zero cotangent, as under lax.switch when the run is trained alone.
    return jax.lax.select_n(which, *[ACTIVATIONS[name](h) for name in ACTIVATION_NAMES])


def probe_forward(model: Any, x: jax.Array, activations: tuple[int, ...] | None = None) -> jax.Array:
    """M stacked probes on one batch: x [B,D] -> float32 [B,M,E], run m computing `Probe` with its own weights.

    activations: each run's activation index, static (`Stacking.activations`), if known; it must agree
    with the model's own (the engine takes both from the same `init` argument).
    """
    if x.ndim != 2 or x.shape[-1] != model.in_dim:
        raise ValueError(f"Probe expects inputs [batch, {model.in_dim}], got shape {x.shape}")
    index = model.activation if isinstance(model.activation, int) else model.activation[...]
    h = _activation(index, _linear(model.linear1, x), activations)
    return jax.nn.sigmoid(_linear(model.linear2, h).astype(jnp.float32))


def stacked_loss(pred: jax.Array, labels: jax.Array, row_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sum over runs of each run's `masked_mse` (so run m's gradient is its own), and the per-run losses [M]."""
    losses = jax.vmap(masked_mse, in_axes=(1, None, None))(pred, labels, row_mask)
    return losses.sum(), losses
