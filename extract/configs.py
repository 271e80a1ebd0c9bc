"""Extraction configs: which extractors `python -m extract --config NAME` runs.

The names match the TFDS builder configs of `tfds_hume.hume_reaction`, which pick the same features
out of the export:
  demo     the built-in synthetic set: pixels + the shipped CSV features (synthetic data only)
  shipped  a real dataset: pixels + the shipped CSV features it has (ABAW5 ships none: pixels only)
The model extractors of the paper (ViT, WavLM, CLIP + RoBERTa, Video-LLaVA, LLaVA) register here as
config `full` once they exist.
"""
from __future__ import annotations

from typing import Callable, Sequence

from extract.extractors import Extractor, PixelsExtractor, ShippedExtractor
from tfds_hume.records import ClipRecord

Factory = Callable[..., list[Extractor]]


def _pixels_and_shipped(records: Sequence[ClipRecord], *, num_frames: int = 32, pixel_size: int = 12,
                        **_: object) -> list[Extractor]:
    return [PixelsExtractor(num_frames=num_frames, size=pixel_size),
            *ShippedExtractor.for_records(records, num_frames=num_frames)]


CONFIGS: dict[str, Factory] = {"demo": _pixels_and_shipped, "shipped": _pixels_and_shipped}
SYNTHETIC_ONLY = {"demo"}
REAL_ONLY = {"shipped"}


def default_config(synthetic: bool) -> str:
    return "demo" if synthetic else "shipped"


def extractors_for(config: str, records: Sequence[ClipRecord], *, synthetic: bool, **options) -> list[Extractor]:
    """The extractors of `config` for these clips (shipped features are found in the records)."""
    if config not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; available: {sorted(CONFIGS)}")
    if synthetic and config in REAL_ONLY or not synthetic and config in SYNTHETIC_ONLY:
        kind = "synthetic" if synthetic else "real"
        fits = sorted(c for c in CONFIGS if c not in (REAL_ONLY if synthetic else SYNTHETIC_ONLY))
        raise ValueError(f"config {config!r} is not for {kind} data; use one of {fits}")
    return CONFIGS[config](records, **options)
