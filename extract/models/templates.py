"""Emotion templates for the CLIP step: CLIP picks the best-matching template per frame, RoBERTa embeds it.

The set is versioned by `TEMPLATES_NAME`; `templates_digest()` hashes the exact texts so that an
extraction cache keyed on it changes whenever a template is edited, added or removed.
"""
from __future__ import annotations

import hashlib
import json

TEMPLATES_NAME = "hume7-neutral-v1"

# Several phrasings per emotion (prompt ensembling makes the pick less sensitive to one wording),
# plus neutral: a frame with no visible reaction should not be forced onto an emotion.
_PHRASINGS = (
    "a photo of a person showing {}",
    "a face expressing {}",
    "a close-up of someone feeling {}",
)
_EMOTION_WORDS = {
    "Adoration": "adoration",
    "Amusement": "amusement",
    "Anxiety": "anxiety",
    "Disgust": "disgust",
    "Empathic-Pain": "empathic pain",
    "Fear": "fear",
    "Surprise": "surprise",
    "Neutral": "no particular emotion",
}

EMOTION_TEMPLATES: tuple[tuple[str, str], ...] = tuple(
    (label, phrasing.format(word)) for label, word in _EMOTION_WORDS.items() for phrasing in _PHRASINGS
)
"""(label, text) pairs in a fixed order; template index i refers to this tuple."""


def template_texts() -> list[str]:
    """The template sentences, in `EMOTION_TEMPLATES` order."""
    return [text for _, text in EMOTION_TEMPLATES]


def template_labels() -> list[str]:
    """The emotion label of each template, in `EMOTION_TEMPLATES` order."""
    return [label for label, _ in EMOTION_TEMPLATES]


def templates_digest() -> str:
    """sha256 (first 16 hex) over the name and every (label, text): part of the CLIP extractor's cache key."""
    blob = json.dumps([TEMPLATES_NAME, list(EMOTION_TEMPLATES)], ensure_ascii=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
