"""Qwen2-VL few-shot conversations: K labelled example videos as earlier turns, then the asked video."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub from tests

import numpy as np
import pytest
import torch

from extract.models import build_tiny, generate_descriptions, load_model
from extract.models.qwen_chat import QWEN_CHAT_FORMAT

PROMPT = "Score the emotions."
ANSWERS = ("adoration: 0.10, fear: 0.90", "adoration: 0.75, fear: 0.05")


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    model, proc = load_model("qwen2vl", build_tiny("qwen2vl", tmp_path_factory.mktemp("tiny") / "qwen2vl"))
    return model, proc


@pytest.fixture(scope="module")
def videos():
    rng = np.random.default_rng(1)
    # Different sizes and frame counts: every video has its own placeholder count.
    return [rng.integers(0, 256, shape, dtype=np.uint8)
            for shape in ((8, 36, 48, 3), (2, 36, 48, 3), (8, 28, 84, 3), (6, 36, 48, 3))]


def _runs(ids: torch.Tensor, token: int) -> list[int]:
    """Lengths of the runs of `token` in a row, in order."""
    runs, n = [], 0
    for t in ids.tolist() + [-1]:
        if t == token:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_zero_shots_is_todays_single_video_path(qwen, videos):
    _, proc = qwen
    same = proc.with_shots([])
    assert same.format(PROMPT) == proc.format(PROMPT) == QWEN_CHAT_FORMAT.format(prompt=PROMPT)
    got, ref = same(videos[:2], [PROMPT] * 2), proc(videos[:2], [PROMPT] * 2)
    assert got.keys() == ref.keys() and all(torch.equal(got[k], ref[k]) for k in ref)
    # Today's rule, written out: the one placeholder repeated t * h * w / merge^2 times.
    counts = (ref["video_grid_thw"].prod(-1) // 4).tolist()
    texts = [proc.format(PROMPT).replace("<|video_pad|>", "<|video_pad|>" * n) for n in counts]
    enc = proc.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
    assert torch.equal(got["input_ids"], enc["input_ids"])


def test_shot_turns_hold_each_video_and_answer_in_order(qwen, videos):
    _, proc = qwen
    shots = proc.with_shots(list(zip(videos[:2], ANSWERS)))
    text = shots.format(PROMPT)
    assert text.count("<|im_start|>user") == 3 and text.count("<|video_pad|>") == 3
    assert text.index(ANSWERS[0]) < text.index(ANSWERS[1]) < text.rindex("<|im_start|>user")
    assert text.endswith(QWEN_CHAT_FORMAT.split("{prompt}")[1]) and text.startswith("<|im_start|>system")
    inputs = shots(videos[2:], [PROMPT] * 2)
    single = [proc.video_inputs(v) for v in videos]
    grids = [g for _, g in single]
    # Row-major: row 0's shots then its video, then row 1's shots then its video (Qwen2-VL reads them in order).
    assert inputs["video_grid_thw"].tolist() == [list(g) for g in (grids[0], grids[1], grids[2],
                                                                  grids[0], grids[1], grids[3])]
    expected = torch.cat([single[i][0] for i in (0, 1, 2, 0, 1, 3)])
    assert torch.equal(inputs["pixel_values_videos"], expected)
    counts = [int(np.prod(g)) // 4 for g in grids]
    assert len(set(counts)) == 4
    token = proc.media_token_id
    assert _runs(inputs["input_ids"][0], token) == [counts[0], counts[1], counts[2]]
    assert _runs(inputs["input_ids"][1], token) == [counts[0], counts[1], counts[3]]
    assert torch.equal(inputs["mm_token_type_ids"], (inputs["input_ids"] == token).long() * 2)
    decoded = proc.tokenizer.decode(inputs["input_ids"][0][inputs["attention_mask"][0].bool()])
    assert ANSWERS[0] in decoded and ANSWERS[1] in decoded


def test_few_shot_generation_runs_and_batching_changes_nothing(qwen, videos):
    model, proc = qwen
    shots = proc.with_shots(list(zip(videos[:2], ANSWERS)))
    with torch.inference_mode():  # the vision tower emits exactly the placeholders the text holds
        inputs = shots(videos[2:], [PROMPT] * 2)
        feats = model.model.get_video_features(inputs["pixel_values_videos"], inputs["video_grid_thw"])
    emitted = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    assert sum(len(f) for f in emitted) == int((inputs["input_ids"] == proc.media_token_id).sum())
    batched, _ = generate_descriptions(model, shots, videos[2:], PROMPT, max_new_tokens=4, batch_size=2,
                                       pooled=False)
    single = [generate_descriptions(model, shots, [v], PROMPT, max_new_tokens=4, pooled=False)[0][0]
              for v in videos[2:]]
    assert batched == single and all(isinstance(t, str) for t in batched)


def test_bad_shots(qwen, videos):
    _, proc = qwen
    with pytest.raises(ValueError, match=r"expected uint8 \[F, H, W, 3\]"):
        proc.with_shots([(videos[0][0], "x")])
    with pytest.raises(ValueError, match="placeholders"):
        proc.with_shots([(videos[0], "x")])(videos[1:2], ["look: <|video_pad|>"])
