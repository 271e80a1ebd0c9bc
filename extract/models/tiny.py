"""Miniature, randomly initialised versions of every extraction model, built offline from configs.

They use the real transformers classes with tiny configs and locally trained tokenizers, and are saved
with `save_pretrained`, so they load through exactly the same `loading.load_model` path as the real
checkpoints. Every folder carries a `RANDOM_WEIGHTS` marker (see `is_random_weights`) so that any output
computed from them can say so. They exist for tests and the offline demo; their outputs mean nothing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import (
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    RobertaConfig,
    RobertaModel,
    VideoLlavaConfig,
    VideoLlavaForConditionalGeneration,
    VideoLlavaImageProcessor,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
    WavLMForXVector,
    WhisperFeatureExtractor,
)

from . import tiny_tokenizers
from .qwen_chat import VIDEO_CONFIG_FILE
from .registry import KINDS

RANDOM_WEIGHTS_FILE = "RANDOM_WEIGHTS"
# Bump when a tiny config or tokenizer changes, so stale folders are rebuilt instead of reused.
TINY_VERSION = 1

# Vision tower of both chat models: 28 px / 14 px patches = 4 patches (+ CLS) per frame.
TINY_MLLM_IMAGE_SIZE = 28
TINY_PATCH = 14


def is_random_weights(name_or_path: str | os.PathLike) -> bool:
    """True when `name_or_path` is a local folder written by `build_tiny` (random weights, not a model)."""
    return (Path(name_or_path).expanduser() / RANDOM_WEIGHTS_FILE).is_file()


def build_tiny(kind: str, out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write the miniature `kind` model (weights + preprocessing) into `out_dir` and return it.

    Deterministic in `seed`. A folder already holding the same kind, seed and tiny version is reused.
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {', '.join(_BUILDERS)}")
    out = Path(out_dir).expanduser()
    marker = {"kind": kind, "seed": seed, "tiny_version": TINY_VERSION,
              "note": f"randomly initialised miniature stand-in for {KINDS[kind].default_id}; "
                      "outputs carry no meaning"}
    if is_random_weights(out) and json.loads((out / RANDOM_WEIGHTS_FILE).read_text()) == marker:
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / RANDOM_WEIGHTS_FILE).unlink(missing_ok=True)  # a half-written folder must not look finished
    torch.manual_seed(seed)
    model, processor = _BUILDERS[kind]()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / RANDOM_WEIGHTS_FILE).write_text(json.dumps(marker, indent=1))
    return out


def build_all_tiny(root: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Every kind under `root/<kind>`; returns {kind: folder}."""
    return {kind: build_tiny(kind, Path(root) / kind, seed=seed) for kind in _BUILDERS}


def _small(**over) -> dict:
    # Transformer width/depth shared by the encoders: big enough to be a real network, small enough for CI.
    base = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return {**base, **over}


def _vit():
    config = ViTConfig(**_small(), image_size=32, patch_size=8,
                       id2label={i: f"age-{i}" for i in range(3)}, label2id={f"age-{i}": i for i in range(3)})
    proc = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return ViTForImageClassification(config), proc


def _wavlm():
    # Conv stack strides 5*2*2 = 20x (the real one is 320x), so a 0.1 s window still has 80 frames.
    config = WavLMConfig(
        **_small(), conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, num_buckets=32, max_bucket_distance=64,
        tdnn_dim=(32, 32, 32, 32, 64), tdnn_kernel=(5, 3, 3, 1, 1), tdnn_dilation=(1, 2, 3, 1, 1),
        xvector_output_dim=24,  # group-norm feature encoder, post-norm transformer: as in wavlm-base-plus
    )
    proc = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=True)
    return WavLMForXVector(config), proc


def _clip():
    tok = tiny_tokenizers.clip_tokenizer()
    config = CLIPConfig(
        text_config=_small(vocab_size=len(tok), max_position_embeddings=77, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
        vision_config=_small(image_size=32, patch_size=8),
        projection_dim=16,
    )
    image_proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return CLIPModel(config), CLIPProcessor(image_processor=image_proc, tokenizer=tok)


def _roberta():
    tok = tiny_tokenizers.roberta_tokenizer()
    config = RobertaConfig(**_small(), vocab_size=len(tok), max_position_embeddings=130, type_vocab_size=1,
                           pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id)
    # Saved without a pooler, like roberta-base's masked-LM checkpoint: we pool ourselves.
    return RobertaModel(config, add_pooling_layer=False), tok


def _llm_parts():
    tok = tiny_tokenizers.llm_tokenizer()
    text = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                       eos_token_id=tok.eos_token_id)
    vision = CLIPVisionConfig(**_small(), image_size=TINY_MLLM_IMAGE_SIZE, patch_size=TINY_PATCH,
                              projection_dim=16)
    ids = dict(image_token_index=tok.convert_tokens_to_ids("<image>"))
    return tok, text, vision, ids


def _mllm_image_size() -> dict:
    return dict(size={"shortest_edge": TINY_MLLM_IMAGE_SIZE},
                crop_size={"height": TINY_MLLM_IMAGE_SIZE, "width": TINY_MLLM_IMAGE_SIZE})


def _vllava():
    tok, text, vision, ids = _llm_parts()
    tokens_per_frame = (TINY_MLLM_IMAGE_SIZE // TINY_PATCH) ** 2 + 1
    config = VideoLlavaConfig(vision_config=vision, text_config=text, **ids,
                              video_token_index=tok.convert_tokens_to_ids("<video>"),
                              image_seq_length=tokens_per_frame - 1, video_seq_length=8 * tokens_per_frame,
                              pad_token_id=tok.pad_token_id)
    model = VideoLlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    # No VideoLlavaProcessor here: its video processor needs torchvision. The image processor and the
    # tokenizer are what `chat_processor.ChatProcessor` loads, for tiny and real checkpoints alike.
    return model, _Both(VideoLlavaImageProcessor(**_mllm_image_size()), tok)


class _Both:
    """Saves an image processor and a tokenizer side by side, as a processor would."""

    def __init__(self, *parts):
        self.parts = parts

    def save_pretrained(self, out) -> None:
        for part in self.parts:
            part.save_pretrained(out)


def _llava():
    tok, text, vision, ids = _llm_parts()
    config = LlavaConfig(vision_config=vision, text_config=text, **ids,
                         image_seq_length=(TINY_MLLM_IMAGE_SIZE // TINY_PATCH) ** 2, pad_token_id=tok.pad_token_id)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    image_proc = CLIPImageProcessor(**_mllm_image_size())
    proc = LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=TINY_PATCH,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1)
    return model, proc


# Qwen2-VL: frames resized to 28..56 x 56 px (at most 4 patches of 28 px, i.e. 1 to 4 tokens per pair of frames).
TINY_QWEN_PIXELS = {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}


def _qwen2vl():
    tok = tiny_tokenizers.qwen_tokenizer()
    token = tok.convert_tokens_to_ids
    # head_dim 16: the multimodal rotary sections (temporal, height, width) cover its 8 frequency pairs.
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                bos_token_id=None, eos_token_id=token("<|im_end|>"), pad_token_id=token("<|endoftext|>"))
    vision = dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=TINY_PATCH,
                  spatial_merge_size=2, temporal_patch_size=2)
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=token("<|image_pad|>"),
                           video_token_id=token("<|video_pad|>"), vision_start_token_id=token("<|vision_start|>"),
                           vision_end_token_id=token("<|vision_end|>"))
    # Hub Qwen2-VL configs state the text width at the top level too (flat layout); so does this one.
    config.hidden_size = text["hidden_size"]
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [token("<|im_end|>"), token("<|endoftext|>")]  # as Qwen-Instruct
    model.generation_config.pad_token_id = token("<|endoftext|>")
    image_proc = Qwen2VLImageProcessorPil(size=dict(TINY_QWEN_PIXELS), patch_size=TINY_PATCH, merge_size=2,
                                          temporal_patch_size=2)
    return model, _Both(image_proc, tok, _VideoSettings({"size": dict(TINY_QWEN_PIXELS)}))


class _VideoSettings:
    """The video pixel limits, saved where a checkpoint keeps its video processor config."""

    def __init__(self, settings: dict):
        self.settings = {"video_processor_type": "Qwen2VLVideoProcessor", **settings}

    def save_pretrained(self, out) -> None:
        (Path(out) / VIDEO_CONFIG_FILE).write_text(json.dumps(self.settings, indent=1))


def _omni():
    """Qwen2.5-Omni's thinker: Qwen2.5-VL-style vision tower, Whisper-style audio tower (128 mel bins, as the
    real one, so the real feature extractor settings apply), Qwen2 decoder with TMRoPE."""
    tok = tiny_tokenizers.omni_tokenizer()
    token = tok.convert_tokens_to_ids
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                bos_token_id=None, eos_token_id=token("<|im_end|>"), pad_token_id=token("<|endoftext|>"),
                tie_word_embeddings=False)
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=TINY_PATCH,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=112, out_hidden_size=64,
                  fullatt_block_indexes=[1])
    audio = dict(num_mel_bins=128, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
                 max_source_positions=1500, n_window=100, output_dim=64)
    config = Qwen2_5OmniThinkerConfig(
        text_config=text, vision_config=vision, audio_config=audio, audio_token_index=token("<|AUDIO|>"),
        image_token_index=token("<|IMAGE|>"), video_token_index=token("<|VIDEO|>"),
        audio_start_token_id=token("<|audio_bos|>"), audio_end_token_id=token("<|audio_eos|>"),
        vision_start_token_id=token("<|vision_bos|>"), vision_end_token_id=token("<|vision_eos|>"),
        user_token_id=token("<|im_start|>"))
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.eos_token_id = [token("<|im_end|>"), token("<|endoftext|>")]
    model.generation_config.pad_token_id = token("<|endoftext|>")
    image_proc = Qwen2VLImageProcessorPil(size=dict(TINY_QWEN_PIXELS), patch_size=TINY_PATCH, merge_size=2,
                                          temporal_patch_size=2)
    audio_proc = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, return_attention_mask=True)
    return model, _Both(_OnePreprocessorFile(image_proc, audio_proc), tok,
                        _VideoSettings({"size": dict(TINY_QWEN_PIXELS)}))


class _OnePreprocessorFile:
    """Image processor and feature extractor in one preprocessor_config.json, as the Omni checkpoint keeps
    them (each Auto class finds its own `*_type` key there)."""

    def __init__(self, *parts):
        self.parts = parts

    def save_pretrained(self, out) -> None:
        merged = {}
        for part in self.parts:
            merged.update(json.loads(part.to_json_string()))
        (Path(out) / "preprocessor_config.json").write_text(json.dumps(merged, indent=1))


_BUILDERS = {"vit": _vit, "wavlm": _wavlm, "clip": _clip, "roberta": _roberta, "vllava": _vllava, "llava": _llava,
             "qwen2vl": _qwen2vl, "omni": _omni}
