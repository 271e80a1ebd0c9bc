"""Miniature models build offline, load through the same `load_model` path as real ids, and say so."""
from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub from tests

import pytest
import torch
from safetensors.torch import load_file, save_file

from extract.models import KINDS, ModelNotAvailableError, build_tiny, is_random_weights, load_model
from extract.models.chat_processor import ChatProcessor
from extract.models.tiny import RANDOM_WEIGHTS_FILE


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    for kind in KINDS:
        build_tiny(kind, root / kind)
    return root


EXPECTED = {
    "vit": ("ViTModel", "ViTImageProcessor"),
    "wavlm": ("WavLMForXVector", "Wav2Vec2FeatureExtractor"),
    "clip": ("CLIPModel", "CLIPProcessor"),
    "roberta": ("RobertaModel", "TokenizersBackend"),
    "vllava": ("VideoLlavaForConditionalGeneration", "ChatProcessor"),
    "llava": ("LlavaForConditionalGeneration", "ChatProcessor"),
    "qwen2vl": ("Qwen2VLForConditionalGeneration", "QwenChatProcessor"),
    "omni": ("Qwen2_5OmniThinkerForConditionalGeneration", "OmniChatProcessor"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_tiny_model_loads_through_load_model(tiny_root, kind):
    model, proc = load_model(kind, tiny_root / kind, device="cpu")
    model_cls, proc_cls = EXPECTED[kind]
    assert type(model).__name__ == model_cls
    assert type(proc).__name__.startswith(proc_cls)  # image processors may be the *Pil variant
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32  # CPU default
    assert is_random_weights(tiny_root / kind)
    marker = json.loads((tiny_root / kind / RANDOM_WEIGHTS_FILE).read_text())
    assert marker["kind"] == kind and marker["seed"] == 0
    if kind in ("vit", "roberta"):
        assert not hasattr(model, "pooler") or model.pooler is None  # encoder only, no random pooler


def test_dtype_argument(tiny_root):
    model, _ = load_model("roberta", tiny_root / "roberta", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16


def test_chat_tokenizer_keeps_placeholders_whole(tiny_root):
    _, proc = load_model("llava", tiny_root / "llava")
    assert isinstance(proc, ChatProcessor)
    tok = proc.tokenizer
    for token in ("<image>", "<video>", tok.pad_token):
        ids = tok(f"a{token}b", add_special_tokens=False)["input_ids"]
        assert tok.convert_tokens_to_ids(token) in ids, token
        assert len(tok.tokenize(token)) == 1


def test_build_is_deterministic_and_reused(tmp_path):
    a = build_tiny("roberta", tmp_path / "a", seed=3)
    b = build_tiny("roberta", tmp_path / "b", seed=3)
    c = build_tiny("roberta", tmp_path / "c", seed=4)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    stamp = (a / "model.safetensors").stat().st_mtime_ns
    assert build_tiny("roberta", a, seed=3) == a
    assert (a / "model.safetensors").stat().st_mtime_ns == stamp  # same kind/seed/version: not rebuilt
    build_tiny("roberta", a, seed=5)
    assert json.loads((a / RANDOM_WEIGHTS_FILE).read_text())["seed"] == 5


def test_random_weights_marker_absent_elsewhere(tmp_path):
    assert not is_random_weights(tmp_path)
    assert not is_random_weights("roberta-base")


def test_missing_offline_model_names_id_and_flag():
    with pytest.raises(ModelNotAvailableError, match=r"'eri-tests/no-such-model'.*--vllava-model PATH"):
        load_model("vllava", "eri-tests/no-such-model")


def test_missing_folder_names_path_and_flag(tmp_path):
    with pytest.raises(ModelNotAvailableError, match=r"no-such-dir does not exist.*--text-model"):
        load_model("roberta", str(tmp_path / "no-such-dir"))


def test_wrong_kind_of_model(tiny_root):
    with pytest.raises(ModelNotAvailableError, match=r"holds a 'vit' model but --llava-model needs a 'llava'"):
        load_model("llava", tiny_root / "vit")


def test_missing_weights_are_refused_not_randomly_initialised(tiny_root, tmp_path):
    broken = tmp_path / "vit"
    broken.mkdir()
    for f in (tiny_root / "vit").iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    dropped = next(k for k in weights if "encoder.layer.0.attention" in k)
    del weights[dropped]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelNotAvailableError, match="lacks weights"):
        load_model("vit", broken)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown model kind 'gpt'"):
        load_model("gpt", "x")
    with pytest.raises(ValueError, match="unknown model kind"):
        build_tiny("gpt", "unused")
