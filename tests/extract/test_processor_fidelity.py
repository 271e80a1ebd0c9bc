"""Our hand-built chat inputs (`ChatProcessor`, `QwenChatProcessor`, `OmniChatProcessor`) against transformers'
own processors (`VideoLlavaProcessor`, `LlavaProcessor`, `Qwen2VLProcessor`, `Qwen2_5OmniProcessor` for video,
audio and both, with their torchvision video and image processors) on the real test videos: the same token ids,
attention masks and placeholder counts (and Qwen2-VL's grids and token types, Omni's audio features and
seconds per grid), pixel values within the resize rounding.

Those processors need torchvision, which does not import beside the pinned CPU torch, so this runs where it
does (the GPU machine: `bash benchmarks/gpu_run.sh fidelity`) and is skipped elsewhere. Our side is built
the way `load_model` builds it on the CPU install: the PIL image processors (where the torchvision one is what
`AutoImageProcessor` gives on a CUDA install, that one is compared too).

Resize rounding: PIL's and torchvision's antialiased bicubic resizes round differently; we allow
`MAX_LEVELS` grey levels on any value and `MEAN_LEVELS` on average (normalised values converted back to
0-255 levels with the processor's std). Measured with torchvision 0.28's Python transforms: at most 2
levels and under 0.005 on average against the PIL image processors, 0 against the torchvision ones.
Each check prints what it measured, so the GPU log records it. Without pytest (the GPU machine may not
have it), `python tests/extract/test_processor_fidelity.py` runs the same checks.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import numpy as np
import pytest
import torch

try:  # a torchvision built for another torch fails with errors other than ImportError
    import torchvision  # noqa: F401

    HAVE_TORCHVISION = True
except Exception:  # noqa: BLE001
    HAVE_TORCHVISION = False

pytestmark = pytest.mark.skipif(
    not HAVE_TORCHVISION, reason="torchvision does not import beside the pinned CPU torch; runs on the GPU machine "
                                 "(bash benchmarks/gpu_run.sh fidelity)")

MEDIA = Path(__file__).resolve().parents[1] / "data" / "media"
VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "no_face.mp4", "face_noface.mov")
PROMPTS = ("Describe the video.", "Describe the reaction of the subject in the video.")
MAX_LEVELS = 3.0
MEAN_LEVELS = 0.05


def _clips() -> list[np.ndarray]:
    from extract.media import sample_frames

    return [sample_frames(MEDIA / name, 8).frames for name in VIDEOS]  # 8 frames, as the extractors sample


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return _clips()


def _levels(ours: torch.Tensor, ref: torch.Tensor, std: list[float], channel_axis: int) -> tuple[float, float]:
    """(max, mean) |difference| in 0-255 grey levels of two normalised pixel tensors."""
    shape = [1] * ours.ndim
    shape[channel_axis] = len(std)
    scale = torch.tensor(std, dtype=torch.float64).reshape(shape) * 255
    diff = (ours.double() - ref.double()).abs() * scale
    return float(diff.max()), float(diff.mean())


def _check_pixels(what: str, ours: torch.Tensor, ref: torch.Tensor, std, channel_axis: int) -> None:
    assert tuple(ours.shape) == tuple(ref.shape), f"{what}: {tuple(ours.shape)} != {tuple(ref.shape)}"
    worst, mean = _levels(ours, ref, std, channel_axis)
    print(f"{what}: pixel values differ by at most {worst:.2f} grey levels, {mean:.3f} on average")
    assert worst <= MAX_LEVELS and mean <= MEAN_LEVELS, f"{what}: max {worst:.2f}, mean {mean:.3f} grey levels"


def _check_text(what: str, ours: dict, ref: dict, token_id: int, keys=("input_ids", "attention_mask")) -> None:
    for key in keys:
        assert torch.equal(ours[key].long(), torch.as_tensor(ref[key]).long()), f"{what}: {key} differ"
    counts = (ours["input_ids"] == token_id).sum(1).tolist()
    print(f"{what}: identical {', '.join(keys)}; placeholders per row {counts}")


def _left_padded_tokenizer(make):
    tok = make()
    tok.padding_side = "left"  # the reference pads with the tokenizer's side; ours asks for left explicitly
    return tok


def test_video_llava_matches_video_llava_processor(clips):
    from transformers import VideoLlavaConfig, VideoLlavaImageProcessor, VideoLlavaProcessor, VideoLlavaVideoProcessor

    from extract.models import ChatProcessor
    from extract.models.tiny_tokenizers import llm_tokenizer

    tok = llm_tokenizer()
    config = VideoLlavaConfig(image_token_index=tok.convert_tokens_to_ids("<image>"),
                              video_token_index=tok.convert_tokens_to_ids("<video>"))  # the 7B's: 224 px, p 14
    ours = ChatProcessor.for_model(config, tok, VideoLlavaImageProcessor())
    ref = VideoLlavaProcessor(image_processor=VideoLlavaImageProcessor(), video_processor=VideoLlavaVideoProcessor(),
                              tokenizer=_left_padded_tokenizer(llm_tokenizer), patch_size=14,
                              vision_feature_select_strategy="default", num_additional_image_tokens=1)
    prompts = [PROMPTS[i % 2] for i in range(len(clips))]  # two lengths: the batch is left-padded
    mine = ours(clips, prompts)
    theirs = ref(text=[ours.format(p) for p in prompts], videos=clips, padding=True, return_tensors="pt")
    _check_text("Video-LLaVA", mine, theirs, ours.media_token_id)
    assert (mine["input_ids"] == ours.media_token_id).sum(1).tolist() == [2056] * len(clips)
    _check_pixels("Video-LLaVA", mine["pixel_values_videos"], theirs["pixel_values_videos"],
                  VideoLlavaVideoProcessor().image_std, channel_axis=2)


@pytest.mark.parametrize("backend", ["pil", "torchvision"])
def test_llava_matches_llava_processor(clips, backend):
    from transformers import CLIPImageProcessor, CLIPImageProcessorPil, LlavaConfig, LlavaProcessor

    from extract.models import ChatProcessor
    from extract.models.tiny_tokenizers import llm_tokenizer

    size = dict(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})  # llava-1.5-7b-hf's
    tok = llm_tokenizer()
    config = LlavaConfig(vision_config=dict(model_type="clip_vision_model", image_size=336, patch_size=14),
                         image_token_index=tok.convert_tokens_to_ids("<image>"))
    ours = ChatProcessor.for_model(config, tok, (CLIPImageProcessorPil if backend == "pil" else CLIPImageProcessor)(
        **size))
    ref = LlavaProcessor(image_processor=CLIPImageProcessor(**size), tokenizer=_left_padded_tokenizer(llm_tokenizer),
                         patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1)
    images = [clip[len(clip) // 2] for clip in clips]
    prompts = ["Describe the image.", "Describe the image in detail, please."] * (len(images) // 2)
    mine = ours(images, prompts)
    theirs = ref(text=[ours.format(p) for p in prompts], images=images, padding=True, return_tensors="pt")
    _check_text(f"LLaVA-1.5 ({backend})", mine, theirs, ours.media_token_id)
    assert (mine["input_ids"] == ours.media_token_id).sum(1).tolist() == [576] * len(images)
    _check_pixels(f"LLaVA-1.5 ({backend})", mine["pixel_values"], theirs["pixel_values"],
                  CLIPImageProcessor().image_std, channel_axis=1)


@pytest.mark.parametrize("backend", ["pil", "torchvision"])
def test_qwen2vl_matches_qwen2vl_processor(clips, backend):
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
        Qwen2VLImageProcessorPil,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from extract.models import QwenChatProcessor
    from extract.models.tiny_tokenizers import qwen_tokenizer

    tok = qwen_tokenizer()
    token = tok.convert_tokens_to_ids
    config = Qwen2VLConfig(video_token_id=token("<|video_pad|>"), image_token_id=token("<|image_pad|>"),
                           vision_start_token_id=token("<|vision_start|>"), vision_end_token_id=token("<|vision_end|>"))
    image_proc = (Qwen2VLImageProcessorPil if backend == "pil" else Qwen2VLImageProcessor)()
    ours = QwenChatProcessor.for_model(config, tok, image_proc, None)  # the video processor's default limits
    video_proc = Qwen2VLVideoProcessor()
    ref = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=_left_padded_tokenizer(qwen_tokenizer),
                           video_processor=video_proc)
    prompts = [PROMPTS[i % 2] for i in range(len(clips))]
    mine = ours(clips, prompts)
    theirs = ref(text=[ours.format(p) for p in prompts], videos=clips, padding=True, return_tensors="pt")
    keys = ("input_ids", "attention_mask") + (("mm_token_type_ids",) if "mm_token_type_ids" in theirs else ())
    _check_text(f"Qwen2-VL ({backend})", mine, theirs, ours.media_token_id, keys)
    assert torch.equal(mine["video_grid_thw"], theirs["video_grid_thw"].long())
    # Patches flatten [C, temporal, p, p]: the channel is the leading factor of the last axis.
    per_channel = mine["pixel_values_videos"].shape[-1] // 3
    as_channels = [t.reshape(t.shape[0], 3, per_channel) for t in (mine["pixel_values_videos"],
                                                                   theirs["pixel_values_videos"])]
    _check_pixels(f"Qwen2-VL ({backend})", *as_channels, video_proc.image_std, channel_axis=1)


def _clips_with_audio():
    """(frames, 16 kHz audio from the first frame, sampled fps) of each test video that has an audio track."""
    from extract.errors import NoAudioError
    from extract.media import load_audio, probe

    out = []
    for name, frames in zip(VIDEOS, _clips()):
        try:
            track = load_audio(MEDIA / name, 16000)
        except NoAudioError:
            continue
        duration = probe(MEDIA / name).duration
        wave = track.wave[max(0, -int(round(track.start * 16000))):][:int(min(duration, 30) * 16000)]
        out.append((frames, wave, len(frames) / duration))
    return out


@pytest.mark.parametrize("variant", ["v", "a", "av"])
def test_qwen25_omni_matches_qwen25_omni_processor(variant):
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2VLImageProcessor,
        Qwen2VLImageProcessorPil,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    from extract.models.omni_chat import AVClip, OmniChatProcessor
    from extract.models.tiny_tokenizers import omni_tokenizer

    tok = omni_tokenizer()
    token = tok.convert_tokens_to_ids
    config = Qwen2_5OmniThinkerConfig(audio_token_index=token("<|AUDIO|>"), video_token_index=token("<|VIDEO|>"),
                                      image_token_index=token("<|IMAGE|>"), audio_start_token_id=token("<|audio_bos|>"),
                                      vision_start_token_id=token("<|vision_bos|>"))  # the 7B's vision and audio
    whisper = WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)  # the 7B's: 128 mel bins
    ours = OmniChatProcessor.for_thinker(config, tok, Qwen2VLImageProcessorPil(), whisper, None, variant=variant)
    video_proc = Qwen2VLVideoProcessor()
    ref = Qwen2_5OmniProcessor(image_processor=Qwen2VLImageProcessor(), video_processor=video_proc,
                               feature_extractor=whisper, tokenizer=_left_padded_tokenizer(omni_tokenizer))
    clips = _clips_with_audio()
    assert clips, "no test video with an audio track"
    for k, (frames, wave, fps) in enumerate(clips):  # one clip per call: the processor takes one fps per call
        mine = ours([AVClip(frames, wave, fps)], [PROMPTS[k % 2]])
        text = [ours.format(PROMPTS[k % 2])]
        if variant == "a":
            theirs = ref(text=text, audio=[wave], return_tensors="pt")
        else:
            av = variant == "av"  # the clip's own track, given rather than decoded again by the processor
            theirs = ref(text=text, videos=[frames], audio=[wave] if av else None, load_audio_from_video=av,
                         audio_from_video_indices=[0] if av else None,
                         videos_kwargs={"fps": fps, "do_sample_frames": False}, return_tensors="pt")
        what = f"Qwen2.5-Omni {variant} clip {k}"
        _check_text(what, mine, theirs, tok.convert_tokens_to_ids("<|AUDIO|>" if variant == "a" else "<|VIDEO|>"))
        if variant != "v":
            assert torch.equal(mine["feature_attention_mask"], theirs["feature_attention_mask"].long()), what
            assert torch.allclose(mine["input_features"], theirs["input_features"], atol=1e-5), what
        if variant != "a":
            assert torch.equal(mine["video_grid_thw"], theirs["video_grid_thw"].long()), what
            assert torch.allclose(mine["video_second_per_grid"].float(),
                                  torch.as_tensor(theirs["video_second_per_grid"]).float()), what
            per_channel = mine["pixel_values_videos"].shape[-1] // 3
            _check_pixels(what, *[t.reshape(t.shape[0], 3, per_channel) for t in (
                mine["pixel_values_videos"], theirs["pixel_values_videos"])], video_proc.image_std, channel_axis=1)


if __name__ == "__main__":
    if not HAVE_TORCHVISION:
        print("processor fidelity: skipped, torchvision does not import here")
        raise SystemExit(0)
    frames = _clips()
    test_video_llava_matches_video_llava_processor(frames)
    for name in ("pil", "torchvision"):
        test_llava_matches_llava_processor(frames, name)
        test_qwen2vl_matches_qwen2vl_processor(frames, name)
    for variant in ("v", "a", "av"):
        test_qwen25_omni_matches_qwen25_omni_processor(variant)
    print("processor fidelity: all checks passed")
