"""Turning run folders into report rows: seeds of a setting, the labels they are scored against, late fusion.

A run row's numbers, for the seeds s = 1..S of its setting, on the clips every seed predicted:
  mean      = (1/S) sum_s mean Pearson r of seed s (the metric of evaluation/metrics.py)
  lo, hi    = percentile bootstrap interval of that seed-averaged mean over resampled clips (evaluation/stats.py)
  std       = sample std (ddof=1) over seeds of each seed's mean (`n/a` with one seed)
Each seed's recomputed mean is checked against the one the run recorded (metrics_<split>.json or
run.json): a difference means the run was scored against other labels, and is an error.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eri_jax.evaluation import stats
from eri_jax.report import fusion
from eri_jax.report.labels import DatasetLabels
from eri_jax.report.runs import Run, find_runs, group_settings, matches, read_json_object, read_predictions

# Runs score in float32 on the device (sweeps) or float64 on the host: agree to 1e-5, not bit for bit.
RECORDED_TOL = 1e-5
TRAIN_PREDICTION_FILES = (("out-of-fold", "predictions_train_oof.csv"), ("in-sample", "predictions_train.csv"))


@dataclasses.dataclass
class BootstrapSettings:
    n_boot: int = 1000
    seed: int = 0
    ci: float = 0.95


@dataclasses.dataclass
class Row:
    """One report row. status: "ok", "not run" or "ambiguous" (with `reason`). For ok rows: the runs
    (seeds), the common clip IDs, the prediction stack [S, N, E] and labels [N, E] they are scored on."""

    key: str
    label: str
    status: str
    reason: str = ""
    setting: str = ""
    runs: list[Run] = dataclasses.field(default_factory=list)
    ids: list[str] = dataclasses.field(default_factory=list)
    stack: np.ndarray | None = None
    labels: np.ndarray | None = None
    per_run: np.ndarray | None = None        # [S, E] Pearson r of each seed
    boot: stats.PearsonBootstrap | None = None
    spread: tuple[float, float, int] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self, emotions: Sequence[str], paper: float | None, n_split: int) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, "status": self.status,
                               "reason": self.reason or None, "paper": paper}
        if not self.ok:
            return out
        b = self.boot
        out.update({
            "setting": self.setting, "n_seeds": len(self.runs), "n_clips": len(self.ids), "n_split": n_split,
            "runs": [{"run": r.name, "seed": r.seed, "mean_pearson": _num(stats.seed_spread(pr)[0]),
                      "pearson": dict(zip(emotions, map(_num, pr)))} for r, pr in zip(self.runs, self.per_run)],
            "mean_pearson": _num(b.mean), "ci_lo": _num(b.mean_lo), "ci_hi": _num(b.mean_hi),
            "seed_std": _num(self.spread[1]),
            "pearson": {e: {"r": _num(r), "lo": _num(lo), "hi": _num(hi)}
                        for e, r, lo, hi in zip(emotions, b.per_emotion, b.per_emotion_lo, b.per_emotion_hi)},
            "bootstrap": {"n_boot": b.n_boot, "ci": b.ci, "n_undefined_boot": b.n_undefined_boot},
        })
        out.update(self.extra)
        return out


def query_summary(run: Run, split: str) -> dict[str, Any] | None:
    """A query run's answer counts and degeneracy (its query_stats_<split>.json), None for other runs: per
    emotion the most frequent parsed value and its share of all answers, and the emotion where that share
    is largest (the paper saw 0.4 for Anxiety in 52 % of the answers)."""
    path = run.path / f"query_stats_{split}.json"
    if not path.is_file():
        return None
    stats = read_json_object(path)
    try:
        per = {e: {"most_frequent": s["most_frequent"], "share_of_answers": s["share_of_answers"]}
               for e, s in stats["per_emotion"].items()}
        out = {k: stats[k] for k in ("answers", "with_all_scores", "with_some_scores", "with_no_score", "no_answer")}
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a query run's stats (no {e})") from None
    shares = {e: v["share_of_answers"] for e, v in per.items() if v["share_of_answers"] is not None}
    top = max(shares, key=shares.get) if shares else None
    meta = stats.get("meta") or {}
    return {**out, "chat_model": meta.get("chat_model"), "shots": (meta.get("shots") or {}).get("k") or 0,
            "omni_input": meta.get("omni_input"), "per_emotion": per,
            "most_degenerate": None if top is None else {"emotion": top, **per[top]}}


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


class Collector:
    """Finds and scores rows against one dataset's labels of one split (`split`, normally dev)."""

    def __init__(self, runs_dir: Path, data: DatasetLabels, split: str, boot: BootstrapSettings):
        if split not in data.splits or not data.splits[split].labelled:
            have = [s for s, v in data.splits.items() if v.labelled]
            raise ValueError(f"{data.name} has no labelled {split!r} split to score runs on (labelled: {have})")
        self.runs_dir = Path(runs_dir)
        if not self.runs_dir.is_dir():
            raise FileNotFoundError(f"runs folder {self.runs_dir} not found")
        self.data = data
        self.split = split
        self.boot = boot
        self.other_dataset: dict[str, str] = {}  # run name → the dataset it records, for runs left out
        self._found: dict[tuple[str, ...], list[Run]] = {}
        self._loaded: dict[Path, tuple[list[str], np.ndarray]] = {}

    # ------------------------------------------------------------------------------------------ runs

    def _candidates(self, patterns: Sequence[str]) -> list[Run]:
        key = tuple(patterns)
        if key not in self._found:
            self._found[key] = find_runs(self.runs_dir, patterns, self.split)
        return self._found[key]

    def _predictions(self, run: Run, split: str, filename: str | None = None) -> tuple[list[str], np.ndarray]:
        path = run.path / (filename or f"predictions_{split}.csv")
        if path not in self._loaded:
            self._loaded[path] = read_predictions(path, self.data.emotions)
        return self._loaded[path]

    def _check_recorded(self, run: Run, ids: list[str], pred: np.ndarray, labels: np.ndarray) -> None:
        recorded, where = run.recorded_mean_pearson(self.split)
        if recorded is None:
            return
        mine = stats.seed_spread(stats.pearson_runs(pred, labels)[0])[0]
        if math.isnan(mine) or abs(mine - recorded) > RECORDED_TOL:
            raise ValueError(f"{where}: recorded mean Pearson {recorded:.6f}, but its predictions score "
                             f"{mine:.6f} against the {self.split} labels of {self.data.name}: the run was "
                             "scored against other labels (another build of the dataset?)")

    def run_row(self, key: str, spec: dict[str, Any]) -> Row:
        label = spec.get("label", key)
        where = spec.get("where", {})
        hits = []
        for run in self._candidates(spec["runs"]):
            if not matches(run, where):
                continue
            if run.dataset != self.data.name:
                self.other_dataset[run.name] = run.dataset or "(none recorded)"
                continue
            hits.append(run)
        shown = ", ".join(f"{k}={v}" for k, v in where.items()) or "any"
        if not hits:
            return Row(key, label, "not run", f"no run folder matches {', '.join(spec['runs'])} with {shown} "
                                             f"on {self.data.name}")
        settings = group_settings(hits)
        if len(settings) > 1:
            return Row(key, label, "ambiguous", f"runs of {len(settings)} settings match ({', '.join(settings)}); "
                                               "narrow this row's runs/where in a --rows file")
        setting, runs = next(iter(settings.items()))
        row = self._score(Row(key, label, "ok", setting=setting, runs=list(runs)),
                          [self._predictions(r, self.split) for r in runs], check=True)
        query = query_summary(runs[0], self.split)
        if row.ok and query is not None:
            row.extra["query"] = query
        return row

    def _score(self, row: Row, preds: list[tuple[list[str], np.ndarray]], *, check: bool) -> Row:
        """Fill the ok row's numbers from each run's (ids, predictions)."""
        split = self.data.splits[self.split]
        sets = []
        for run, (ids, pred) in zip(row.runs, preds):
            rows = split.rows(ids, str(run.predictions_file(self.split)))
            if check:
                self._check_recorded(run, ids, pred, split.labels[rows])
            sets.append(set(ids))
        common = set.intersection(*sets)
        row.ids = [cid for cid in split.ids if cid in common]  # dataset order
        if len(row.ids) < 2:
            return dataclasses.replace(row, status="not run",
                                       reason=f"its runs share {len(row.ids)} clip(s) of the {self.split} split")
        stack = []
        for ids, pred in preds:
            pos = {cid: k for k, cid in enumerate(ids)}
            stack.append(pred[[pos[c] for c in row.ids]])
        row.stack = np.stack(stack)
        row.labels = split.labels[split.rows(row.ids, "the dataset")]
        row.per_run = stats.pearson_runs(row.stack, row.labels)
        row.boot = stats.bootstrap_pearson(row.stack, row.labels, n_boot=self.boot.n_boot, seed=self.boot.seed,
                                           ci=self.boot.ci)
        row.spread = stats.seed_spread([stats.seed_spread(r)[0] for r in row.per_run])
        dropped = {r.name: len(s) - len(common) for r, s in zip(row.runs, sets) if len(s) > len(common)}
        if dropped:
            row.extra["clips_not_shared"] = dropped
        return row

    # ---------------------------------------------------------------------------------------- fusion

    def _train_predictions(self, run: Run) -> tuple[str, str] | None:
        for kind, name in TRAIN_PREDICTION_FILES:
            if (run.path / name).is_file():
                return kind, name
        return None

    def fusion_row(self, key: str, spec: dict[str, Any], members: list[Row]) -> Row:
        """Late fusion of member rows (fusion.py): weights fit per seed on train predictions, applied to dev."""
        label = spec.get("label", key)
        absent = [m.key for m in members if not m.ok]
        if absent:
            return Row(key, label, "not run", f"member row(s) not available: {', '.join(absent)}")
        if "train" not in self.data.splits or not self.data.splits["train"].labelled:
            return Row(key, label, "not run", f"{self.data.name} has no labelled train split to fit weights on")
        by_seed = [{r.seed: r for r in m.runs if r.seed is not None} for m in members]
        seeds = sorted(set.intersection(*(set(s) for s in by_seed)))
        if not seeds:
            return Row(key, label, "not run", "the member rows share no seed")
        sources = {}
        lacking = []
        for s in seeds:
            for m in by_seed:
                found = self._train_predictions(m[s])
                if found is None:
                    lacking.append(m[s].name)
                else:
                    sources[m[s].name] = found
        if lacking:
            return Row(key, label, "not run",
                       f"no train predictions in {', '.join(lacking)}: write them with `python -m eri_jax.evaluate "
                       "--run-dir <checkpoints>/<run> --split train` (or cross-fitted predictions_train_oof.csv)")
        kinds = {k for k, _ in sources.values()}
        kind = "out-of-fold" if kinds == {"out-of-fold"} else "in-sample"
        filename = dict(TRAIN_PREDICTION_FILES)[kind]
        train = self.data.splits["train"]
        weights, fused_runs, dev_preds = {}, [], []
        for s in seeds:
            runs = [m[s] for m in by_seed]
            tr = [self._predictions(r, "train", filename) for r in runs]
            for r, (ids, _) in zip(runs, tr):
                train.rows(ids, str(r.path / filename))  # unknown IDs are an error naming the file
            common = set.intersection(*(set(ids) for ids, _ in tr))
            ids = [c for c in train.ids if c in common]
            if len(ids) < 2:
                return Row(key, label, "not run", f"seed {s}: the members' train predictions share {len(ids)} clip(s)")
            aligned = [p[[dict(zip(i, range(len(i))))[c] for c in ids]] for i, p in tr]
            fit = fusion.fit_fusion_weights(aligned, train.labels[train.rows(ids, "the dataset")],
                                            per_emotion=bool(spec.get("per_emotion", True)),
                                            emotions=self.data.emotions)
            weights[str(s)] = fit.to_json(self.data.emotions, [m.key for m in members])
            # Dev: the members' predictions of this seed on the clips every member predicted.
            dev = [self._predictions(r, self.split) for r in runs]
            dev_common = set.intersection(*(set(i) for i, _ in dev))
            dev_ids = [c for c in self.data.splits[self.split].ids if c in dev_common]
            dev_aligned = [p[[dict(zip(i, range(len(i))))[c] for c in dev_ids]] for i, p in dev]
            dev_preds.append((dev_ids, fusion.apply_fusion(fit, dev_aligned)))
            fused_runs.append(Run(path=runs[0].path, name=" + ".join(r.name for r in runs),
                                  attrs={"seed": s}))
        row = Row(key, label, "ok", setting=" + ".join(m.setting for m in members), runs=fused_runs)
        row.extra["fusion"] = {"members": [m.key for m in members], "weights_fit_on": kind,
                               "train_files": filename, "weights_per_seed": weights}
        return self._score(row, dev_preds, check=False)
