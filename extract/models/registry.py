"""The model kinds used by extraction: default Hugging Face id, CLI flag, transformers classes.

Every kind can be given as a Hugging Face id (loaded from the local HF cache, or downloaded when online)
or as a local folder written by `save_pretrained` (which is what `tiny.build_tiny` writes).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelKind:
    """How to load one kind of model and what it is for."""

    name: str
    model_type: str  # the config.model_type a checkpoint of this kind declares
    default_id: str
    cli_flag: str  # the `python -m extract` flag that takes another id or a local folder
    model_class: str  # transformers class that loads the weights
    processor: str  # "image", "audio", "clip", "tokenizer", "chat" or "qwen_chat": see loading._load_processor
    attn_implementation: str | None  # None: the class has no SDPA path (WavLM), use its default
    model_kwargs: dict = field(default_factory=dict)
    purpose: str = ""
    also_model_types: tuple[str, ...] = ()  # other config.model_type values a checkpoint of this kind may declare

    def accepts(self, model_type: str) -> bool:
        return model_type == self.model_type or model_type in self.also_model_types


KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind(
            name="vit", model_type="vit", default_id="nateraw/vit-age-classifier", cli_flag="--vit-model",
            # The checkpoint is a ViTForImageClassification; we need the encoder only, not a random pooler.
            model_class="ViTModel", processor="image", attn_implementation="sdpa",
            model_kwargs={"add_pooling_layer": False},
            purpose="visual feature: CLS token of the last hidden state, per face crop",
        ),
        ModelKind(
            name="wavlm", model_type="wavlm", default_id="microsoft/wavlm-base-plus-sv", cli_flag="--wavlm-model",
            model_class="WavLMForXVector", processor="audio", attn_implementation=None,
            purpose="audio feature: x-vector embedding per audio window",
        ),
        ModelKind(
            name="clip", model_type="clip", default_id="openai/clip-vit-base-patch32", cli_flag="--clip-model",
            model_class="CLIPModel", processor="clip", attn_implementation="sdpa",
            purpose="per-frame choice of the best-matching emotion template",
        ),
        ModelKind(
            name="roberta", model_type="roberta", default_id="roberta-base", cli_flag="--text-model",
            model_class="RobertaModel", processor="tokenizer", attn_implementation="sdpa",
            model_kwargs={"add_pooling_layer": False},
            purpose="text embedding of templates and MLLM descriptions (roberta-large also works)",
        ),
        ModelKind(
            name="vllava", model_type="video_llava", default_id="LanguageBind/Video-LLaVA-7B-hf",
            cli_flag="--vllava-model", model_class="VideoLlavaForConditionalGeneration", processor="chat",
            attn_implementation="sdpa",
            purpose="video descriptions from 8 frames and their pooled last hidden state",
        ),
        ModelKind(
            name="llava", model_type="llava", default_id="llava-hf/llava-1.5-7b-hf", cli_flag="--llava-model",
            model_class="LlavaForConditionalGeneration", processor="chat", attn_implementation="sdpa",
            purpose="one description per frame",
        ),
        ModelKind(
            name="qwen2vl", model_type="qwen2_vl", default_id="Qwen/Qwen2-VL-7B-Instruct",
            cli_flag="--qwen2vl-model", model_class="Qwen2VLForConditionalGeneration", processor="qwen_chat",
            attn_implementation="sdpa",
            purpose="another video chat model for the zero-shot querying baseline (8 frames as a video)",
        ),
        ModelKind(
            # The hub checkpoint is the whole Omni model ("qwen2_5_omni": thinker, talker, vocoder); only its
            # thinker is loaded (loading.py). A thinker-only folder (the miniature one) declares the thinker type.
            name="omni", model_type="qwen2_5_omni_thinker", default_id="Qwen/Qwen2.5-Omni-7B", cli_flag="--omni-model",
            model_class="Qwen2_5OmniThinkerForConditionalGeneration", processor="omni_chat",
            attn_implementation="sdpa", also_model_types=("qwen2_5_omni",),
            purpose="audio-visual descriptions (video, audio, video + audio) and their pooled last hidden state",
        ),
    )
}


def get_kind(kind: str) -> ModelKind:
    """The registry entry for `kind`; a clear error listing the known kinds otherwise."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {', '.join(KINDS)}") from None
