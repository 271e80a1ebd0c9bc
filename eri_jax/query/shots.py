"""Few-shot querying: which train clips the chat model sees first, and how their labels become answers.

The rule (seeded): K clips drawn uniformly without replacement (`numpy.random.default_rng(seed)`) from
the train clips whose every label is present, taken in the split's order; the same K examples precede
every clip of a run. Examples always come from train, so the train split is never scored with shots.
Each example's answer lists its labels as "adoration: 0.42, amusement: 0.07, ..." (two decimals, the
emotion names lower-case with spaces), a form `parse_scores` reads back.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

SHOT_RULE = "seeded uniform draw without replacement from fully labelled train clips; the same for every clip"


def choose_shots(labels: np.ndarray, k: int, seed: int) -> list[int]:
    """Row indices of the K example clips among a train split's labels float32 [N, E] (NaN = missing)."""
    if k < 0:
        raise ValueError(f"--shots {k}: must be 0 or more")
    eligible = np.flatnonzero(np.isfinite(labels).all(1)) if len(labels) else np.zeros(0, int)
    if k > len(eligible):
        raise ValueError(f"--shots {k}: the train split has only {len(eligible)} fully labelled clips")
    return [int(i) for i in np.random.default_rng(seed).choice(eligible, size=k, replace=False)]


def shot_answer(labels: np.ndarray, emotions: Sequence[str]) -> str:
    """One example clip's labels written as the assistant's answer."""
    return ", ".join(f"{e.lower().replace('-', ' ').replace('_', ' ')}: {float(v):.2f}"
                     for e, v in zip(emotions, labels))
