"""Qwen2.5-Omni (thinker): hand-built inputs against `Qwen2_5OmniProcessor`'s own code for the parts that run
without torchvision, batched generation against one clip at a time, and `--extractors omni` end to end on the
synthetic set with the miniature thinker (a clip without audio keeps its video-only features)."""
from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from extract.cli import main
from tfds_hume.manifest import Manifest
from tfds_hume.synthetic import FAULT_IDS, generate

PROMPTS = ["Describe the video.", "Describe the reaction of the subject in the video."]
KEYS = [f"omni_{v}_{k}_p{i}" for v in ("v", "a", "av") for k in ("text", "emb", "text_emb") for i in (1, 2)]


@pytest.fixture(scope="module")
def omni(tiny_models):
    from extract.models import load_model

    return load_model("omni", tiny_models / "omni")


def clips(n: int, seed: int = 0):
    """n clips of different sizes, durations (2 to 4 s) and frame rates."""
    from extract.models.omni_chat import AVClip

    rng = np.random.default_rng(seed)
    return [AVClip(rng.integers(0, 255, (8, 40 + 12 * i, 56, 3), dtype=np.uint8),
                   0.1 * rng.standard_normal(16000 * (2 + i)).astype(np.float32), 8 / (2 + i)) for i in range(n)]


def reference_processor(proc):
    """`Qwen2_5OmniProcessor`'s placeholder and audio methods bound to a stand-in holding our parts (the real
    processor cannot be built here: its video processor needs torchvision)."""
    from transformers import Qwen2_5OmniProcessor as P

    ref = types.SimpleNamespace(
        feature_extractor=proc.feature_extractor, video_processor=types.SimpleNamespace(merge_size=proc.merge_size),
        video_token="<|VIDEO|>", audio_token="<|AUDIO|>", audio_bos_token="<|audio_bos|>",
        audio_eos_token="<|audio_eos|>")
    for name in ("_process_audio", "replace_audio_token", "replace_video_token", "replace_video_with_audio_token",
                 "get_chunked_index"):
        setattr(ref, name, types.MethodType(getattr(P, name), ref))
    return ref


@pytest.mark.parametrize("variant", ["v", "a", "av"])
def test_placeholders_and_audio_features_match_the_omni_processor(omni, variant):
    _, proc = omni
    proc = proc.with_variant(variant)
    batch = clips(3)
    ours = proc.media_inputs(batch)
    ref = reference_processor(proc)
    audio, audio_text = ref._process_audio([c.wave for c in batch], sampling_rate=16000, return_attention_mask=True,
                                           return_tensors="pt")
    if variant != "v":
        assert torch.equal(ours["input_features"], audio["input_features"])
        assert torch.equal(ours["feature_attention_mask"], audio["feature_attention_mask"])
    video = {"video_grid_thw": ours.get("video_grid_thw"), "video_second_per_grid": [2 / c.fps for c in batch]}
    for row in range(len(batch)):
        if variant == "a":
            want = audio_text[row]
        else:
            want = ref.replace_video_token(video, row, processed_audio=audio, video_to_audio_indices=[0, 1, 2],
                                           load_audio_from_video=variant == "av", position_id_per_seconds=25,
                                           seconds_per_chunk=2.0)
        assert proc._placeholders(ours, row) == want
    if variant == "av":  # the layout really interleaves: more than one video run for a 3 s clip
        assert proc._placeholders(ours, 1).count("<|AUDIO|><|VIDEO|>") >= 1


@pytest.mark.parametrize("variant", ["v", "a", "av"])
def test_batched_generation_gives_the_tokens_of_one_clip_at_a_time(omni, variant):
    from extract.models.mllm import GenerationOptions, generate_for_prompts

    model, proc = omni
    proc = proc.with_variant(variant)
    batch = clips(3, seed=1)
    fast = generate_for_prompts(model, proc, batch, PROMPTS, max_new_tokens=6, batch_size=3)
    plain = generate_for_prompts(model, proc, batch, PROMPTS, max_new_tokens=6, batch_size=1,
                                 options=GenerationOptions.plain())
    for (texts, pooled), (texts1, pooled1) in zip(fast, plain):
        assert texts == texts1
        assert pooled.shape == (3, model.config.text_config.hidden_size)
        assert np.abs(pooled[0] - pooled[1]).max() > 1e-4  # the clips reach the model: different states
        np.testing.assert_allclose(pooled, pooled1, rtol=1e-4, atol=1e-5)


def test_audio_variants_refuse_a_clip_without_audio(omni):
    from extract.models.omni_chat import AVClip

    _, proc = omni
    silent = AVClip(np.zeros((8, 32, 32, 3), np.uint8), None, 4.0)
    assert "pixel_values_videos" in proc.with_variant("v").media_inputs([silent])
    with pytest.raises(ValueError, match="no audio"):
        proc.with_variant("av").media_inputs([silent])


@pytest.fixture(scope="module")
def run(run_once, tiny_cache):
    def extract(folder):
        generate(folder / "reactions", layout="muse", clips_per_split=1, seed=7, faults=True, progress=False)
        cache = tiny_cache(folder / "cache")
        assert main(["--data-root", str(folder / "reactions"), "--cache-dir", str(cache), "--config", "full",
                     "--data-dir", str(folder / "tfds"), "--models", "tiny", "--extractors", "omni",
                     "--max-new-tokens", "6", "--no-progress"]) == 0

    return run_once("omni-synthetic", extract)


def test_extractor_writes_every_variant_and_marks_unheard_ones_missing(run):
    export = run / "cache" / "exports" / "reactions-full"
    manifest = Manifest.read(export)
    assert set(KEYS) <= set(manifest.features)
    assert manifest.features["omni_av_emb_p2"].dim == 64 and manifest.features["omni_a_text_emb_p1"].kind == "video"
    clips = {c.id: c for c in manifest.clips}
    silent = clips.pop(FAULT_IDS["no_audio"])
    assert len(clips) >= 3 and all(set(KEYS) <= set(c.files) for c in clips.values())
    assert {k for k in KEYS if k in silent.files} == {k for k in KEYS if k.startswith("omni_v_")}
    summary = json.loads((export / "summary.json").read_text())
    folder = Path(summary["extractors"]["omni"]["folder"])
    reason = json.loads((folder / "omni_av_text_p1" / f"{FAULT_IDS['no_audio']}.missing.json").read_text())["reason"]
    assert "no audio" in reason
    import tensorflow_datasets as tfds

    train = tfds.data_source("hume_reaction/full", data_dir=str(run / "tfds"))["train"]
    ex = next(train[i] for i in range(len(train)) if train[i]["id"] == FAULT_IDS["no_audio"].encode())
    assert ex["missing"]["omni_av_emb_p1"] and not ex["features"]["omni_av_emb_p1"].any()
    assert not ex["missing"]["omni_v_emb_p1"] and ex["features"]["omni_v_text_p2"]


def test_a_whole_omni_checkpoint_loads_as_its_thinker(omni, tiny_models, tmp_path):
    """The hub checkpoint is the whole model ("qwen2_5_omni", weights under `thinker.`): `load_model` and the
    resolver take its thinker, which answers as the thinker-only folder does."""
    import shutil

    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    from extract.extractors.model_choice import resolve_real
    from extract.models import load_model

    model, proc = omni
    whole = Qwen2_5OmniForConditionalGeneration(Qwen2_5OmniConfig(thinker_config=model.config.to_dict(),
                                                                  enable_audio_output=False))
    whole.thinker.load_state_dict(model.state_dict())
    whole.save_pretrained(tmp_path)
    for f in (tiny_models / "omni").iterdir():
        if f.suffix == ".json" and f.name not in ("config.json", "generation_config.json"):
            shutil.copy(f, tmp_path / f.name)
    loaded, loaded_proc = load_model("omni", tmp_path)
    assert type(loaded).__name__ == "Qwen2_5OmniThinkerForConditionalGeneration"
    assert resolve_real("omni", str(tmp_path)).dim() == model.config.text_config.hidden_size
    batch = clips(2, seed=2)
    mine = loaded_proc.with_variant("av").media_inputs(batch)
    text = loaded_proc.with_variant("av").text_inputs(mine, PROMPTS)
    with torch.inference_mode():
        a = loaded(**{**mine, **text}).logits
        b = model(**{**mine, **text}).logits
    torch.testing.assert_close(a, b)
