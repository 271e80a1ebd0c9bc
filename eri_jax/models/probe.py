"""The probing head on pooled MLLM hidden states: ``sigmoid(W2 · act(W1 x + b1) + b2)``.

The activation (paper Table 4) is chosen by name or by index into ``ACTIVATION_NAMES``. A name or a
Python int fixes it when the program is traced; a JAX integer array (which may be traced, e.g. inside a
``vmap`` over a sweep) is stored in the model and dispatched with ``lax.switch``, so probes with
different activations can share one compiled program.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from eri_jax.models.torch_init import torch_linear_inits

# torch defaults: LeakyReLU slope 0.01, ELU alpha 1, GELU exact (erf).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "linear": lambda x: x,
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, negative_slope=0.01),
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "elu": lambda x: jax.nn.elu(x, alpha=1.0),
}
ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)


def activation_index(activation: str | int) -> int:
    """Index of an activation in ``ACTIVATION_NAMES`` (a name or an index, checked)."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATION_NAMES)}")
        return ACTIVATION_NAMES.index(activation)
    index = int(activation)
    if not 0 <= index < len(ACTIVATION_NAMES):
        raise ValueError(f"activation index {index} out of range 0..{len(ACTIVATION_NAMES) - 1}")
    return index


def apply_activation(index: int | jax.Array, x: jax.Array) -> jax.Array:
    """``ACTIVATION_NAMES[index](x)``; a traced ``index`` selects the branch at run time (``lax.switch``)."""
    if isinstance(index, (int, str)):
        return ACTIVATIONS[ACTIVATION_NAMES[activation_index(index)]](x)
    return jax.lax.switch(index, [ACTIVATIONS[name] for name in ACTIVATION_NAMES], x)


class ActivationChoice(nnx.Variable):
    """A run-time activation index (not trained): lets a vmapped sweep give each probe its own activation."""


class Probe(nnx.Module):
    """Linear(D→H) → activation → Linear(H→E) → sigmoid: ``model(x [B,D], mask=None) -> [B,E]`` in [0, 1]."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        num_outputs: int,
        activation: str | int | jax.Array = "relu",
        *,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
    ):
        dt = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.in_dim = in_dim
        self.linear1 = nnx.Linear(in_dim, hidden, **torch_linear_inits(in_dim), **dt)
        self.linear2 = nnx.Linear(hidden, num_outputs, **torch_linear_inits(hidden), **dt)
        if isinstance(activation, (str, int)):
            self.activation: int | ActivationChoice = activation_index(activation)
        else:
            self.activation = ActivationChoice(jnp.asarray(activation, jnp.int32))

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """``mask`` is accepted for the shared model signature; a pooled vector has no tokens to mask."""
        if x.ndim != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"Probe expects inputs [batch, {self.in_dim}], got shape {x.shape}")
        index = self.activation if isinstance(self.activation, int) else self.activation[...]
        h = apply_activation(index, self.linear1(x))
        return jax.nn.sigmoid(self.linear2(h).astype(jnp.float32))
