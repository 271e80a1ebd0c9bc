"""The Flax ViPER Perceiver against Hugging Face's PerceiverModel with copied weights; the checkpoint loader."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eri_jax.models.attention import dot_product_attention
from eri_jax.models.viper import Viper, ViperConfig, count_params, normalize_tokens
from eri_jax.models.viper_import import hf_parameter_map, import_hf_perceiver, load_state_dict

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers.models.perceiver.modeling_perceiver import (  # noqa: E402
    PerceiverClassificationDecoder,
    PerceiverModel,
)

# Non-default configs covering every branch of HF's channel resolution.
CONFIGS = {
    "small": dict(d_model=12, num_latents=5, d_latents=16, num_self_attends_per_block=2,
                  num_self_attention_heads=2, num_cross_attention_heads=2),
    "blocks2_qk_widen": dict(d_model=10, num_latents=3, d_latents=24, num_blocks=2,
                             num_self_attends_per_block=2, num_self_attention_heads=4,
                             num_cross_attention_heads=3, qk_channels=12, v_channels=24,
                             self_attention_widening_factor=2, cross_attention_widening_factor=3),
    "shape_q_no_residual": dict(d_model=8, num_latents=4, d_latents=12, num_self_attends_per_block=1,
                                num_self_attention_heads=3, num_cross_attention_heads=2,
                                cross_attention_shape_for_attention="q", use_query_residual=False),
    "one_head_wide_kv": dict(d_model=40, num_latents=7, d_latents=8, num_self_attends_per_block=3,
                             num_self_attention_heads=1, num_cross_attention_heads=4),
}  # fmt: skip
# One jitted forward for the whole module: models with the same config and shapes reuse its compilation.
forward = nnx.jit(lambda model, x, mask=None: model(x, mask))
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 1, 0, 1, 1, 0]], bool)


def hf_model(config: transformers.PerceiverConfig, seed: int = 0) -> PerceiverModel:
    """ViPER's torch model, with weights larger than HF's 0.02 init so that every path shows in the output."""
    torch.manual_seed(seed)
    decoder = PerceiverClassificationDecoder(
        config,
        num_channels=config.d_latents,
        trainable_position_encoding_kwargs=dict(num_channels=config.d_latents, index_dims=1),
        use_query_residual=True,
    )
    model = PerceiverModel(config, decoder=decoder).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.3 if p.ndim > 1 else 0.2
            p.copy_(torch.randn_like(p) * scale + (1.0 if name.endswith("layernorm1.weight") else 0.0))
    return model


def hf_config(name: str, num_labels: int = 5) -> transformers.PerceiverConfig:
    return transformers.PerceiverConfig(num_labels=num_labels, **CONFIGS[name])


def inputs_for(config, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, 6, config.d_model)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_outputs_equal_hf_perceiver(name):
    config = hf_config(name)
    ref_model = hf_model(config)
    model = import_hf_perceiver(ref_model.state_dict(), config)
    x = inputs_for(config)
    for mask in (None, MASK):
        with torch.no_grad():
            torch_mask = None if mask is None else torch.from_numpy(mask)
            ref = ref_model(torch.from_numpy(x), attention_mask=torch_mask)
        out = forward(model, jnp.asarray(x), None if mask is None else jnp.asarray(mask))
        assert out.shape == (3, 5) and out.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(out), ref.logits.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cross_attention_weights_equal_hf_cross_attentions(name):
    """The latents' attention over the tokens = HF's `cross_attentions[0]` (output_attentions=True)."""
    config = hf_config(name)
    ref_model = hf_model(config)
    model = import_hf_perceiver(ref_model.state_dict(), config)
    x = inputs_for(config)
    mask = MASK.copy()
    mask[2] = False  # a clip with every token masked: uniform weights, as HF's finfo.min logits give
    weights = nnx.jit(lambda m, x, mask: m.cross_attention_weights(x, mask))
    for mask in (None, MASK, mask):
        with torch.no_grad():
            torch_mask = None if mask is None else torch.from_numpy(mask)
            ref = ref_model(torch.from_numpy(x), attention_mask=torch_mask, output_attentions=True)
        ref_w = ref.cross_attentions[0].numpy()
        got = np.asarray(weights(model, jnp.asarray(x), None if mask is None else jnp.asarray(mask)))
        assert got.shape == ref_w.shape == (3, config.num_cross_attention_heads, config.num_latents, 6)
        np.testing.assert_allclose(got, ref_w, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
        if mask is MASK:
            assert np.all(got[~np.broadcast_to(MASK[:, None, None, :], got.shape)] == 0.0)
    normalized = model.cross_attention_weights(normalize_tokens(jnp.asarray(x)), jnp.asarray(MASK),
                                               inputs_normalized=True)
    np.testing.assert_allclose(np.asarray(normalized), np.asarray(weights(model, jnp.asarray(x), jnp.asarray(MASK))),
                               atol=1e-5)


@pytest.mark.slow
def test_gradients_equal_hf_perceiver():
    config = hf_config("blocks2_qk_widen")
    ref_model = hf_model(config)
    model = import_hf_perceiver(ref_model.state_dict(), config)
    x = inputs_for(config)
    y = np.random.default_rng(2).uniform(size=(3, 5)).astype(np.float32)

    x_t = torch.from_numpy(x).requires_grad_(True)
    logits = ref_model(x_t, attention_mask=torch.from_numpy(MASK)).logits
    torch.nn.functional.mse_loss(logits, torch.from_numpy(y)).backward()

    def loss_fn(m, x):
        return jnp.mean((m(x, jnp.asarray(MASK)) - y) ** 2)

    grads, x_grad = nnx.jit(nnx.grad(loss_fn, argnums=(0, 1)))(model, jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(x_grad), x_t.grad.numpy(), atol=1e-5, rtol=1e-4)
    grad_model = nnx.merge(nnx.graphdef(model), grads, nnx.state(model, nnx.Not(nnx.Param)))
    ref_params = dict(ref_model.named_parameters())
    checked = 0
    for name, (param, transposed) in hf_parameter_map(grad_model).items():
        ref_grad = ref_params[name].grad.numpy()
        got = np.asarray(param[...])
        np.testing.assert_allclose(got.T if transposed else got, ref_grad, atol=1e-5, rtol=1e-3, err_msg=name)
        checked += 1
    assert checked == len(ref_params)


@pytest.mark.slow
def test_fresh_model_follows_hf_init_and_hides_masked_tokens():
    config = ViperConfig(**CONFIGS["one_head_wide_kv"], num_outputs=3)
    model = nnx.jit(lambda: Viper(config, rngs=nnx.Rngs(0)))()
    model.eval()
    kernel = np.asarray(model.cross_attention.attention.key.kernel[...])
    assert abs(kernel.std() - config.initializer_range) < 0.002  # normal(0, 0.02) as HF
    assert not np.any(np.asarray(model.final_layer.bias[...]))
    np.testing.assert_array_equal(np.asarray(model.cross_attention.layernorm.scale[...]), 1.0)
    x = inputs_for(config)
    changed = x.copy()
    changed[~MASK] = 100.0
    a = forward(model, jnp.asarray(x), jnp.asarray(MASK))
    b = forward(model, jnp.asarray(changed), jnp.asarray(MASK))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    unmasked = forward(model, jnp.asarray(changed), jnp.ones(MASK.shape, bool))
    assert not np.allclose(np.asarray(unmasked), np.asarray(a), rtol=1e-3, atol=0)


def test_param_count_at_paper_size_matches_hf_without_allocating():
    abstract = nnx.eval_shape(lambda: Viper(ViperConfig(), rngs=nnx.Rngs(0)))
    config = ViperConfig().to_hf()
    with torch.device("meta"):  # shapes only, no memory
        ref = PerceiverModel(
            config,
            decoder=PerceiverClassificationDecoder(
                config,
                num_channels=config.d_latents,
                trainable_position_encoding_kwargs=dict(num_channels=config.d_latents, index_dims=1),
                use_query_residual=True,
            ),
        )
    assert count_params(abstract) == sum(p.numel() for p in ref.parameters()) == 283_380_647


@pytest.mark.slow
def test_dropout_follows_train_and_eval_mode():
    config = hf_config("small")
    config.attention_probs_dropout_prob = 0.5
    state = hf_model(config).state_dict()
    model = import_hf_perceiver(state, config)
    x = jnp.asarray(inputs_for(config))
    model.train()
    a, b = np.asarray(forward(model, x, None)), np.asarray(forward(model, x, None))
    assert not np.allclose(a, b)  # a fresh dropout mask each call
    model.eval()
    c, d = np.asarray(forward(model, x, None)), np.asarray(forward(model, x, None))
    np.testing.assert_array_equal(c, d)
    assert not np.allclose(a, c)


def test_attention_paths_agree_and_fully_masked_rows_attend_uniformly():
    rng = np.random.default_rng(0)
    shapes = [(2, 3, 2, 4), (2, 5, 2, 4), (2, 5, 2, 4)]  # q, k, v: [batch, length, heads, head width]
    q, k, v = (jnp.asarray(rng.normal(size=shape), jnp.float32) for shape in shapes)
    mask = jnp.array([[0, 0, 0, 0, 0], [1, 1, 0, 1, 0]], bool)
    attend = jax.jit(dot_product_attention, static_argnames="dropout")
    fused = attend(q, k, v, mask)
    explicit = attend(q, k, v, mask, dropout=lambda p: p)
    np.testing.assert_allclose(np.asarray(fused), np.asarray(explicit), atol=1e-6)
    np.testing.assert_allclose(np.asarray(fused[0]), np.broadcast_to(v[0].mean(0), (3, 2, 4)), atol=1e-6)


def test_fully_masked_clip_matches_hf():
    config = hf_config("small")
    ref_model = hf_model(config)
    model = import_hf_perceiver(ref_model.state_dict(), config)
    x = inputs_for(config)
    mask = MASK.copy()
    mask[1] = False
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x), attention_mask=torch.from_numpy(mask)).logits.numpy()
    out = forward(model, jnp.asarray(x), jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-4, rtol=1e-4)


def test_bfloat16_compute_keeps_float32_params():
    config = hf_config("small")
    state = hf_model(config).state_dict()
    f32 = import_hf_perceiver(state, config)
    bf16 = import_hf_perceiver(state, config, dtype=jnp.bfloat16)
    dtypes = {leaf.dtype for leaf in jax.tree_util.tree_leaves(nnx.state(bf16, nnx.Param))}
    assert dtypes == {jnp.dtype(jnp.float32)}
    x = jnp.asarray(inputs_for(config))
    out, ref = forward(bf16, x), forward(f32, x)
    assert out.dtype == jnp.float32
    assert bf16.final_layer(jnp.ones((1, 16))).dtype == jnp.bfloat16  # computes in bfloat16
    assert not np.array_equal(np.asarray(out), np.asarray(ref))
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=0.05 * float(jnp.abs(ref).max()))


def test_bad_inputs_are_named():
    model = nnx.eval_shape(lambda: Viper(ViperConfig(**CONFIGS["small"]), rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"inputs \[batch, tokens, 12\]"):
        model(jnp.ones((2, 6, 11)))
    with pytest.raises(ValueError, match="mask shape"):
        model(jnp.ones((2, 6, 12)), jnp.ones((2, 5), bool))


def test_config_round_trip_and_validation():
    config = ViperConfig(**CONFIGS["blocks2_qk_widen"], num_outputs=4)
    assert ViperConfig.from_hf(config.to_hf()) == config
    with pytest.raises(ValueError, match="value width"):
        ViperConfig(d_latents=16, qk_channels=8, num_self_attention_heads=2, num_cross_attention_heads=2)
    with pytest.raises(ValueError, match="divisible"):
        ViperConfig(d_latents=10, num_self_attention_heads=3)
    with pytest.raises(ValueError, match="gelu"):
        ViperConfig.from_hf(transformers.PerceiverConfig(hidden_act="relu"))


def test_import_lists_unexpected_and_missing_names():
    config = hf_config("small")
    state = dict(hf_model(config).state_dict())
    state["perceiver.input_preprocessor.embeddings.weight"] = torch.zeros(3, 3)
    del state["encoder.self_attends.1.mlp.dense2.bias"]
    with pytest.raises(ValueError) as err:
        import_hf_perceiver(state, config)
    message = str(err.value)
    assert "unexpected (1): input_preprocessor.embeddings.weight" in message
    assert "missing (1): encoder.self_attends.1.mlp.dense2.bias" in message
    state = dict(hf_model(config).state_dict())
    state["embeddings.latents"] = torch.zeros(4, 16)
    with pytest.raises(ValueError, match=r"embeddings.latents: shape \(4, 16\)"):
        import_hf_perceiver(state, config)


def _reference_output(state, config, x):
    return np.asarray(forward(import_hf_perceiver(state, config), jnp.asarray(x)))


def test_loader_round_trips_safetensors_and_torch_state_dicts(tmp_path):
    from safetensors.torch import save_file

    config = hf_config("small")
    ref_model = hf_model(config)
    x = inputs_for(config)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x)).logits.numpy()
    state = ref_model.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "viper.safetensors")
    torch.save(state, tmp_path / "viper.pt")
    # As saved by a wrapper module (DataParallel / PerceiverFor...) inside a training checkpoint dict.
    wrapped = {f"module.perceiver.{k}": v for k, v in state.items()}
    torch.save({"state_dict": wrapped, "epoch": 3}, tmp_path / "w.pt")
    for name in ("viper.safetensors", "viper.pt", "w.pt"):
        loaded = load_state_dict(tmp_path / name)
        assert set(loaded) == set(state) and all(isinstance(v, np.ndarray) for v in loaded.values())
        out = _reference_output(loaded, config, x)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4, err_msg=name)


def test_pickled_model_needs_trust(tmp_path):
    config = hf_config("small")
    ref_model = hf_model(config)
    path = tmp_path / "perceiver_1.model"
    torch.save(ref_model, path)  # how the ViPER code saves its checkpoints
    with pytest.raises(ValueError, match="--trust-pickle") as err:
        load_state_dict(path)
    assert "perceiver_1.model" in str(err.value)
    loaded = load_state_dict(path, trust_pickle=True)
    x = inputs_for(config)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x)).logits.numpy()
    np.testing.assert_allclose(_reference_output(loaded, config, x), ref, atol=1e-4, rtol=1e-4)


def test_loader_names_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_state_dict(tmp_path / "nope.pt")
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt: cannot be read as a torch checkpoint"):
        load_state_dict(bad)
    with pytest.raises(ValueError, match="garbage.pt: cannot be read as a torch checkpoint"):
        load_state_dict(bad, trust_pickle=True)  # trusting does not make a broken file readable
    bad_st = tmp_path / "garbage.safetensors"
    bad_st.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.safetensors: cannot be read as safetensors"):
        load_state_dict(bad_st)
