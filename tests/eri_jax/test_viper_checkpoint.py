"""ViPER's token layout (FAU padded to 32) and the model config an --init-from checkpoint brings with it."""

from __future__ import annotations

import argparse
import json
import sys
import types

import numpy as np
import pytest

from eri_jax.inputs import assembly as feats
from eri_jax.inputs.dataset import SplitData
from eri_jax.inputs.token_layout import viper_block_widths
from eri_jax.models.viper import ViperConfig
from eri_jax.models.viper_import import Checkpoint, checkpoint_config, read_checkpoint, resolve_config
from tfds_hume.manifest import FeatureSpec

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers.models.perceiver.modeling_perceiver import (  # noqa: E402
    PerceiverClassificationDecoder,
    PerceiverModel,
)

REAL = {"vit": 768, "wavlm": 512, "clip_text": 768, "fau": 27}
# The case: a checkpoint with the demo preset's shapes but 8/8 heads (the demo has 4/1).
DEMO_SHAPES_8_HEADS = dict(d_model=32, num_latents=32, d_latents=64, num_self_attends_per_block=2,
                           num_self_attention_heads=8, num_cross_attention_heads=8)


def viper_torch(config: transformers.PerceiverConfig, cls=PerceiverModel, seed: int = 0):
    """The module ViPER's train_perceiver.py builds and saves with torch.save(model)."""
    torch.manual_seed(seed)
    decoder = PerceiverClassificationDecoder(
        config, num_channels=config.d_latents,
        trainable_position_encoding_kwargs=dict(num_channels=config.d_latents, index_dims=1),
        use_query_residual=True)
    return cls(config, decoder=decoder).eval()


def specs(dims: dict[str, int], t: int = 3) -> dict[str, FeatureSpec]:
    return {k: FeatureSpec("frame", dim=d, num_frames=t, source="test") for k, d in dims.items()}


# ------------------------------------------------------------------------------------------- layout


def test_vatf_at_real_widths_is_2080_wide_with_fau_zero_padded_after_its_block():
    keys = feats.modality_features("VATF")
    widths = viper_block_widths("FVAT", keys)  # letter order does not matter: tokens go V, A, T, F
    assert widths == {keys[3]: 32}
    sp = specs(dict(zip(keys, REAL.values())))
    assert feats.input_dim(keys, sp) == 2075 and feats.input_dim(keys, sp, widths) == 2080
    assert feats.input_dim(keys[:3], sp, viper_block_widths("VAT", keys[:3])) == 2048  # nothing to pad

    # Small widths, the same rule: F (4 wide here) becomes 32; the token mask is untouched.
    keys = ["a", "f"]
    sp, n, t = specs({"a": 2, "f": 4}), 2, 3
    rng = np.random.default_rng(0)
    data = SplitData(split="dev", ids=np.array(["1", "2"]), labels=np.zeros((n, 7), np.float32),
                     features={k: rng.normal(size=(n, t, s.dim)).astype(np.float32) for k, s in sp.items()},
                     frame_masks={"a": np.array([[1, 1, 0], [1, 1, 1]], bool), "f": np.ones((n, t), bool)},
                     missing={k: np.zeros(n, bool) for k in keys}, emotions=["e"] * 7)
    widths = viper_block_widths("AF", keys)
    out = feats.assemble(data, keys, sp, "viper", widths)
    x = out.features[feats.INPUT_KEY]
    assert x.shape == (n, t, 2 + 32) == (n, t, feats.input_dim(keys, sp, widths))
    np.testing.assert_array_equal(x[..., :2], data.features["a"])
    np.testing.assert_array_equal(x[..., 2:6], data.features["f"])
    assert not x[..., 6:].any()
    np.testing.assert_array_equal(out.frame_masks[feats.INPUT_KEY], data.frame_masks["a"])
    # An F block already 32 or wider is used as it is; without letters (--features) nothing is padded.
    assert feats.input_dim(keys, specs({"a": 2, "f": 40}), widths) == 42
    assert feats.assemble(data, keys, sp, "viper").features[feats.INPUT_KEY].shape[-1] == 6


# ------------------------------------------------------------------------------ config from the file


def test_pickled_module_brings_its_config_and_a_missing_class_is_read_as_data(tmp_path, capsys):
    config = transformers.PerceiverConfig(num_labels=7, **DEMO_SHAPES_8_HEADS)
    # A training script's own subclass, as a pickled ViPER module whose code is not importable here.
    code = types.ModuleType("viper_training_code")
    code.ViperPerceiver = type("ViperPerceiver", (PerceiverModel,), {"__module__": "viper_training_code"})
    sys.modules["viper_training_code"] = code
    try:
        model = viper_torch(config, code.ViperPerceiver)
        torch.save(model, tmp_path / "perceiver_3.model")
    finally:
        del sys.modules["viper_training_code"]
    with pytest.raises(ValueError, match="--trust-pickle"):
        read_checkpoint(tmp_path / "perceiver_3.model")
    ckpt = read_checkpoint(tmp_path / "perceiver_3.model", trust_pickle=True)
    assert "viper_training_code.ViperPerceiver" in capsys.readouterr().err
    assert set(ckpt.weights) == set(model.state_dict())
    for name, t in model.state_dict().items():
        np.testing.assert_array_equal(ckpt.weights[name], t.numpy())
    got, source = checkpoint_config(tmp_path / "perceiver_3.model", trust_pickle=True)
    assert got == ViperConfig.from_hf(config) and "pickled" in source
    assert (got.num_self_attention_heads, got.num_cross_attention_heads) == (8, 8)


def test_bare_state_dict_needs_a_config_unless_its_shapes_are_vipers(tmp_path):
    config = transformers.PerceiverConfig(num_labels=7, **DEMO_SHAPES_8_HEADS)
    path = tmp_path / "weights.pt"
    torch.save(viper_torch(config).state_dict(), path)
    # Head counts cannot be confirmed: refused, naming the way out (never loaded into 4/1 heads).
    with pytest.raises(ValueError, match="no head counts.*\n.*--perceiver-config") as err:
        checkpoint_config(path)
    assert "d_latents 64 (here) vs 1280 (ViPER)" in str(err.value)
    # With the model's Hugging Face config.json.
    config.to_json_file(tmp_path / "config.json")
    got, source = checkpoint_config(path, perceiver_config=tmp_path / "config.json")
    assert got == ViperConfig.from_hf(config) and "--perceiver-config" in source
    # A JSON that leaves fields out gets Hugging Face's defaults for them (here the 8/8 heads).
    short = tmp_path / "short.json"
    short.write_text(json.dumps({k: v for k, v in DEMO_SHAPES_8_HEADS.items() if "heads" not in k}))
    assert checkpoint_config(path, perceiver_config=short)[0] == got
    # A config that contradicts the shapes is refused, naming what differs.
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**DEMO_SHAPES_8_HEADS, "d_latents": 128}))
    with pytest.raises(ValueError, match="contradict.*d_latents 64 \\(weights\\) vs 128 \\(config\\)"):
        checkpoint_config(path, perceiver_config=wrong)
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "d_model": 32,\n  "num_latents": 32\n  "d_latents": 64\n}\n')
    with pytest.raises(ValueError, match="broken.json: line 4: not valid JSON"):
        checkpoint_config(path, perceiver_config=broken)


def test_bare_state_dict_with_vipers_published_shapes_takes_the_paper_config():
    paper = ViperConfig(d_model=2080, num_outputs=7)
    shapes = _hf_shapes(paper)
    # Zero-stride arrays: the shapes of the 283 M parameters without their memory.
    ckpt = Checkpoint({k: np.broadcast_to(np.float32(0), s) for k, s in shapes.items()})
    got, source = resolve_config(ckpt, "viper.pt")
    assert got == paper and "published" in source and "8 self-/8 cross-attention heads" in source
    # The same shapes with one layer fewer are no longer ViPER's: refused.
    for name in [k for k in ckpt.weights if k.startswith("encoder.self_attends.25.")]:
        del ckpt.weights[name]
    with pytest.raises(ValueError, match="num_self_attends_per_block 25 \\(here\\) vs 26 \\(ViPER\\)"):
        resolve_config(ckpt, "viper.pt")


def _hf_shapes(config: ViperConfig) -> dict[str, tuple[int, ...]]:
    from flax import nnx

    from eri_jax.models.viper import Viper
    from eri_jax.models.viper_import import hf_parameter_map

    model = nnx.eval_shape(lambda: Viper(config, rngs=nnx.Rngs(0)))
    return {name: tuple(reversed(p.shape)) if t else tuple(p.shape)
            for name, (p, t) in hf_parameter_map(model).items()}


# ----------------------------------------------------------------------------------- train's config


def _args(**kw) -> argparse.Namespace:
    from eri_jax.train import build_parser

    argv = ["--model", "viper"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return build_parser().parse_args(argv)


def test_run_config_takes_the_model_from_the_checkpoint(tmp_path, capsys):
    from eri_jax.training.config import make_config

    config = transformers.PerceiverConfig(num_labels=7, **DEMO_SHAPES_8_HEADS)
    torch.save(viper_torch(config), tmp_path / "ck.model")
    cfg = make_config(_args(init_from=tmp_path / "ck.model", trust_pickle=True, modalities="VATF"),
                      synthetic=True)
    expected = ViperConfig.from_hf(config)
    assert cfg.model_kwargs["num_self_attention_heads"] == 8 and cfg.model_kwargs["num_cross_attention_heads"] == 8
    assert ViperConfig(d_model=32, num_outputs=7, **cfg.model_kwargs) == expected
    assert cfg.model_source == "the pickled module's config" and cfg.block_widths == {"fau": 32}
    err = capsys.readouterr().err
    assert "8 self-/8 cross-attention heads" in err and "overrides the demo preset's" in err
    assert "num_cross_attention_heads 1 -> 8" in err
    with pytest.raises(ValueError, match="raw tokens"):
        make_config(_args(init_from=tmp_path / "ck.model", trust_pickle=True, standardize=True), synthetic=True)
    with pytest.raises(ValueError, match="pass --init-from too"):
        make_config(_args(perceiver_config=tmp_path / "c.json"), synthetic=True)
