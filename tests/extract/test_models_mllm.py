"""The multimodal-LLM bridge on the miniature Video-LLaVA and LLaVA: placeholders, batching, pooling."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessor, LlavaConfig, LlavaProcessor, VideoLlavaConfig, VideoLlavaImageProcessor

from extract.models import ChatProcessor, build_tiny, describe_images, generate_descriptions, load_model
from extract.models.tiny_tokenizers import llm_tokenizer

# Prompts of different token lengths, so a batch is really left-padded.
PROMPTS = ["Describe the video.", "Describe the reaction of the subject in the video.", "Hi",
           "Describe the video. Describe the video in detail, please."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {k: build_tiny(k, root / k) for k in ("vllava", "llava")}


@pytest.fixture(scope="module")
def vllava(tiny):
    return load_model("vllava", tiny["vllava"])


@pytest.fixture(scope="module")
def llava(tiny):
    return load_model("llava", tiny["llava"])


@pytest.fixture(scope="module")
def videos():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 36, 48, 3), dtype=np.uint8) for _ in range(4)]


def _placeholders(inputs, proc):
    return (inputs["input_ids"] == proc.media_token_id).sum(1).tolist()


def test_full_size_placeholder_counts():
    """The real models' numbers from their configs: 8 frames x 257 = 2,056 for Video-LLaVA, 576 for LLaVA."""
    tok = llm_tokenizer()
    ids = dict(image_token_index=tok.convert_tokens_to_ids("<image>"))
    vconf = VideoLlavaConfig(video_token_index=tok.convert_tokens_to_ids("<video>"), **ids)  # 224 px, p 14
    vproc = ChatProcessor.for_model(vconf, tok, VideoLlavaImageProcessor())
    frames = np.zeros((8, 240, 320, 3), np.uint8)
    inputs = vproc([frames], ["Describe the video."])
    assert _placeholders(inputs, vproc) == [2056] == [vconf.video_seq_length]
    assert tuple(inputs["pixel_values_videos"].shape) == (1, 8, 3, 224, 224)

    lconf = LlavaConfig(vision_config=dict(model_type="clip_vision_model", image_size=336, patch_size=14), **ids)
    lproc = ChatProcessor.for_model(lconf, tok, CLIPImageProcessor(size={"shortest_edge": 336},
                                                                   crop_size={"height": 336, "width": 336}))
    inputs = lproc([frames[0]], ["Describe the image."])
    assert _placeholders(inputs, lproc) == [576] == [lconf.image_seq_length]
    assert tuple(inputs["pixel_values"].shape) == (1, 3, 336, 336)


def test_tiny_placeholders_match_what_the_vision_tower_emits(vllava, llava, videos):
    model, proc = vllava
    inputs = proc(videos[:2], PROMPTS[:2])
    feats = model.model.get_video_features(pixel_values_videos=inputs["pixel_values_videos"]).pooler_output
    assert _placeholders(inputs, proc) == [feats.shape[0] // 2 * feats.shape[1]] * 2 == [8 * 5] * 2
    model, proc = llava
    inputs = proc([videos[0][0]], ["Describe the image."])
    feats = model.model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output  # one per image
    assert _placeholders(inputs, proc) == [len(feats[0])] == [4]


def test_video_pixels_are_the_image_processor_on_each_frame(vllava, videos):
    _, proc = vllava
    inputs = proc(videos[:1], PROMPTS[:1])
    # transformers 5.24 answers with the legacy key here; pin that our path sees the same tensor.
    direct = proc.image_processor(list(videos[0]), return_tensors="pt")["pixel_values_images"]
    torch.testing.assert_close(inputs["pixel_values_videos"][0], direct)


def test_llava_inputs_equal_the_transformers_processor(tiny, llava, videos):
    _, proc = llava
    hf = LlavaProcessor.from_pretrained(tiny["llava"])
    image = videos[0][3]
    ours = proc([image, image], ["Describe the image.", "Hi"])
    theirs = hf(images=[image, image], text=[proc.format("Describe the image."), proc.format("Hi")],
                padding=True, padding_side="left", return_tensors="pt")
    torch.testing.assert_close(ours["input_ids"], theirs["input_ids"])
    torch.testing.assert_close(ours["attention_mask"], theirs["attention_mask"])
    torch.testing.assert_close(ours["pixel_values"], theirs["pixel_values"])
    assert ours["attention_mask"][1, 0] == 0  # the shorter prompt is padded on the left


def _batch1(fn, model, proc, media, prompts, **kw):
    texts, pooled = [], []
    for m, p in zip(media, prompts):
        t, h = fn(model, proc, [m], p, batch_size=1, **kw)
        texts += t
        pooled.append(h)
    return texts, np.concatenate(pooled)


@pytest.mark.parametrize("pooling", ["generated", "all"])
def test_video_llava_batched_equals_batch_one(vllava, videos, pooling):
    model, proc = vllava
    texts, pooled = generate_descriptions(model, proc, videos, PROMPTS, max_new_tokens=6, batch_size=4,
                                          pooling=pooling)
    assert pooled.shape == (4, model.config.text_config.hidden_size) and pooled.dtype == np.float32
    assert len(texts) == 4 and all(isinstance(t, str) and t for t in texts)
    ref_texts, ref_pooled = _batch1(generate_descriptions, model, proc, videos, PROMPTS, max_new_tokens=6,
                                    pooling=pooling)
    assert texts == ref_texts
    np.testing.assert_allclose(pooled, ref_pooled, atol=1e-5)


def test_llava_batched_equals_batch_one(llava, videos):
    model, proc = llava
    frames = list(videos[0][:3]) + list(videos[1][:2])
    prompts = ["Describe the image.", "Hi", "Describe the image in detail.", "Hi", "What is this?"]
    texts, pooled = describe_images(model, proc, frames, prompts, max_new_tokens=6, batch_size=3, pooled=True)
    ref_texts, ref_pooled = _batch1(describe_images, model, proc, frames, prompts, max_new_tokens=6, pooled=True)
    assert texts == ref_texts
    np.testing.assert_allclose(pooled, ref_pooled, atol=1e-5)
    texts_only, none = describe_images(model, proc, frames[:2], "Describe the image.", max_new_tokens=3)
    assert none is None and len(texts_only) == 2


def test_pooling_matches_a_plain_forward_pass_and_stops_at_eos(vllava, videos):
    """Rows that end early (EOS) are pooled over their own tokens only; checked against one full forward."""
    model, proc = vllava
    inputs = proc(videos[:3], ["Describe the video."] * 3)
    out = model.generate(**inputs, do_sample=False, max_new_tokens=6, pad_token_id=proc.tokenizer.pad_token_id)
    new = out[:, inputs["input_ids"].shape[1]:]
    eos = int(new[0, 2])  # make row 0's third token the end of sequence
    assert eos not in new[0, :2].tolist()
    n0 = 3
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = eos
    try:
        results = {p: generate_descriptions(model, proc, videos[:3], "Describe the video.", max_new_tokens=6,
                                            batch_size=3, pooling=p) for p in ("generated", "all")}
        alone = generate_descriptions(model, proc, videos[:1], "Describe the video.", max_new_tokens=6,
                                      batch_size=1)
    finally:
        model.generation_config.eos_token_id = saved
    assert results["generated"][0][0] == alone[0][0]
    np.testing.assert_allclose(results["generated"][1][0], alone[1][0], atol=1e-5)
    # Reference: one forward over prompt + the n0 generated tokens of row 0 (no padding: batch of one).
    one = proc(videos[:1], ["Describe the video."])
    seq = torch.cat([one["input_ids"], new[:1, :n0]], 1)
    with torch.no_grad():
        h = model(input_ids=seq, pixel_values_videos=one["pixel_values_videos"],
                  output_hidden_states=True).hidden_states[-1][0]
    length = one["input_ids"].shape[1]
    ref_generated = h[length - 1:length - 1 + n0].mean(0).numpy()
    ref_all = h[:length - 1 + n0].mean(0).numpy()  # every token read: prompt + generated tokens 1..n0-1
    np.testing.assert_allclose(results["generated"][1][0], ref_generated, atol=1e-4)
    np.testing.assert_allclose(results["all"][1][0], ref_all, atol=1e-4)


def test_wrong_media_and_bad_inputs(vllava, llava, videos):
    model, proc = vllava
    with pytest.raises(ValueError, match="takes video input, not image"):
        describe_images(model, proc, videos[0], "Hi", max_new_tokens=2)
    with pytest.raises(ValueError, match="same number of frames"):
        generate_descriptions(model, proc, [videos[0], videos[1][:4]], "Hi", max_new_tokens=2)
    with pytest.raises(ValueError, match=r"expected uint8 \[F, H, W, 3\]"):
        generate_descriptions(model, proc, [videos[0].astype(np.float32)], "Hi", max_new_tokens=2)
    with pytest.raises(ValueError, match="2 inputs but 3 prompts"):
        generate_descriptions(model, proc, videos[:2], PROMPTS[:3], max_new_tokens=2)
    with pytest.raises(ValueError, match="placeholders"):
        generate_descriptions(model, proc, videos[:1], "look: <video>", max_new_tokens=2)
