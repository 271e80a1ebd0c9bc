"""PyTorch's default ``nn.Linear`` / ``nn.LSTM`` initialisation, for models that mirror PyTorch baselines.

``nn.Linear``: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)).
``nn.LSTM``: every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def uniform_init(bound: float):
    """A Flax initializer drawing U(-bound, bound)."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_linear_inits(fan_in: int) -> dict:
    """``kernel_init`` and ``bias_init`` for ``nnx.Linear`` equal in law to torch's ``nn.Linear`` defaults."""
    init = uniform_init(1.0 / math.sqrt(fan_in))
    return dict(kernel_init=init, bias_init=init)
