"""Qwen2-VL video inputs built from the image processor: patch layout, placeholder counts, batched generation."""
from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub from tests

import numpy as np
import pytest
import torch
from transformers import Qwen2VLImageProcessorPil

from extract.models import QwenChatProcessor, build_tiny, generate_descriptions, load_model
from extract.models.qwen_chat import VIDEO_CONFIG_FILE, VIDEO_PIXELS, video_pixel_limits
from extract.models.tiny import TINY_QWEN_PIXELS

PROMPTS = ["Hi", "Describe the video.", "Can you assign a score between 0 and 1 to each of these emotions?"]


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    folder = build_tiny("qwen2vl", tmp_path_factory.mktemp("tiny") / "qwen2vl")
    model, proc = load_model("qwen2vl", folder)
    return folder, model, proc


@pytest.fixture(scope="module")
def videos():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 36, 48, 3), dtype=np.uint8) for _ in range(3)]


def test_loads_with_the_checkpoints_video_pixel_limits(qwen):
    folder, model, proc = qwen
    assert isinstance(proc, QwenChatProcessor) and proc.media == "video"
    saved = json.loads((folder / VIDEO_CONFIG_FILE).read_text())
    assert (proc.min_pixels, proc.max_pixels) == video_pixel_limits(saved) == tuple(TINY_QWEN_PIXELS.values())
    assert video_pixel_limits(None) == VIDEO_PIXELS == (128 * 28 * 28, 768 * 28 * 28)
    assert video_pixel_limits({"min_pixels": 10, "max_pixels": 20}) == (10, 20)  # legacy keys
    assert proc.tokenizer.convert_tokens_to_ids("<|video_pad|>") == model.config.video_token_id


def test_video_patches_pair_consecutive_frames_in_the_processors_order(qwen):
    _, _, proc = qwen
    frames = np.stack([np.full((36, 48, 3), 30 * i, np.uint8) for i in range(5)])  # 5 flat frames: the 6th repeats
    frames[:, :18, :, 0] = 255  # and a spatial pattern, the same in every frame
    patches, grid = proc.video_inputs(frames)
    t, gh, gw = grid
    assert grid == (3, 2, 4)  # 36 x 48 -> 28 x 56 px: 2 x 4 patches of 14 px; 5 frames -> 3 pairs
    assert tuple(patches.shape) == (t * gh * gw, 3 * 2 * 14 * 14)
    single = proc.image_processor(list(frames), size={"shortest_edge": proc.min_pixels,
                                                     "longest_edge": proc.max_pixels}, return_tensors="pt")
    per_frame = single["pixel_values"].reshape(5, gh * gw, 3, 2, 14, 14)[:, :, :, 0]  # [F, S, C, p, p]
    video = patches.reshape(t, gh * gw, 3, 2, 14, 14)
    for j in range(t):
        first, second = 2 * j, min(2 * j + 1, 4)
        torch.testing.assert_close(video[j, :, :, 0], per_frame[first])
        torch.testing.assert_close(video[j, :, :, 1], per_frame[second])


def test_a_still_video_equals_the_image_path(qwen):
    """Two identical frames make one temporal patch that equals the image processor's output for one frame."""
    _, _, proc = qwen
    frame = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    patches, grid = proc.video_inputs(np.stack([frame, frame]))
    image = proc.image_processor([frame], size={"shortest_edge": proc.min_pixels, "longest_edge": proc.max_pixels},
                                 return_tensors="pt")
    assert list(image["image_grid_thw"][0]) == list(grid)
    torch.testing.assert_close(patches, image["pixel_values"])


def test_full_size_placeholder_count():
    """The real defaults: a 720 x 1280 frame is resized to 560 x 1008 (40 x 72 patches); 8 frames -> 2,880 tokens."""
    proc = QwenChatProcessor(tokenizer=None, image_processor=Qwen2VLImageProcessorPil(), patch_size=14, merge_size=2,
                             temporal_patch_size=2, min_pixels=VIDEO_PIXELS[0], max_pixels=VIDEO_PIXELS[1])
    patches, grid = proc.video_inputs(np.zeros((8, 720, 1280, 3), np.uint8))
    assert grid == (4, 40, 72) and np.prod(grid) // 4 == 2880 and patches.shape[0] == np.prod(grid)


def test_placeholders_match_the_vision_tower_and_batching_changes_nothing(qwen, videos):
    _, model, proc = qwen
    inputs = proc(videos, PROMPTS)
    counts = (inputs["input_ids"] == proc.media_token_id).sum(1)
    with torch.inference_mode():
        feats = model.model.get_video_features(inputs["pixel_values_videos"], inputs["video_grid_thw"])
    emitted = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    assert [len(f) for f in emitted] == counts.tolist() == [8, 8, 8]  # 4 pairs x 2 x 4 patches / merge 2 x 2
    assert (inputs["attention_mask"][:, 0] == 0).any()  # prompts of different lengths: left-padded
    batched, _ = generate_descriptions(model, proc, videos, PROMPTS, max_new_tokens=5, batch_size=3, pooled=False)
    single = [generate_descriptions(model, proc, [v], [p], max_new_tokens=5, pooled=False)[0][0]
              for v, p in zip(videos, PROMPTS)]
    assert batched == single


def test_bad_inputs(qwen, videos):
    _, model, proc = qwen
    with pytest.raises(ValueError, match=r"expected uint8 \[F, H, W, 3\]"):
        proc([videos[0][0]], ["Hi"])
    with pytest.raises(ValueError, match="placeholders"):
        proc(videos[:1], ["look: <|video_pad|>"])
    with pytest.raises(ValueError, match="2 inputs but 1 prompts"):
        proc(videos[:2], ["Hi"])


def test_video_tokens_get_3d_rotary_positions(qwen, videos):
    """`mm_token_type_ids` marks the placeholders (video = 2), so `generate` computes Qwen2-VL's 3-D positions, as
    with transformers' own processor; without it the video tokens would get plain 1-D positions."""
    _, model, proc = qwen
    inputs = proc(videos[:2], PROMPTS[:2])
    types = inputs["mm_token_type_ids"]
    assert torch.equal(types, (inputs["input_ids"] == proc.media_token_id).long() * 2)
    calls = []
    original = model.model.get_rope_index
    model.model.get_rope_index = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
    try:
        generate_descriptions(model, proc, videos[:2], PROMPTS[:2], max_new_tokens=2, pooled=False)
    finally:
        del model.model.get_rope_index
    assert calls == [1]
