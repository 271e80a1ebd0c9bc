"""Qwen2.5-Omni few-shot conversations: K labelled example clips (frames and audio) as earlier turns, then the
asked clip, in each input variant; generation with shots, batched and one clip at a time."""
from __future__ import annotations

import os
import re

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub from tests

import numpy as np
import pytest
import torch

from extract.models.omni_chat import OMNI_CHAT_FORMAT, TOKENS, AVClip

PROMPT = "Score the emotions."
ANSWERS = ("adoration: 0.10, fear: 0.90", "adoration: 0.75, fear: 0.05")


@pytest.fixture(scope="module")
def omni(tiny_models):
    from extract.models import load_model

    return load_model("omni", tiny_models / "omni")


@pytest.fixture(scope="module")
def clips():
    """Four clips of different frame counts, sizes and durations (2 to 5 s): each has its own placeholder counts."""
    rng = np.random.default_rng(3)
    shapes = ((8, 28, 56, 3), (8, 56, 56, 3), (4, 28, 56, 3), (6, 56, 56, 3))
    return [AVClip(rng.integers(0, 255, shape, dtype=np.uint8),
                   0.1 * rng.standard_normal(16000 * (2 + i)).astype(np.float32), shape[0] / (2 + i))
            for i, shape in enumerate(shapes)]


def _decoded(proc, inputs, row: int) -> str:
    ids = inputs["input_ids"][row][inputs["attention_mask"][row].bool()]
    return proc.tokenizer.decode(ids)


@pytest.mark.parametrize("variant", ["v", "a", "av"])
def test_zero_shots_is_the_single_clip_path(omni, clips, variant):
    _, proc = omni
    proc = proc.with_variant(variant)
    same = proc.with_shots([])
    assert same.format(PROMPT) == proc.format(PROMPT)
    got, ref = same(clips[:2], [PROMPT] * 2), proc(clips[:2], [PROMPT] * 2)
    assert got.keys() == ref.keys()
    assert all(torch.equal(got[k], ref[k]) if isinstance(ref[k], torch.Tensor) else got[k] == ref[k] for k in ref)


@pytest.mark.parametrize("variant", ["v", "a", "av"])
def test_shot_turns_hold_each_clip_and_answer_in_order(omni, clips, variant):
    _, proc = omni
    proc = proc.with_variant(variant)
    shots = proc.with_shots(list(zip(clips[:2], ANSWERS)))
    text = shots.format(PROMPT)
    key = TOKENS["audio"] if variant == "a" else TOKENS["video"]
    assert text.count("<|im_start|>user") == 3 and text.count(key) == 3 and text.count("<|im_start|>system") == 1
    assert text.index(ANSWERS[0]) < text.index(ANSWERS[1]) < text.rindex("<|im_start|>user")
    assert text.endswith(OMNI_CHAT_FORMAT.split("{prompt}")[1])
    inputs = shots(clips[2:], [PROMPT] * 2)
    # Row-major: row 0's shots then its clip, then row 1's shots then its clip, in every input.
    order = (0, 1, 2, 0, 1, 3)
    alone = [proc.media_inputs([c]) for c in clips]
    for name in ("video_grid_thw", "video_second_per_grid", "input_features", "feature_attention_mask"):
        if name in alone[0]:
            assert torch.equal(inputs[name], torch.cat([alone[i][name] for i in order])), name
    if variant != "a":
        assert torch.equal(inputs["pixel_values_videos"], torch.cat([alone[i]["pixel_values_videos"] for i in order]))
    # Each clip's placeholders are exactly those it has alone (tested against the Omni processor in test_omni.py).
    blocks = [proc._placeholders(alone[i], 0) for i in range(4)]
    assert len(set(blocks)) == 4
    bos, eos = ("<|audio_bos|>", "<|audio_eos|>") if variant == "a" else ("<|vision_bos|>", "<|vision_eos|>")
    for row, own in ((0, 2), (1, 3)):
        decoded = _decoded(proc, inputs, row)
        media = re.findall(re.escape(bos) + "(.*?)" + re.escape(eos), decoded)
        assert media == [blocks[0], blocks[1], blocks[own]]
        assert decoded.index(ANSWERS[0]) < decoded.index(ANSWERS[1]) < decoded.rindex(bos)
    assert inputs.get("use_audio_in_video", False) == (variant == "av")


@pytest.mark.parametrize("variant", ["v", "av"])
def test_few_shot_generation_runs_and_batching_changes_nothing(omni, clips, variant):
    from extract.models import generate_for_prompts

    model, proc = omni
    shots = proc.with_variant(variant).with_shots(list(zip(clips[:2], ANSWERS)))
    with torch.inference_mode():  # the towers emit exactly the placeholders the text holds, or the forward fails
        inputs = shots(clips[2:], [PROMPT] * 2)
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape and torch.isfinite(logits).all()
    batched = generate_for_prompts(model, shots, clips[2:], [PROMPT], max_new_tokens=4, batch_size=2,
                                   pooled=False)[0][0]
    single = [generate_for_prompts(model, shots, [c], [PROMPT], max_new_tokens=4, pooled=False)[0][0][0]
              for c in clips[2:]]
    assert batched == single and all(isinstance(t, str) for t in batched)


def test_bad_shots(omni, clips):
    _, proc = omni
    silent = AVClip(clips[0].frames, None, clips[0].fps)
    with pytest.raises(ValueError, match="no audio"):
        proc.with_variant("av").with_shots([(silent, "x")])
    assert proc.with_variant("v").with_shots([(silent, "x")]).shot_clips == (silent,)
    with pytest.raises(ValueError, match="placeholders"):
        proc.with_variant("v").with_shots([(clips[0], "x")])(clips[1:2], ["look: <|VIDEO|>"])
