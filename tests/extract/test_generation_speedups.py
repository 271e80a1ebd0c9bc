"""The generation speed-ups (static KV cache, prefetched preprocessing, length-sorted batches) give the same
tokens and pooled states as the plain path, on the miniature Video-LLaVA, LLaVA-1.5 and Qwen2-VL."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dataclasses
import threading

import numpy as np
import pytest
import torch

from extract.models import GenerationOptions, build_tiny, generate_for_prompts, load_model
from extract.models.mllm import _generate

# Token lengths differ, and with batches of 3 the sorted order regroups the items, so padding changes.
PROMPTS = ["Describe the reaction of the subject in the video.", "Hi", "Describe the video.",
           "Describe the video. Describe the video in detail, please.", "Hi there", "What happens?"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {k: load_model(k, build_tiny(k, root / k)) for k in ("vllava", "llava", "qwen2vl")}


def _media(kind: str) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    if kind == "llava":
        return [rng.integers(0, 256, (36, 48, 3), dtype=np.uint8) for _ in PROMPTS]
    # Qwen2-VL: two frame sizes, so the placeholder counts differ as well as the prompts.
    shapes = [(8, 36, 48, 3), (8, 56, 56, 3)] if kind == "qwen2vl" else [(8, 36, 48, 3)]
    return [rng.integers(0, 256, shapes[i % len(shapes)], dtype=np.uint8) for i in range(len(PROMPTS))]


@pytest.mark.parametrize("kind,pooling", [("vllava", "generated"), ("vllava", "all"), ("llava", "generated"),
                                          ("qwen2vl", "generated")])
def test_fast_path_gives_the_plain_paths_tokens(tiny, kind, pooling):
    model, proc = tiny[kind]
    media = _media(kind)
    runs = {}
    for name, options in (("plain", GenerationOptions.plain()), ("fast", GenerationOptions.for_device("cpu"))):
        (runs[name],) = _generate(model, proc, media, PROMPTS, 12, None, 3, True, pooling, False, options)
    assert GenerationOptions.for_device("cpu") == GenerationOptions(cache="static", compile=False, prefetch=True,
                                                                    sort=True, encode_once=True)
    (t0, p0, ids0), (t1, p1, ids1) = runs["plain"], runs["fast"]
    assert len(ids0) == len(media) and all(len(i) >= 1 for i in ids0)
    assert [i.tolist() for i in ids1] == [i.tolist() for i in ids0]
    assert t1 == t0
    np.testing.assert_allclose(p1, p0, rtol=1e-5, atol=1e-5)
    # The items really were regrouped: the sorted batches differ from the input-order ones.
    lengths = [len(proc.tokenizer(proc.format(p))["input_ids"]) for p in PROMPTS]
    assert sorted(range(len(PROMPTS)), key=lambda i: lengths[i])[:3] != [0, 1, 2]


@pytest.mark.parametrize("option", ["cache", "prefetch", "sort"])
def test_each_speedup_alone_keeps_the_tokens(tiny, option):
    model, proc = tiny["llava"]
    media = _media("llava")
    plain = GenerationOptions.plain()
    one = dataclasses.replace(plain, **{option: "static" if option == "cache" else True})
    base = _generate(model, proc, media, PROMPTS, 8, 8, 4, False, "generated", False, plain)[0][2]
    got = _generate(model, proc, media, PROMPTS, 8, 8, 4, False, "generated", False, one)[0][2]
    assert [i.tolist() for i in got] == [i.tolist() for i in base]
    assert all(len(i) == 8 for i in got)  # min_new_tokens holds with the static cache too


@pytest.mark.parametrize("kind", ["vllava", "llava", "qwen2vl"])
def test_several_prompts_share_one_vision_pass_and_keep_the_tokens(tiny, kind):
    """`generate_for_prompts` = one plain call per prompt, with one vision-tower pass per batch instead of one per
    prompt (Video-LLaVA's extractor asks two prompts of the same clips)."""
    model, proc = tiny[kind]
    media = _media(kind)[:5]
    prompts = PROMPTS[:2]
    tower = {"vllava": lambda m: m.model.video_tower, "llava": lambda m: m.model.vision_tower,
             "qwen2vl": lambda m: m.model.visual}[kind](model)
    calls = []
    handle = tower.register_forward_hook(lambda *a: calls.append(1))
    try:
        plain = [_generate(model, proc, media, p, 10, None, 2, True, "generated", False, GenerationOptions.plain())[0]
                 for p in prompts]
        plain_calls, calls[:] = len(calls), []
        fast = _generate(model, proc, media, [[p] * len(media) for p in prompts], 10, None, 2, True, "generated",
                         False, GenerationOptions.for_device("cpu"))
    finally:
        handle.remove()
    assert plain_calls == 2 * 3 and len(calls) == 3  # 3 batches of <= 2 items: once per batch, not per prompt
    for (t0, p0, ids0), (t1, p1, ids1) in zip(plain, fast):
        assert [i.tolist() for i in ids1] == [i.tolist() for i in ids0]
        assert t1 == t0
        np.testing.assert_allclose(p1, p0, rtol=1e-5, atol=1e-5)
    if kind == "vllava":  # the public form returns the same per prompt
        public = generate_for_prompts(model, proc, media, prompts, max_new_tokens=10, batch_size=2)
        assert [t for t, _ in public] == [t for t, _, _ in fast]


def test_a_bad_item_in_a_later_batch_fails_cleanly_with_prefetch(tiny):
    model, proc = tiny["llava"]
    media = _media("llava")
    media[4] = media[4][..., :2]  # two channels: the processor refuses it
    before = threading.active_count()
    with pytest.raises(ValueError, match="expected uint8"):
        _generate(model, proc, media, PROMPTS, 4, None, 2, False, "generated", False,
                  GenerationOptions(prefetch=True, sort=False))
    assert threading.active_count() == before  # the preprocessing thread is gone


def test_options_are_checked():
    with pytest.raises(ValueError, match="compile needs the static cache"):
        GenerationOptions(cache="dynamic", compile=True)
    with pytest.raises(ValueError, match="cache must be"):
        GenerationOptions(cache="offloaded")
    # Compilation is opt-in until a GPU run has checked it with the pooled-state hook.
    assert not GenerationOptions.for_device(torch.device("cuda", 0)).compile
