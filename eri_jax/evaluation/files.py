"""Write a run's evaluation files for one split: predictions CSV, metrics JSON and Markdown, confusion PNGs.

Files written into `run_dir` by `write_evaluation` (every file replaced atomically, by `result_files`):

  predictions_<split>.csv            MuSe format: header `File_ID,<emotions>`, one row per clip.
                                     IDs are written exactly as given (the dataset keeps them without
                                     MuSe's brackets: `00001`, not `[00001]`).
  metrics_<split>.json               mean and per-emotion Pearson r, how many emotions were undefined,
                                     clip counts, prediction range (mean, std, min, max) and label
                                     mean/std per emotion, confusion counts per emotion, and `meta`.
  metrics_<split>.md                 the per-emotion Pearson table in the form of the paper's Table 5
                                     (emotions + Average, 4 decimals) and the prediction range table.
  confusion_<split>_<emotion>.png    10 x 10 row-normalised binned confusion matrix per emotion.

Undefined numbers (a NaN Pearson r) are `null` in the JSON and `n/a` in the Markdown. With
`labels=None` (an unlabelled split, e.g. the Hume-Reaction test set) only the CSV and the
prediction ranges are written: no Pearson, no confusion matrices.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eri_jax.evaluation.metrics import binned_counts, mean_over_defined, pearson_per_emotion, row_normalise
from eri_jax.evaluation.plots import plot_confusion
from eri_jax.result_files import atomic_path, json_safe, write_json, write_predictions, write_text

CONFUSION_BINS = 10
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _file_stem(name: str) -> str:
    # Emotion names come from dataset headers; keep file names portable.
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "emotion"


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _check_inputs(split, ids, predictions, labels, emotions):
    if not isinstance(split, str) or not _SAFE_NAME.match(split):
        raise ValueError(f"split name {split!r} must be non-empty letters, digits, '_', '-' or '.'")
    emotions = [str(e) for e in emotions]
    if not emotions:
        raise ValueError("emotions is empty")
    predictions = np.asarray(predictions)
    if not np.issubdtype(predictions.dtype, np.floating):
        predictions = predictions.astype(np.float64)
    expected = (len(ids), len(emotions))
    if predictions.shape != expected:
        raise ValueError(f"predictions have shape {predictions.shape}, expected (clips, emotions) = {expected}")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape != expected:
            raise ValueError(f"labels have shape {labels.shape}, expected (clips, emotions) = {expected}")
    ids = [str(i) for i in ids]
    seen: dict[str, int] = {}
    for row, clip_id in enumerate(ids):
        if clip_id in seen:
            raise ValueError(f"clip ID {clip_id!r} appears twice (rows {seen[clip_id]} and {row})")
        seen[clip_id] = row
    stems = [_file_stem(e) for e in emotions]
    if len(set(stems)) != len(stems):
        raise ValueError(f"emotion names {emotions} collide once made file-name safe: {stems}")
    return ids, predictions, labels, emotions, stems


def _range(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max())}


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _markdown(metrics: dict) -> str:
    meta, split, emotions = metrics["meta"], metrics["split"], metrics["emotions"]
    title = f"# Evaluation on the {split} split"
    tags = [t for t, on in (("synthetic data", meta.get("synthetic")),
                            ("randomly initialised models", meta.get("random_weights"))) if on]
    if tags:
        title += " (" + ", ".join(tags) + ")"
    lines = [title, ""]
    for key in ("model", "dataset", "run", "epoch"):
        if key in meta:
            lines.append(f"- {key}: {meta[key]}")
    lines.append(f"- clips: {metrics['n_clips']}")
    lines.append("")
    if metrics["pearson"] is not None:
        name = str(meta.get("model", meta.get("run", "this run")))
        lines += [
            "## Pearson correlation per emotion",
            "",
            "| Model | " + " | ".join(emotions) + " | Average |",
            "|---|" + "---:|" * (len(emotions) + 1),
            f"| {name} | " + " | ".join(_fmt(metrics["pearson"][e]) for e in emotions)
            + f" | {_fmt(metrics['mean_pearson'])} |",
            "",
        ]
        undefined = [e for e in emotions if metrics["pearson"][e] is None]
        if undefined:
            lines += [f"Average over {len(emotions) - len(undefined)} of {len(emotions)} emotions "
                      "where r is defined; undefined (fewer than 2 labelled clips, or constant predictions or "
                      "labels): "
                      + ", ".join(undefined) + ".", ""]
    else:
        lines += ["No labels for this split: no Pearson correlation.", ""]
    lines += [
        "## Prediction range per emotion",
        "",
        "| Emotion | Pred. mean | Pred. std | Pred. min | Pred. max | Label mean | Label std | Labelled clips |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in emotions:
        p, lab = metrics["prediction_range"][e], metrics["label_stats"].get(e, {})
        lines.append(f"| {e} | {_fmt(p['mean'])} | {_fmt(p['std'])} | {_fmt(p['min'])} | {_fmt(p['max'])} | "
                     f"{_fmt(lab.get('mean'))} | {_fmt(lab.get('std'))} | {metrics['n_labelled'][e]} |")
    return "\n".join(lines) + "\n"


def write_evaluation(
    run_dir: str | Path,
    *,
    split: str,
    ids: Sequence[str],
    predictions,
    labels,
    emotions: Sequence[str],
    meta: Mapping[str, Any],
) -> dict:
    """Write the evaluation files of one split into `run_dir` (created if needed); return the metrics.

    predictions: [N, E] model outputs; labels: [N, E] with NaN where unlabelled, or None for an
    unlabelled split. ids: N clip IDs, written as given. meta: JSON-serialisable description of the
    run (model, dataset, synthetic, random_weights, run, epoch, ...; a NaN in it is written as null);
    `synthetic` and `random_weights` are shown in the Markdown title. Undefined Pearson values warn
    (`UndefinedPearsonWarning`) and are None in the returned dict, which equals the JSON file.
    """
    ids, predictions, labels, emotions, stems = _check_inputs(split, ids, predictions, labels, emotions)
    try:
        meta = json_safe(dict(meta))  # checked before anything is written; NaN becomes null, as everywhere
    except TypeError as err:
        raise ValueError(f"meta must be JSON-serialisable: {err}") from None
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    pred64 = predictions.astype(np.float64)
    if labels is not None:
        per_emotion = pearson_per_emotion(pred64, labels, emotions)  # validates; warns per emotion
        mean, n_undefined = mean_over_defined(per_emotion)
    elif not np.isfinite(pred64).all():
        raise ValueError(f"predictions contain {int((~np.isfinite(pred64)).sum())} non-finite values")

    files = {"predictions": f"predictions_{split}.csv", "json": f"metrics_{split}.json",
             "markdown": f"metrics_{split}.md"}
    metrics: dict[str, Any] = {
        "split": split,
        "emotions": emotions,
        "n_clips": len(ids),
        "n_labelled": {e: (0 if labels is None else int((~np.isnan(labels[:, k])).sum()))
                       for k, e in enumerate(emotions)},
        "mean_pearson": None if labels is None else _finite_or_none(mean),
        "n_undefined_pearson": None if labels is None else n_undefined,
        "pearson": None if labels is None else {e: _finite_or_none(r) for e, r in zip(emotions, per_emotion)},
        "prediction_range": {e: _range(pred64[:, k]) for k, e in enumerate(emotions)},
        "label_stats": {},
        "confusion": None,
        "meta": meta,
        "files": files,
    }
    if labels is not None:
        counts = {}
        for k, e in enumerate(emotions):
            lab = labels[:, k][~np.isnan(labels[:, k])]
            stats = _range(lab)
            metrics["label_stats"][e] = {"mean": stats["mean"], "std": stats["std"]}
            counts[e] = binned_counts(labels[:, k], pred64[:, k], CONFUSION_BINS)
        metrics["confusion"] = {
            "bins": CONFUSION_BINS,
            "edges": np.linspace(0.0, 1.0, CONFUSION_BINS + 1).round(10).tolist(),
            "rows": "label bin", "columns": "prediction bin (predictions clipped to [0, 1])",
            "counts": {e: c.tolist() for e, c in counts.items()},
        }
        files["confusion"] = {}
        tag = " (synthetic data)" if meta.get("synthetic") else ""
        for (e, c), stem in zip(counts.items(), stems):
            p = metrics["prediction_range"][e]
            title = (f"{e}, {split} split{tag}, r = {_fmt(metrics['pearson'][e])}\n"
                     f"predictions: mean {p['mean']:.3f}, std {p['std']:.3f}, "
                     f"min {p['min']:.3f}, max {p['max']:.3f}")
            name = f"confusion_{split}_{stem}.png"
            with atomic_path(run_dir / name) as tmp:
                plot_confusion(row_normalise(c), tmp, title=title)
            files["confusion"][e] = name

    write_predictions(run_dir / files["predictions"], ids, predictions, emotions)
    metrics = json_safe(metrics)  # exactly what the JSON file holds: plain Python values, NaN as None
    write_json(run_dir / files["json"], metrics, indent=2)
    write_text(run_dir / files["markdown"], _markdown(metrics))
    return metrics
