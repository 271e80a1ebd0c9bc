"""`load_model(kind, name_or_path)`: one path for real checkpoints and the miniature ones.

A Hugging Face id is looked up in the local HF cache (and downloaded when online and allowed); a local
folder is read as is. Models come back in eval mode on the requested device; bfloat16 on a GPU and
float32 on a CPU unless told otherwise; SDPA attention wherever the class has it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoProcessor, AutoTokenizer

from .chat_processor import ChatProcessor
from .hub import hub_offline, why_offline
from .omni_chat import OmniChatProcessor
from .qwen_chat import QwenChatProcessor, read_video_settings
from .registry import ModelKind, get_kind


class ModelNotAvailableError(RuntimeError):
    """The model could not be found (not cached offline, no such folder) or is of the wrong kind."""


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bfloat16 on CUDA (what the 7B models are served in), float32 elsewhere (CPU bf16 is slow and lossy)."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else that names a file system location is a path."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def load_model(
    kind: str,
    name_or_path: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str | None = None,
    revision: str | None = None,
    local_files_only: bool | None = None,
):
    """(model, processor) for `kind` (vit, wavlm, clip, roberta, vllava, llava, qwen2vl, omni), in eval mode.

    `name_or_path` defaults to the kind's paper model. `local_files_only` defaults to `hub_offline()`
    (the HF offline variables, or a hub that did not answer a quick probe: see hub.py). Raises
    `ModelNotAvailableError` naming the id and the CLI flag that takes a local folder when the model is
    not available. The processor is the transformers one, except for the
    chat models, which get a `ChatProcessor` or `QwenChatProcessor` (see chat_processor.py and qwen_chat.py
    for why).
    """
    spec = get_kind(kind)
    name = str(name_or_path) if name_or_path is not None else spec.default_id
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or default_dtype(device)
    offline = hub_offline() if local_files_only is None else local_files_only

    local = Path(name).expanduser()
    if local.is_dir():
        name, hub = str(local), {}
    elif _looks_like_path(name):
        raise ModelNotAvailableError(
            f"{kind} model folder {name} does not exist; pass {spec.cli_flag} PATH with a folder written by "
            "save_pretrained"
        )
    else:
        hub = {"revision": revision, "local_files_only": offline}
    where = f"folder {name}" if not hub else f"Hugging Face id {name!r}"
    try:
        config = AutoConfig.from_pretrained(name, **hub)
    except OSError as e:  # transformers and huggingface_hub report missing files and no network as OSError
        raise _not_available(spec, name, hub, offline, e) from e
    if not spec.accepts(config.model_type):
        raise ModelNotAvailableError(
            f"{where} holds a {config.model_type!r} model but {spec.cli_flag} needs a {spec.model_type!r} one"
        )
    model_class = getattr(transformers, spec.model_class)
    kwargs = dict(spec.model_kwargs, dtype=dtype, **hub)
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    if config.model_type == "qwen2_5_omni":  # a whole Omni checkpoint: its thinker's weights only (no talker)
        kwargs.update(config=config.thinker_config, key_mapping={r"^thinker\.": ""})
    try:
        model, info = model_class.from_pretrained(name, output_loading_info=True, **kwargs)
        processor = _load_processor(spec, name, model.config, hub)
    except OSError as e:
        raise _not_available(spec, name, hub, offline, e) from e
    # transformers would initialise missing weights randomly and carry on; a feature from such a model is
    # garbage, so refuse. (Unexpected keys, e.g. the age classifier head we do not use, are fine.)
    missing = sorted(info["missing_keys"]) + sorted(k for k, *_ in info["mismatched_keys"])
    if missing:
        raise ModelNotAvailableError(
            f"{where} lacks weights the {spec.model_class} needs ({len(missing)}, e.g. {missing[:3]}); "
            f"is it a {spec.model_type} checkpoint for {spec.cli_flag}?"
        )
    return model.to(device).eval(), processor


def _load_processor(spec: ModelKind, name: str, config, hub: dict):
    if spec.processor == "image":
        return AutoImageProcessor.from_pretrained(name, **hub)
    if spec.processor == "audio":
        return AutoFeatureExtractor.from_pretrained(name, **hub)
    if spec.processor == "clip":
        return AutoProcessor.from_pretrained(name, **hub)
    if spec.processor == "tokenizer":
        return AutoTokenizer.from_pretrained(name, **hub)
    if spec.processor == "chat":
        tokenizer = AutoTokenizer.from_pretrained(name, **hub)
        image_processor = AutoImageProcessor.from_pretrained(name, **hub)
        return ChatProcessor.for_model(config, tokenizer, image_processor)
    if spec.processor == "qwen_chat":
        tokenizer = AutoTokenizer.from_pretrained(name, **hub)
        image_processor = AutoImageProcessor.from_pretrained(name, **hub)
        return QwenChatProcessor.for_model(config, tokenizer, image_processor, read_video_settings(name, hub))
    if spec.processor == "omni_chat":
        tokenizer = AutoTokenizer.from_pretrained(name, **hub)
        image_processor = AutoImageProcessor.from_pretrained(name, **hub)
        feature_extractor = AutoFeatureExtractor.from_pretrained(name, **hub)
        return OmniChatProcessor.for_thinker(config, tokenizer, image_processor, feature_extractor,
                                             read_video_settings(name, hub))
    raise ValueError(f"unknown processor kind {spec.processor!r}")


def _not_available(spec: ModelKind, name: str, hub: dict, offline: bool, err: Exception,
                   flag: str | None = None) -> ModelNotAvailableError:
    """The error for a model that could not be read; `flag` is the calling command's flag (default the kind's)."""
    flag = flag or spec.cli_flag
    if not hub:
        return ModelNotAvailableError(f"cannot load {spec.name} model from folder {name}: {err}")
    how = (f"it is not in the local Hugging Face cache and {why_offline() or 'hub access is off'}" if offline
           else "it is neither in the local Hugging Face cache nor downloadable now")
    return ModelNotAvailableError(
        f"{spec.name} model {name!r} is not available: {how}. Download it once where the hub is reachable, "
        f"or pass a local folder with {flag} PATH (underlying error: {type(err).__name__})"
    )
