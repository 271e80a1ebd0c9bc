"""ViPER: a Perceiver over the per-frame feature tokens of a clip, with a one-query classification head.

Numerically the Hugging Face ``PerceiverModel`` with no input preprocessor and a
``PerceiverClassificationDecoder`` (one trainable query, 1-head cross-attention, query residual), which
is how the ViPER paper builds it:

    z  = latents                                   [N, d_latents], shared by every clip
    z  = CrossLayer(z, LayerNorm(inputs), mask)    latents attend to the T tokens (masked tokens hidden)
    z  = SelfLayer_i(z)  for blocks x layers       the blocks reuse the same layers (shared weights)
    y  = Linear(CrossLayer(query, z))              [num_outputs], raw (no sigmoid)

    Layer(x, kv) = h + MLP(LayerNorm(h)),  h = Dense(Attention(LayerNorm(x), LayerNorm(kv))) + x

LayerNorm eps is 1e-5 (torch default; HF ignores ``layer_norm_eps``), GELU is the exact erf form, and
dropout acts on attention probabilities only (``model.train()`` / ``model.eval()``, rng stream
"dropout"). Parameters follow HF's initialisation (normal, std ``initializer_range``; zero biases).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from flax import nnx

from eri_jax.models.attention import attention_probs, dot_product_attention

if TYPE_CHECKING:  # type hints only: transformers is never imported at run time here
    import transformers

LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm default: what HF's Perceiver actually uses


@dataclasses.dataclass(frozen=True)
class ViperConfig:
    """Perceiver hyper-parameters; the defaults are ViPER's (HF ``PerceiverConfig`` defaults, d_model 2080)."""

    d_model: int = 2080
    num_latents: int = 256
    d_latents: int = 1280
    num_blocks: int = 1
    num_self_attends_per_block: int = 26
    num_self_attention_heads: int = 8
    num_cross_attention_heads: int = 8
    qk_channels: int | None = None
    v_channels: int | None = None
    cross_attention_shape_for_attention: str = "kv"
    self_attention_widening_factor: int = 1
    cross_attention_widening_factor: int = 1
    attention_probs_dropout_prob: float = 0.1
    use_query_residual: bool = True
    num_outputs: int = 7
    initializer_range: float = 0.02

    def __post_init__(self):
        if self.cross_attention_shape_for_attention not in ("q", "kv"):
            raise ValueError(
                "cross_attention_shape_for_attention must be 'q' or 'kv', got "
                f"{self.cross_attention_shape_for_attention!r}"
            )
        for name, heads in (
            ("num_self_attention_heads", self.num_self_attention_heads),
            ("num_cross_attention_heads", self.num_cross_attention_heads),
        ):
            if self.d_latents % heads:
                raise ValueError(f"d_latents ({self.d_latents}) must be divisible by {name} ({heads})")
        cross_qk, cross_v = self.cross_channels()
        self_qk, self_v = self.self_channels()
        for label, channels, heads in (
            ("cross-attention q/k", cross_qk, self.num_cross_attention_heads),
            ("cross-attention v", cross_v, self.num_cross_attention_heads),
            ("self-attention q/k", self_qk, self.num_self_attention_heads),
            ("self-attention v", self_v, self.num_self_attention_heads),
        ):
            if channels % heads:
                raise ValueError(f"{label} width {channels} must be divisible by the {heads} heads")
        if self_v != self.d_latents:
            # HF adds the self-attention output (v width) to the latents: it only runs when they agree.
            raise ValueError(
                f"self-attention value width ({self_v}, from v_channels/qk_channels) must equal "
                f"d_latents ({self.d_latents}) for the residual connection"
            )

    def cross_channels(self) -> tuple[int, int]:
        """(q/k width, v width) of the encoder's cross-attention, resolved as HF does."""
        qk = self.qk_channels
        if qk is None:
            qk = self.d_model if self.cross_attention_shape_for_attention == "kv" else self.d_latents
        return qk, self.v_channels if self.v_channels is not None else qk

    def self_channels(self) -> tuple[int, int]:
        """(q/k width, v width) of the latent self-attention layers, resolved as HF does."""
        qk = self.qk_channels if self.qk_channels is not None else self.d_latents
        return qk, self.v_channels if self.v_channels is not None else qk

    @classmethod
    def from_hf(cls, hf_config: Any, num_outputs: int | None = None) -> ViperConfig:
        """From a ``transformers.PerceiverConfig``; ``num_outputs`` defaults to its ``num_labels``."""
        if getattr(hf_config, "hidden_act", "gelu") != "gelu":
            raise ValueError(f"only hidden_act='gelu' is supported, the config has {hf_config.hidden_act!r}")
        return cls(
            d_model=hf_config.d_model,
            num_latents=hf_config.num_latents,
            d_latents=hf_config.d_latents,
            num_blocks=hf_config.num_blocks,
            num_self_attends_per_block=hf_config.num_self_attends_per_block,
            num_self_attention_heads=hf_config.num_self_attention_heads,
            num_cross_attention_heads=hf_config.num_cross_attention_heads,
            qk_channels=hf_config.qk_channels,
            v_channels=hf_config.v_channels,
            cross_attention_shape_for_attention=hf_config.cross_attention_shape_for_attention,
            self_attention_widening_factor=hf_config.self_attention_widening_factor,
            cross_attention_widening_factor=hf_config.cross_attention_widening_factor,
            attention_probs_dropout_prob=float(hf_config.attention_probs_dropout_prob),
            use_query_residual=bool(hf_config.use_query_residual),
            num_outputs=int(num_outputs if num_outputs is not None else hf_config.num_labels),
            initializer_range=float(hf_config.initializer_range),
        )

    def to_hf(self) -> transformers.PerceiverConfig:
        """The equivalent ``transformers.PerceiverConfig`` (``num_labels`` = ``num_outputs``)."""
        import transformers  # lazy: the JAX side does not need torch/transformers to run

        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        num_outputs = fields.pop("num_outputs")
        return transformers.PerceiverConfig(**fields, num_labels=num_outputs, hidden_act="gelu")


class _Attention(nnx.Module):
    """HF ``PerceiverAttention``: layernorms, q/k/v projections, attention, output dense, query residual."""

    def __init__(self, *, q_dim, kv_dim, qk, v, out, heads, cross, query_residual, dropout, init, rngs, dt):
        linear = dict(kernel_init=init, rngs=rngs, **dt)
        self.num_heads = heads
        self.layernorm1 = _layer_norm(q_dim, rngs, dt)
        self.layernorm2 = _layer_norm(kv_dim, rngs, dt) if cross else None
        self.query = nnx.Linear(q_dim, qk, **linear)
        self.key = nnx.Linear(kv_dim, qk, **linear)
        self.value = nnx.Linear(kv_dim, v, **linear)
        self.output = nnx.Linear(v, out, **linear)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.use_query_residual = query_residual

    def __call__(self, x: jax.Array, kv: jax.Array | None = None, mask: jax.Array | None = None,
                 kv_normalized: bool = False) -> jax.Array:
        h, kv = self._normed(x, kv, kv_normalized)
        q, k, v = (self._heads(_rows(p, t)) for p, t in ((self.query, h), (self.key, kv), (self.value, kv)))
        training = not self.dropout.deterministic and self.dropout.rate > 0
        ctx = dot_product_attention(q, k, v, mask, dropout=self.dropout if training else None)
        out = _rows(self.output, ctx.reshape(*ctx.shape[:-2], -1))
        return out + x if self.use_query_residual else out

    def probs(self, x: jax.Array, kv: jax.Array | None = None, mask: jax.Array | None = None,
              kv_normalized: bool = False) -> jax.Array:
        """The attention probabilities [B, heads, queries, keys] as in eval mode (before any dropout)."""
        h, kv = self._normed(x, kv, kv_normalized)
        return attention_probs(self._heads(_rows(self.query, h)), self._heads(_rows(self.key, kv)), mask)

    def _normed(self, x: jax.Array, kv: jax.Array | None, kv_normalized: bool) -> tuple[jax.Array, jax.Array]:
        h = self.layernorm1(x)
        if kv is None:
            return h, h
        if kv_normalized:  # kv is already (kv - mean) / sqrt(var + eps): apply only the affine part
            return h, kv * self.layernorm2.scale[...] + self.layernorm2.bias[...]
        return h, self.layernorm2(kv)

    def _heads(self, t: jax.Array) -> jax.Array:
        return t.reshape(*t.shape[:-1], self.num_heads, t.shape[-1] // self.num_heads)


class _MLP(nnx.Module):
    def __init__(self, dim: int, widening: int, *, init, rngs, dt):
        self.dense1 = nnx.Linear(dim, widening * dim, kernel_init=init, rngs=rngs, **dt)
        self.dense2 = nnx.Linear(widening * dim, dim, kernel_init=init, rngs=rngs, **dt)

    def __call__(self, x: jax.Array) -> jax.Array:
        return _rows(self.dense2, jax.nn.gelu(_rows(self.dense1, x), approximate=False))


class PerceiverLayer(nnx.Module):
    """HF ``PerceiverLayer``: attention (with its own residual) then a pre-LayerNorm MLP with residual."""

    def __init__(self, *, q_dim, kv_dim, qk, v, heads, widening, cross, query_residual, dropout, init, rngs, dt):
        self.attention = _Attention(
            q_dim=q_dim, kv_dim=kv_dim, qk=qk, v=v, out=q_dim if cross else v, heads=heads, cross=cross,
            query_residual=query_residual, dropout=dropout, init=init, rngs=rngs, dt=dt,
        )  # fmt: skip
        self.layernorm = _layer_norm(q_dim, rngs, dt)
        self.mlp = _MLP(q_dim, widening, init=init, rngs=rngs, dt=dt)

    def __call__(self, x: jax.Array, kv: jax.Array | None = None, mask: jax.Array | None = None,
                 kv_normalized: bool = False) -> jax.Array:
        h = self.attention(x, kv, mask, kv_normalized)
        return h + self.mlp(self.layernorm(h))


class Viper(nnx.Module):
    """The ViPER Perceiver: ``model(inputs [B,T,d_model], mask [B,T] bool | None) -> [B, num_outputs]`` raw."""

    def __init__(self, config: ViperConfig, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        self.config = config
        c = config
        dt = dict(dtype=dtype, param_dtype=param_dtype)
        init = nnx.initializers.normal(c.initializer_range)
        self.dtype = dtype
        self.latents = nnx.Param(init(rngs.params(), (c.num_latents, c.d_latents), param_dtype))
        cross_qk, cross_v = c.cross_channels()
        self_qk, self_v = c.self_channels()
        common = dict(dropout=c.attention_probs_dropout_prob, init=init, rngs=rngs, dt=dt)
        self.cross_attention = PerceiverLayer(
            q_dim=c.d_latents, kv_dim=c.d_model, qk=cross_qk, v=cross_v, heads=c.num_cross_attention_heads,
            widening=c.cross_attention_widening_factor, cross=True, query_residual=c.use_query_residual, **common,
        )  # fmt: skip
        self.self_attends = nnx.List(
            [
                PerceiverLayer(
                    q_dim=c.d_latents, kv_dim=c.d_latents, qk=self_qk, v=self_v,
                    heads=c.num_self_attention_heads, widening=c.self_attention_widening_factor,
                    cross=False, query_residual=True, **common,
                )  # fmt: skip
                for _ in range(c.num_self_attends_per_block)
            ]
        )
        # Decoder: HF PerceiverClassificationDecoder(num_channels=d_latents, 1 head, widening 1,
        # query residual); its q/k/v widths resolve to d_latents whatever cross_attention_shape says.
        self.decoder_query = nnx.Param(init(rngs.params(), (1, c.d_latents), param_dtype))
        self.decoder_cross_attention = PerceiverLayer(
            q_dim=c.d_latents, kv_dim=c.d_latents, qk=c.d_latents, v=c.d_latents, heads=1, widening=1,
            cross=True, query_residual=True, **common,
        )  # fmt: skip
        self.final_layer = nnx.Linear(c.d_latents, c.num_outputs, kernel_init=init, rngs=rngs, **dt)

    def __call__(self, inputs: jax.Array, mask: jax.Array | None = None, *,
                 inputs_normalized: bool = False) -> jax.Array:
        """inputs_normalized: the tokens are already standardised per token (the cross-attention LayerNorm
        without its scale and bias, `normalize_tokens`); explanations differentiate in that space, where the
        model is not invariant to scaling a token as it is on raw tokens."""
        c = self.config
        z = self._latents(inputs, mask)
        batch = inputs.shape[0]
        z = self.cross_attention(z, inputs, mask, inputs_normalized)
        for _ in range(c.num_blocks):  # blocks share the same self-attention layers (as in HF)
            for layer in self.self_attends:
                z = layer(z)
        query = jnp.broadcast_to(self.decoder_query[...].astype(self.dtype), (batch, *self.decoder_query.shape))
        out = _rows(self.final_layer, self.decoder_cross_attention(query, z))
        return out[:, 0, :].astype(jnp.float32)

    def cross_attention_weights(self, inputs: jax.Array, mask: jax.Array | None = None, *,
                                inputs_normalized: bool = False) -> jax.Array:
        """The latents' attention over the tokens, float32 [B, heads, num_latents, T]: what HF returns as
        ``cross_attentions[0]`` with ``output_attentions=True``. Each latent's weights sum to 1 over the
        tokens; a masked token gets 0. Eval-mode weights (no dropout); the forward pass is not run past
        the softmax, so this costs a fraction of ``__call__``."""
        z = self._latents(inputs, mask)
        return self.cross_attention.attention.probs(z, inputs, mask, inputs_normalized)

    def _latents(self, inputs: jax.Array, mask: jax.Array | None) -> jax.Array:
        """The latent array broadcast over the batch, after checking the shapes of inputs and mask."""
        c = self.config
        if inputs.ndim != 3 or inputs.shape[-1] != c.d_model:
            raise ValueError(f"Viper expects inputs [batch, tokens, {c.d_model}], got shape {inputs.shape}")
        if mask is not None and mask.shape != inputs.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match inputs [batch, tokens] {inputs.shape[:2]}")
        return jnp.broadcast_to(self.latents[...].astype(self.dtype), (inputs.shape[0], *self.latents.shape))


def normalize_tokens(inputs: jax.Array) -> jax.Array:
    """Each token standardised as the cross-attention LayerNorm does before its scale and bias."""
    x = inputs.astype(jnp.float32)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + LAYER_NORM_EPS)


def _rows(linear: nnx.Linear, x: jax.Array) -> jax.Array:
    """``linear(x)`` for ``x [..., in]``, computed as one ``[rows, in]`` matmul (the reshapes are free).

    Why: on ``[B, T, in]`` the kernel gradient contracts two axes (B and T), for which XLA:CPU writes a
    transposed copy of the output gradient; that copy fused the elementwise backward chain of the
    residual stream (LayerNorm and residual adds of every later layer) and so recomputed it once per
    layer. On flat rows the gradient matmul reads the gradient as it is.
    """
    return linear(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


def _layer_norm(dim: int, rngs: nnx.Rngs, dt: dict) -> nnx.LayerNorm:
    # use_fast_variance=False: E[(x-mean)^2] like torch, not E[x^2]-mean^2 (parity at 1e-5)
    return nnx.LayerNorm(dim, epsilon=LAYER_NORM_EPS, use_fast_variance=False, rngs=rngs, **dt)


def count_params(model: nnx.Module) -> int:
    """Number of trainable parameters; works on an abstract model from ``nnx.eval_shape`` too."""
    leaves = jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))
    return sum(math.prod(leaf.shape) for leaf in leaves)
