"""From answers to predictions: parse every answer, fill what is missing, and describe what the parser saw.

    scores = parse_answers(answers, emotions)           # float32 [N, E], NaN where no score was found
    fill = train_mean_fill(train_labels, emotions)      # float64 [E]: the train split's mean label
    predictions = fill_missing(scores, fill)
    stats = answer_stats(scores, answers, emotions, labels)

Missing scores are filled per emotion with a constant: by default the mean label of the train split
(never of the evaluated split, whose labels the baseline must not see), or a fixed value. A constant
carries no information about the clip, so a filled score neither helps nor fakes a correlation; an
emotion the model never scores has constant predictions and an undefined Pearson r.

`answer_stats` reports the degeneracy the paper describes (Video-LLaVA answered Anxiety 0.4 in
2,444 of 4,657 dev answers): per emotion the most frequent parsed value and its share of all answers,
how many answers gave a score at all, and Pearson r over the clips that have a parsed score.
"""
from __future__ import annotations

import warnings
from collections import Counter
from typing import Any, Sequence

import numpy as np

from eri_jax.evaluation.metrics import UndefinedPearsonWarning, pearson_per_emotion
from eri_jax.query.parse import parse_scores

FILL_TRAIN_MEAN = "train-mean"
_DIGITS = 6  # parsed values are float32: round before printing or counting full answer vectors


def parse_answers(answers: Sequence[str | None], emotions: Sequence[str]) -> np.ndarray:
    """float32 [N, E]: `parse_scores` of each answer; an absent answer (None) is all NaN."""
    out = np.full((len(answers), len(emotions)), np.nan, np.float32)
    for i, text in enumerate(answers):
        if text is not None:
            out[i] = parse_scores(text, emotions)
    return out


def train_mean_fill(train_labels: np.ndarray, emotions: Sequence[str]) -> np.ndarray:
    """float64 [E]: per emotion the mean over labelled train clips; ValueError if an emotion has none."""
    labels = np.asarray(train_labels, np.float64)
    if labels.ndim != 2 or labels.shape[1] != len(emotions):
        raise ValueError(f"train labels have shape {labels.shape}, expected (clips, {len(emotions)})")
    counts = (~np.isnan(labels)).sum(0)
    empty = [e for e, n in zip(emotions, counts) if n == 0]
    if empty:
        raise ValueError(f"the train split has no labels for {empty}: cannot fill missing scores with the "
                         "train mean; pass a constant instead (e.g. --fill 0.5)")
    return np.nansum(labels, 0) / counts


def fill_missing(scores: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """float64 [N, E]: `scores` with each NaN replaced by its emotion's fill value."""
    scores = np.asarray(scores, np.float64)
    fill = np.asarray(fill, np.float64)
    if fill.shape != (scores.shape[1],) or not np.isfinite(fill).all():
        raise ValueError(f"fill values must be {scores.shape[1]} finite numbers, got {fill.tolist()}")
    return np.where(np.isnan(scores), fill[None, :], scores)


def _value(v: float) -> float:
    return round(float(v), _DIGITS)


def most_frequent(values: np.ndarray) -> tuple[float | None, int, int]:
    """(most frequent value, its count, number of distinct values) of the non-NaN `values`.

    Ties go to the smaller value, so the result does not depend on the clip order.
    """
    v = values[~np.isnan(values)]
    if v.size == 0:
        return None, 0, 0
    uniq, counts = np.unique(v, return_counts=True)  # sorted: argmax takes the smallest of tied values
    k = int(np.argmax(counts))
    return _value(uniq[k]), int(counts[k]), int(uniq.size)


def _pearson_parsed(scores: np.ndarray, labels: np.ndarray | None, k: int) -> tuple[float | None, int]:
    """Pearson r of emotion k over the clips with a parsed score and a label (None when undefined)."""
    if labels is None:
        return None, 0
    rows = ~np.isnan(scores[:, k]) & ~np.isnan(labels[:, k])
    n = int(rows.sum())
    if n < 2:
        return None, n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedPearsonWarning)  # reported as None, as in metrics JSON
        r = float(pearson_per_emotion(scores[rows, k:k + 1].astype(np.float64), labels[rows, k:k + 1])[0])
    return (None if np.isnan(r) else r), n


def answer_stats(scores: np.ndarray, answers: Sequence[str | None], emotions: Sequence[str],
                 labels: np.ndarray | None = None) -> dict[str, Any]:
    """Counts and degeneracy of the parsed answers (see the module docstring); JSON-serialisable."""
    scores = np.asarray(scores, np.float32)
    n = len(answers)
    if scores.shape != (n, len(emotions)):
        raise ValueError(f"scores have shape {scores.shape}, expected ({n}, {len(emotions)})")
    labels = None if labels is None else np.asarray(labels, np.float64)
    found = ~np.isnan(scores)
    answered = np.array([a is not None for a in answers], bool)
    per_emotion = {}
    for k, e in enumerate(emotions):
        value, count, distinct = most_frequent(scores[:, k])
        r, n_r = _pearson_parsed(scores, labels, k)
        parsed = int(found[:, k].sum())
        per_emotion[e] = {
            "parsed": parsed, "missing": n - parsed,
            "most_frequent": value, "most_frequent_count": count,
            "share_of_answers": count / n if count else None,
            "share_of_parsed": count / parsed if count else None,
            "distinct_values": distinct,
            "pearson_parsed_only": r, "pearson_parsed_only_clips": n_r,
        }
    complete = found.all(1)
    vectors = Counter(tuple(_value(v) for v in row) for row in scores[complete])
    top = vectors.most_common(1)
    return {
        "answers": n,
        "no_answer": int((~answered).sum()),
        "empty_answers": int(sum(1 for a in answers if a is not None and not a.strip())),
        "with_all_scores": int(complete.sum()),
        "with_some_scores": int((found.any(1) & ~complete).sum()),
        "with_no_score": int((answered & ~found.any(1)).sum()),
        "per_emotion": per_emotion,
        "most_frequent_full_answer": ({"scores": dict(zip(emotions, top[0][0])), "count": top[0][1],
                                       "share_of_answers": top[0][1] / n} if top else None),
    }
