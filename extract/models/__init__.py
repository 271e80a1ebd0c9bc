"""PyTorch models used by extraction: loading (real ids or local folders), miniature offline stand-ins,
batched encoders (ViT, WavLM, CLIP templates, RoBERTa) and the multimodal-LLM bridge (Video-LLaVA, LLaVA,
and Qwen2-VL for the querying baseline).

    model, proc = load_model("vllava", "LanguageBind/Video-LLaVA-7B-hf", device="cuda")
    texts, pooled = generate_descriptions(model, proc, videos, VIDEO_PROMPTS[0], max_new_tokens=64)
"""
from .chat_processor import CHAT_FORMATS, ChatProcessor
from .encoders import clip_best_templates, clip_text_embeds, roberta_embed, vit_cls, wavlm_xvector
from .loading import ModelNotAvailableError, default_dtype, hub_offline, load_model
from .mllm import (
                   FRAME_PROMPT,
                   VIDEO_PROMPTS,
                   GenerationOptions,
                   describe_images,
                   generate_descriptions,
                   generate_for_prompts,
)
from .qwen_chat import QWEN_CHAT_FORMAT, QwenChatProcessor
from .registry import KINDS, ModelKind, get_kind
from .templates import EMOTION_TEMPLATES, TEMPLATES_NAME, template_labels, template_texts, templates_digest
from .tiny import RANDOM_WEIGHTS_FILE, build_all_tiny, build_tiny, is_random_weights

__all__ = [
    "CHAT_FORMATS", "ChatProcessor", "EMOTION_TEMPLATES", "FRAME_PROMPT", "GenerationOptions", "KINDS", "ModelKind",
    "ModelNotAvailableError", "QWEN_CHAT_FORMAT", "QwenChatProcessor", "RANDOM_WEIGHTS_FILE",
    "TEMPLATES_NAME", "VIDEO_PROMPTS", "build_all_tiny", "build_tiny", "clip_best_templates", "clip_text_embeds",
    "default_dtype", "describe_images", "generate_descriptions", "generate_for_prompts", "get_kind", "hub_offline",
    "is_random_weights", "load_model", "roberta_embed", "template_labels", "template_texts", "templates_digest",
    "vit_cls", "wavlm_xvector",
]
