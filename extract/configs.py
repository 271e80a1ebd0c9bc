"""Extraction configs: which extractors `python -m extract --config NAME` runs.

The names match the TFDS builder configs of `tfds_hume.hume_reaction`, which pick the same features
out of the export:
  demo     the built-in synthetic set: pixels + the shipped CSV features (synthetic data only)
  shipped  a real dataset: pixels + the shipped CSV features it has (ABAW5 ships none: pixels only)
  full     every feature of the paper, for real or synthetic data: pixels + shipped, then the model
           extractors in this order (each a stage with its own cache folder and progress bar):
             vit           vit [T, 768], face_found [T, 1]            ViT CLS of face crops
             wavlm         wavlm [T, 512] (masked windows)            WavLM x-vectors of audio windows
             clip_text     clip_text [T, 768], clip_template [T] text  CLIP template -> RoBERTa
             vllava        vllava_{text,emb,text_emb}_p{1,2}          Video-LLaVA, two prompts
             vllava_query  query_answer (text)                        Video-LLaVA, querying prompt
             llava         llava_text [T] text, llava_text_emb [T, 768]  LLaVA-1.5 per frame
           (T = --num-frames, 32 by default; Video-LLaVA always sees 8 frames.)
           Opt-in (`OPT_IN`: run only when named in --extractors, as a 7B model three times over costs):
             omni          omni_{v,a,av}_{text,emb,text_emb}_p{1,2}   Qwen2.5-Omni: video, audio, both

`only` (the CLI's `--extractors`) runs a subset by extractor name; `shipped` stands for every
`shipped-<name>` extractor.

Batch sizes (`ModelOptions.batch`, the CLI's `--batch-size-<model>`) count each model's own inputs:
face crops (vit), audio windows (wavlm), frames (clip), texts (text = RoBERTa), videos (vllava,
also for vllava_query), frames (llava) and clips (omni). An extractor hands a model as many whole clips at once as
fit in that batch (at least one).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from extract.extractors import Extractor, PixelsExtractor, ShippedExtractor
from extract.extractors.clip_text import ClipTextExtractor
from extract.extractors.llava import LlavaExtractor
from extract.extractors.model_choice import ModelRequest
from extract.extractors.model_pool import ModelExtractor, ModelPool
from extract.extractors.omni import OmniExtractor
from extract.extractors.query import QUERY_PROMPT, QueryExtractor
from extract.extractors.vit import VitExtractor
from extract.extractors.vllava import VideoLlavaExtractor
from extract.extractors.wavlm import WavlmExtractor
from tfds_hume.records import ClipRecord

Factory = Callable[..., list[Extractor]]

MODEL_EXTRACTORS: dict[str, type[ModelExtractor]] = {
    c.name: c for c in (VitExtractor, WavlmExtractor, ClipTextExtractor, VideoLlavaExtractor, QueryExtractor,
                        LlavaExtractor, OmniExtractor)
}
OPT_IN = ("omni",)  # model extractors a config with models runs only when --extractors names them
BATCH_DEFAULTS = {"vit": 128, "wavlm": 64, "clip": 128, "text": 64, "vllava": 4, "llava": 16, "omni": 2}
MAX_NEW_TOKENS = 128
TINY_MAX_NEW_TOKENS = 16


@dataclasses.dataclass
class ModelOptions:
    """Everything the model extractors take besides the frame count (see the module docstring)."""

    request: ModelRequest = dataclasses.field(default_factory=ModelRequest)
    batch: dict[str, int] = dataclasses.field(default_factory=dict)
    max_new_tokens: int | None = None  # None: 128, or TINY_MAX_NEW_TOKENS with --models tiny
    query_max_new_tokens: int | None = None
    query_prompt: str = QUERY_PROMPT
    llava_prompt: str | None = None  # None: extract.models.FRAME_PROMPT
    vllava_frames: int = 8
    pooling: str = "generated"

    def __post_init__(self):
        unknown = sorted(set(self.batch) - set(BATCH_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown batch size keys {unknown}; known: {sorted(BATCH_DEFAULTS)}")
        bad = {k: v for k, v in self.batch.items() if v < 1}
        if bad:
            raise ValueError(f"batch sizes must be at least 1, got {bad}")
        self.batch = {**BATCH_DEFAULTS, **self.batch}
        # Random miniature models babble until the limit: short answers keep the offline demo quick.
        default = TINY_MAX_NEW_TOKENS if self.request.mode == "tiny" else MAX_NEW_TOKENS
        self.max_new_tokens = default if self.max_new_tokens is None else self.max_new_tokens
        self.query_max_new_tokens = default if self.query_max_new_tokens is None else self.query_max_new_tokens
        if self.max_new_tokens < 1 or self.query_max_new_tokens < 1:
            raise ValueError("--max-new-tokens and --query-max-new-tokens must be at least 1")


def _pixels_and_shipped(records: Sequence[ClipRecord], *, num_frames: int = 32, pixel_size: int = 12,
                        **_: object) -> list[Extractor]:
    return [PixelsExtractor(num_frames=num_frames, size=pixel_size),
            *ShippedExtractor.for_records(records, num_frames=num_frames)]


def model_extractors(names: Sequence[str], pool: ModelPool, options: ModelOptions, *,
                     num_frames: int = 32) -> list[Extractor]:
    """The model extractors called `names` (in `MODEL_EXTRACTORS` order), sharing `pool`."""
    b = options.batch
    make = {
        "vit": lambda: VitExtractor(pool, num_frames=num_frames, images_per_batch=b["vit"]),
        "wavlm": lambda: WavlmExtractor(pool, num_windows=num_frames, windows_per_batch=b["wavlm"]),
        "clip_text": lambda: ClipTextExtractor(pool, num_frames=num_frames, images_per_batch=b["clip"],
                                               texts_per_batch=b["text"]),
        "vllava": lambda: VideoLlavaExtractor(pool, num_frames=options.vllava_frames,
                                              max_new_tokens=options.max_new_tokens, pooling=options.pooling,
                                              videos_per_batch=b["vllava"], texts_per_batch=b["text"]),
        "vllava_query": lambda: QueryExtractor(pool, num_frames=options.vllava_frames, prompt=options.query_prompt,
                                               max_new_tokens=options.query_max_new_tokens,
                                               videos_per_batch=b["vllava"]),
        "llava": lambda: LlavaExtractor(pool, num_frames=num_frames, prompt=options.llava_prompt,
                                        max_new_tokens=options.max_new_tokens, images_per_batch=b["llava"],
                                        texts_per_batch=b["text"]),
        "omni": lambda: OmniExtractor(pool, max_new_tokens=options.max_new_tokens, pooling=options.pooling,
                                      clips_per_batch=b["omni"], texts_per_batch=b["text"]),
    }
    return [make[n]() for n in MODEL_EXTRACTORS if n in names]


CONFIGS: dict[str, Factory] = {"demo": _pixels_and_shipped, "shipped": _pixels_and_shipped,
                               "full": _pixels_and_shipped}
CONFIG_MODELS: dict[str, tuple[str, ...]] = {"demo": (), "shipped": (),
                                             "full": tuple(n for n in MODEL_EXTRACTORS if n not in OPT_IN)}
SYNTHETIC_ONLY = {"demo"}
REAL_ONLY = {"shipped"}


def default_config(synthetic: bool) -> str:
    return "demo" if synthetic else "shipped"


def check_config(config: str, synthetic: bool) -> None:
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; available: {sorted(CONFIGS)}")
    if synthetic and config in REAL_ONLY or not synthetic and config in SYNTHETIC_ONLY:
        kind = "synthetic" if synthetic else "real"
        fits = sorted(c for c in CONFIGS if c not in (REAL_ONLY if synthetic else SYNTHETIC_ONLY))
        raise ValueError(f"config {config!r} is not for {kind} data; use one of {fits}")


def selected_models(config: str, only: Sequence[str] | None = None) -> list[str]:
    """The model extractors `config` runs (restricted to `only` when given, which may add `OPT_IN` ones), in
    run order."""
    if only is None:
        return list(CONFIG_MODELS[config])
    return [n for n in available_models(config) if n in only]


def available_models(config: str) -> tuple[str, ...]:
    """The model extractors `--extractors` may name in `config`: its own, plus the opt-in ones if it has any."""
    own = CONFIG_MODELS[config]
    return tuple(n for n in MODEL_EXTRACTORS if n in own or own and n in OPT_IN)


def kinds_needed(names: Sequence[str]) -> set[str]:
    """The model kinds (vit, wavlm, clip, roberta, vllava, llava) these model extractors load."""
    return {k for n in names for k in MODEL_EXTRACTORS[n].kinds}


def extractors_for(config: str, records: Sequence[ClipRecord], *, synthetic: bool, only: Sequence[str] | None = None,
                   pool: ModelPool | None = None, model_options: ModelOptions | None = None,
                   **options) -> list[Extractor]:
    """The extractors of `config` for these clips (shipped features are found in the records).

    `only`: extractor names to keep (`shipped` = every shipped-* one); an unknown name is an error
    listing the config's names. Model extractors need `pool` (resolved models).
    """
    check_config(config, synthetic)
    base = CONFIGS[config](records, **options)
    names = [e.name for e in base] + list(available_models(config))
    if only is not None:
        unknown = [n for n in only if n not in names and not (n == "shipped" and any(
            x.startswith("shipped-") for x in names))]
        if unknown:
            raise ValueError(f"--extractors {','.join(unknown)}: not in config {config!r} for this data; "
                             f"its extractors are {', '.join(names)} (`shipped` = all shipped-*)")
        base = [e for e in base if e.name in only or ("shipped" in only and e.name.startswith("shipped-"))]
    chosen = selected_models(config, only)
    if chosen:
        if pool is None:
            raise ValueError(f"config {config!r} runs model extractors {chosen}: resolve the models first")
        base += model_extractors(chosen, pool, model_options or ModelOptions(),
                                 num_frames=int(options.get("num_frames", 32)))
    if not base:
        raise ValueError(f"--extractors {','.join(only or [])} leaves nothing to run in config {config!r}")
    return base
