"""The MuSe-2022 LSTM baseline.

    Linear (no bias) → stacked LSTM → last hidden state → FC + ReLU + dropout → FC → sigmoid

The LSTM cell is torch's ``nn.LSTM`` (gate order i, f, g, o; separate input and hidden biases), so torch
weights copy over one to one:

    i, f, g, o = split(W_ih x_t + b_ih + W_hh h + b_hh)
    c' = σ(f) c + σ(i) tanh(g);   h' = σ(o) tanh(c')

Masked time steps are skipped: state is carried through unchanged, so with padding at the end the result
is the last *valid* step's hidden state, like torch's packed sequences; a gap inside the clip (a missing
frame) is skipped rather than read as zeros.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from eri_jax.models.torch_init import torch_linear_inits, uniform_init


class LSTMLayer(nnx.Module):
    """One unidirectional layer; torch's parameters: ``w_ih [in,4H]``, ``w_hh [H,4H]``, ``b_ih``, ``b_hh``."""

    def __init__(self, in_dim: int, hidden: int, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        init = uniform_init(1.0 / math.sqrt(hidden))
        self.hidden = hidden
        self.dtype = dtype
        self.w_ih = nnx.Param(init(rngs.params(), (in_dim, 4 * hidden), param_dtype))
        self.w_hh = nnx.Param(init(rngs.params(), (hidden, 4 * hidden), param_dtype))
        self.b_ih = nnx.Param(init(rngs.params(), (4 * hidden,), param_dtype))
        self.b_hh = nnx.Param(init(rngs.params(), (4 * hidden,), param_dtype))

    def __call__(self, x: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x [B,T,in]``, ``mask [B,T]`` bool → (outputs ``[B,T,H]``, final hidden ``[B,H]``), in float32."""
        dt = self.dtype
        # The input projection of every step at once (one matmul); only h @ W_hh stays in the loop.
        w_ih = self.w_ih[...].astype(dt)
        gx = jnp.einsum("btd,dg->btg", x.astype(dt), w_ih, preferred_element_type=jnp.float32)
        gx = gx + (self.b_ih[...] + self.b_hh[...]).astype(jnp.float32)
        w_hh = self.w_hh[...].astype(dt)

        def step(carry, inputs):
            h, c = carry
            g_t, m_t = inputs
            g = g_t + jnp.dot(h.astype(dt), w_hh, preferred_element_type=jnp.float32)
            i, f, gg, o = jnp.split(g, 4, axis=-1)
            c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
            h_new = jax.nn.sigmoid(o) * jnp.tanh(c_new)
            h = jnp.where(m_t, h_new, h)
            c = jnp.where(m_t, c_new, c)
            return (h, c), h

        batch = x.shape[0]
        zeros = jnp.zeros((batch, self.hidden), jnp.float32)
        (h, _), hs = jax.lax.scan(step, (zeros, zeros), (gx.swapaxes(0, 1), mask.T[..., None]))
        return hs.swapaxes(0, 1), h


class MuseLSTM(nnx.Module):
    """``model(x [B,T,D], mask [B,T] | None) -> [B,E]`` in [0, 1]. Inputs are expected standardised."""

    def __init__(
        self,
        in_dim: int,
        num_outputs: int,
        hidden: int = 64,
        num_layers: int = 3,
        dropout: float = 0.5,
        *,
        fc_hidden: int = 64,
        rnn_dropout: float = 0.0,
        rngs: nnx.Rngs,
        dtype=jnp.float32,
        param_dtype=jnp.float32,
    ):
        """``dropout`` follows the first FC layer; ``rnn_dropout`` acts between LSTM layers (torch's
        ``nn.LSTM(dropout=)``, 0 in the baseline). ``fc_hidden`` is the FC width (MuSe's ``d_fc_out``)."""
        dt = dict(dtype=dtype, param_dtype=param_dtype)
        self.in_dim = in_dim
        lin = torch_linear_inits(in_dim)
        self.inp = nnx.Linear(in_dim, hidden, use_bias=False, kernel_init=lin["kernel_init"], rngs=rngs, **dt)
        self.layers = nnx.List([LSTMLayer(hidden, hidden, rngs=rngs, **dt) for _ in range(num_layers)])
        self.rnn_dropout = nnx.Dropout(rnn_dropout, rngs=rngs)
        self.fc1 = nnx.Linear(hidden, fc_hidden, **torch_linear_inits(hidden), rngs=rngs, **dt)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        # MuSe's OutLayer sets the last bias to a constant 0.
        self.fc2 = nnx.Linear(
            fc_hidden, num_outputs, kernel_init=torch_linear_inits(fc_hidden)["kernel_init"], rngs=rngs, **dt
        )

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        if x.ndim != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"MuseLSTM expects inputs [batch, time, {self.in_dim}], got shape {x.shape}")
        if mask is None:
            mask = jnp.ones(x.shape[:2], bool)
        elif mask.shape != x.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match inputs [batch, time] {x.shape[:2]}")
        mask = mask.astype(bool)
        h_seq = self.inp(x)
        last = None
        for i, layer in enumerate(self.layers):
            if i:
                h_seq = self.rnn_dropout(h_seq)
            h_seq, last = layer(h_seq, mask)
        h = self.dropout(jax.nn.relu(self.fc1(last)))
        return jax.nn.sigmoid(self.fc2(h).astype(jnp.float32))
