"""Evaluate a split's answers: the standard evaluation files plus what it takes to audit the parser.

Files in the run folder (besides `write_evaluation`'s predictions_<split>.csv, metrics_<split>.json /
.md and confusion PNGs, which hold the filled predictions):

  query_answers_<split>.csv   File_ID, status (answered / no answer: why), the raw answer, the parsed
                              score per emotion (empty where none was found)
  query_stats_<split>.json    answer counts, per emotion the parsed / missing counts, the fill value,
                              the most frequent parsed value and its share of all answers, distinct
                              values, Pearson r over parsed clips only; the run's meta
  query_stats_<split>.md      the same as tables
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from eri_jax.evaluation.files import write_evaluation
from eri_jax.query.scores import FILL_TRAIN_MEAN, answer_stats, fill_missing, parse_answers
from eri_jax.result_files import atomic_path, json_safe, write_json, write_text

OMNI_INPUT_WORDS = {"av": "frames + audio", "v": "frames only", "a": "audio only"}


@dataclasses.dataclass
class QueryAnswers:
    """One split's answers. answers[i] is None where clip i has no answer (`no_answer[id]` says why).

    labels: float [N, E], NaN where unlabelled. meta: where the answers come from (model, prompt, ...).
    """

    split: str
    ids: list[str]
    answers: list[str | None]
    labels: np.ndarray
    emotions: list[str]
    meta: dict[str, Any]
    no_answer: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n = len(self.ids)
        if len(self.answers) != n or np.shape(self.labels) != (n, len(self.emotions)):
            raise ValueError(f"{n} ids, {len(self.answers)} answers, labels {np.shape(self.labels)} for "
                             f"{len(self.emotions)} emotions")


def _write_answers_csv(path: Path, qa: QueryAnswers, scores: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["File_ID", "status", "answer", *qa.emotions])
        for cid, answer, row in zip(qa.ids, qa.answers, scores):
            status = "answered" if answer is not None else f"no answer: {qa.no_answer.get(cid, 'unknown')}"
            w.writerow([cid, status, answer or "", *("" if np.isnan(v) else str(v) for v in row)])


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def stats_markdown(stats: dict[str, Any]) -> str:
    """The query_stats JSON as Markdown tables."""
    meta, split = stats["meta"], stats["split"]
    tags = [t for t, on in (("synthetic data", meta.get("synthetic")),
                            ("randomly initialised models", meta.get("random_weights"))) if on]
    lines = [f"# Zero-shot querying, {split} split" + (f" ({', '.join(tags)})" if tags else ""), ""]
    lines.append(f"- chat model: {meta.get('chat_model')} ({meta.get('model_id')})"
                 + (f"; given {OMNI_INPUT_WORDS.get(meta['omni_input'], meta['omni_input'])}"
                    if meta.get("omni_input") else ""))
    lines.append(f"- dataset: {meta.get('dataset')}; answers "
                 + ("stored in the dataset" if meta.get("answers_from") == "dataset" else "asked now"))
    lines.append(f"- prompt: \"{meta.get('prompt')}\"")
    shots = meta.get("shots") or {}
    if shots.get("k"):
        lines.append(f"- few-shot: {shots['k']} train examples first ({', '.join(shots['ids'])}; seed "
                     f"{shots['seed']}, {shots['rule']})")
    lines.append(f"- answers: {stats['answers']}; with a score for every emotion: {stats['with_all_scores']}, "
                 f"for some: {stats['with_some_scores']}, for none: {stats['with_no_score']} "
                 f"(empty: {stats['empty_answers']}); no answer at all: {stats['no_answer']}")
    fill = stats["fill"]
    how = ("the train split's mean label of the emotion" if fill["method"] == FILL_TRAIN_MEAN
           else f"the constant {fill['method']}")
    lines += [f"- a missing score is filled with {how} (column 'Filled with')", ""]
    lines += ["| Emotion | Parsed | Missing | Filled with | Most frequent value | Its count | Share of answers "
              "| Distinct values | r, parsed only (clips) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e, s in stats["per_emotion"].items():
        share = "n/a" if s["share_of_answers"] is None else f"{100 * s['share_of_answers']:.1f} %"
        lines.append(f"| {e} | {s['parsed']} | {s['missing']} | {fill['values'][e]:.4f} | {_fmt(s['most_frequent'])} "
                     f"| {s['most_frequent_count']} | {share} | {s['distinct_values']} "
                     f"| {_fmt(s['pearson_parsed_only'])} ({s['pearson_parsed_only_clips']}) |")
    top = stats["most_frequent_full_answer"]
    if top:
        scores = ", ".join(f"{e} {v:g}" for e, v in top["scores"].items())
        lines += ["", f"Most frequent complete answer: {scores} — {top['count']} of {stats['answers']} answers "
                      f"({100 * top['share_of_answers']:.1f} %)."]
    return "\n".join(lines) + "\n"


def evaluate_answers(run_dir: str | Path, qa: QueryAnswers, *, fill: np.ndarray, fill_method: str,
                     meta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse, fill, and write every evaluation file of `qa.split` into `run_dir`; (metrics, stats).

    fill: float [E] value per emotion for missing scores; fill_method: FILL_TRAIN_MEAN or the constant's
    text, recorded. meta: the run's description (model "query", chat model, prompt, dataset, ...).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    scores = parse_answers(qa.answers, qa.emotions)
    predictions = fill_missing(scores, fill)
    labels = None if np.isnan(qa.labels).all() else np.asarray(qa.labels, np.float64)
    fill_info = {"method": fill_method, "values": {e: float(v) for e, v in zip(qa.emotions, fill)}}
    meta = {**meta, "fill": fill_method}
    metrics = write_evaluation(run_dir, split=qa.split, ids=qa.ids, predictions=predictions, labels=labels,
                               emotions=qa.emotions, meta=meta)
    stats = {"split": qa.split, **answer_stats(scores, qa.answers, qa.emotions, labels), "fill": fill_info,
             "no_answer_reasons": dict(qa.no_answer), "mean_pearson": metrics["mean_pearson"],
             "meta": metrics["meta"],
             "files": {"answers": f"query_answers_{qa.split}.csv", "json": f"query_stats_{qa.split}.json",
                       "markdown": f"query_stats_{qa.split}.md"}}
    _write_answers_csv(run_dir / stats["files"]["answers"], qa, scores)
    stats = json_safe(stats)  # returned as written: plain JSON values, NaN as None
    write_json(run_dir / stats["files"]["json"], stats, indent=2)
    write_text(run_dir / stats["files"]["markdown"], stats_markdown(stats))
    return metrics, stats
