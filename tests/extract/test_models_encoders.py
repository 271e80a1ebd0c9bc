"""Encoders on the miniature models: shapes, determinism, batch-size invariance, reference checks."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from extract.models import (
    EMOTION_TEMPLATES,
    build_tiny,
    clip_best_templates,
    load_model,
    roberta_embed,
    template_texts,
    templates_digest,
    vit_cls,
    wavlm_xvector,
)
from extract.models import templates as templates_mod


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {k: load_model(k, build_tiny(k, root / k)) for k in ("vit", "wavlm", "clip", "roberta")}


@pytest.fixture(scope="module")
def images():
    # Different sizes than the models' inputs, so the processors really resize.
    return np.random.default_rng(0).integers(0, 256, (5, 40, 52, 3), dtype=np.uint8)


def test_vit_cls_shape_determinism_batching(models, images):
    model, proc = models["vit"]
    a = vit_cls(model, proc, images, batch_size=2)
    assert a.shape == (5, model.config.hidden_size) and a.dtype == np.float32
    np.testing.assert_array_equal(a, vit_cls(model, proc, images, batch_size=2))
    np.testing.assert_allclose(a, vit_cls(model, proc, images, batch_size=5), atol=1e-5)
    assert not np.allclose(a[0], a[1])  # different images, different features
    # CLS of the last hidden state, as the model computes it on the processor's pixels
    pixels = proc(images=list(images[:1]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = model(pixel_values=pixels).last_hidden_state[0, 0].numpy()
    np.testing.assert_allclose(a[0], ref, atol=1e-5)
    assert vit_cls(model, proc, images[:0]).shape == (0, model.config.hidden_size)
    # Face crops of different sizes go in as a list; each row is still the image's own feature.
    crops = [images[0], images[1][:20, :30]]
    mixed = vit_cls(model, proc, crops, batch_size=2)
    np.testing.assert_allclose(mixed[0], a[0], atol=1e-5)
    np.testing.assert_allclose(mixed[1], vit_cls(model, proc, [crops[1]])[0], atol=1e-5)


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # inside transformers' WavLM
def test_wavlm_xvector_shape_determinism_batching(models):
    model, proc = models["wavlm"]
    windows = np.random.default_rng(1).standard_normal((3, 3200)).astype(np.float32)
    a = wavlm_xvector(model, proc, windows, batch_size=2)
    assert a.shape == (3, model.config.xvector_output_dim) and a.dtype == np.float32
    np.testing.assert_array_equal(a, wavlm_xvector(model, proc, windows, batch_size=2))
    np.testing.assert_allclose(a, wavlm_xvector(model, proc, windows, batch_size=1), atol=1e-4)
    assert not np.allclose(a[0], a[1])
    with pytest.raises(ValueError, match="8000 Hz but the model expects 16000 Hz"):
        wavlm_xvector(model, proc, windows, sr=8000)


def test_clip_picks_argmax_of_clip_logits(models, images):
    model, proc = models["clip"]
    texts = template_texts()
    idx, chosen = clip_best_templates(model, proc, images, texts, batch_size=2)
    assert idx.shape == (5,) and idx.dtype == np.int64
    assert chosen == [texts[i] for i in idx]
    inputs = proc(text=texts, images=list(images), return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**inputs).logits_per_image  # the model's own image-text scores
    np.testing.assert_array_equal(idx, logits.argmax(1).numpy())
    # With only the picked template and one other as candidates, the pick stays the same.
    j = int(idx[0])
    other = (j + 1) % len(texts)
    sub_idx, _ = clip_best_templates(model, proc, images[:1], [texts[other], texts[j]])
    assert sub_idx.tolist() == [1]


def test_roberta_pooling_ignores_padding(models):
    model, tok = models["roberta"]
    texts = ["a face expressing fear", "a close-up of someone feeling no particular emotion at all today", ""]
    batch = roberta_embed(model, tok, texts, batch_size=3)
    assert batch.shape == (3, model.config.hidden_size) and batch.dtype == np.float32
    for i, t in enumerate(texts):
        np.testing.assert_allclose(batch[i], roberta_embed(model, tok, [t])[0], atol=1e-5)
    # The mean is over real tokens only: compare with a hand-computed mean of the unpadded sequence.
    enc = tok([texts[0]], return_tensors="pt")
    with torch.no_grad():
        ref = model(**enc).last_hidden_state[0].mean(0).numpy()
    np.testing.assert_allclose(batch[0], ref, atol=1e-5)
    assert roberta_embed(model, tok, []).shape == (0, model.config.hidden_size)


def test_roberta_truncates_long_text(models):
    model, tok = models["roberta"]
    out = roberta_embed(model, tok, ["fear " * 1000])
    assert out.shape == (1, model.config.hidden_size) and np.isfinite(out).all()


def test_bad_inputs_are_rejected(models):
    model, proc = models["vit"]
    with pytest.raises(ValueError, match=r"image 0 must be uint8 \[H, W, 3\]"):
        vit_cls(model, proc, np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"images must be uint8 \[N, H, W, 3\]"):
        vit_cls(model, proc, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="batch_size"):
        vit_cls(model, proc, np.zeros((2, 8, 8, 3), np.uint8), batch_size=0)
    model, proc = models["wavlm"]
    with pytest.raises(ValueError, match=r"float \[N, S\]"):
        wavlm_xvector(model, proc, np.zeros(100, np.float32))


def test_templates_cover_every_emotion_and_neutral_and_digest_tracks_changes(monkeypatch):
    labels = {label for label, _ in EMOTION_TEMPLATES}
    assert labels == {"Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise",
                      "Neutral"}
    assert len(template_texts()) == len(set(template_texts())) == 24
    before = templates_digest()
    monkeypatch.setattr(templates_mod, "EMOTION_TEMPLATES", EMOTION_TEMPLATES[:-1])
    assert templates_digest() != before
