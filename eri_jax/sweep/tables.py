"""Sweep tables: mean ± std over seeds per setting, and the per-emotion breakdown (CSV and Markdown).

For each setting (model, inputs, activation, lr) over its seeds s = 1..n with defined scores x_s:

    mean = sum(x_s) / n,    std = sqrt(sum((x_s - mean)^2) / (n - 1))   (sample std, ddof = 1)

A run whose dev Pearson is undefined (NaN) is left out of its setting's mean and std, and counted in
`n_undefined`; std is NaN (shown `n/a`) with fewer than two defined seeds. The same holds per emotion.

Files (`write_tables`): `summary.csv` (one row per setting), `per_emotion.csv` (setting x emotion),
`runs.csv` (one row per run), `summary.md` (both tables, paper style, 4 decimals).
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eri_jax.result_files import atomic_path, write_text
from eri_jax.sweep.grid import RunSpec, Setting


@dataclasses.dataclass
class RunResult:
    """One finished run: best epoch (1-based; 0 = no epoch had a defined score) and its dev Pearson."""

    run: RunSpec
    best_epoch: int
    dev_mean_pearson: float         # at the best epoch (NaN when undefined)
    dev_pearson: np.ndarray         # [E] per emotion at the best epoch
    diverged_epoch: int | None = None  # first epoch whose train loss was not finite


@dataclasses.dataclass
class SummaryRow:
    """Mean ± std over the seeds of one setting, overall and per emotion."""

    setting: Setting
    seeds: list[int]
    mean: float
    std: float
    n_undefined: int
    per_emotion_mean: np.ndarray
    per_emotion_std: np.ndarray
    best_epochs: list[int]


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample std, number of NaN values left out) of `values`; NaN where undefined."""
    v = np.asarray(values, np.float64)
    defined = v[~np.isnan(v)]
    mean = float(defined.mean()) if defined.size else math.nan
    std = float(defined.std(ddof=1)) if defined.size >= 2 else math.nan
    return mean, std, int(v.size - defined.size)


def aggregate(results: Sequence[RunResult]) -> list[SummaryRow]:
    """One row per setting, in order of first appearance; seeds in run order."""
    by_setting: dict[tuple, list[RunResult]] = {}
    for r in results:
        by_setting.setdefault(r.run.setting.key(), []).append(r)
    rows = []
    for group in by_setting.values():
        mean, std, n_undef = mean_std([r.dev_mean_pearson for r in group])
        per = np.stack([np.asarray(r.dev_pearson, np.float64) for r in group])  # [seeds, E]
        stats = [mean_std(per[:, e]) for e in range(per.shape[1])]
        rows.append(SummaryRow(
            setting=group[0].run.setting, seeds=[r.run.seed for r in group], mean=mean, std=std,
            n_undefined=n_undef, per_emotion_mean=np.array([s[0] for s in stats]),
            per_emotion_std=np.array([s[1] for s in stats]), best_epochs=[r.best_epoch for r in group]))
    return rows


def fmt(value: float, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def fmt_pm(mean: float, std: float, digits: int = 4) -> str:
    """`0.2333 ± 0.0040`; `0.2333 ± n/a` for one seed; `n/a` when the mean is undefined."""
    return "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {fmt(std, digits)}"


def _setting_fields(s: Setting) -> dict[str, object]:
    return {"model": s.model, "inputs": s.inputs.label, "features": "+".join(s.inputs.features),
            "activation": s.activation or "", "lr": f"{s.lr:g}"}


def _num(v: float) -> str:
    return "" if v is None or math.isnan(v) else repr(float(v))


def summary_table(rows: Sequence[SummaryRow], emotions: Sequence[str]) -> list[dict[str, object]]:
    """The rows of `summary.csv` as dicts (empty string where undefined)."""
    out = []
    for row in rows:
        d = {**_setting_fields(row.setting), "n_seeds": len(row.seeds),
             "n_undefined": row.n_undefined, "seeds": " ".join(map(str, row.seeds)),
             "dev_mean_pearson_mean": _num(row.mean), "dev_mean_pearson_std": _num(row.std),
             "best_epoch_mean": _num(float(np.mean(row.best_epochs)))}
        for e, m, s in zip(emotions, row.per_emotion_mean, row.per_emotion_std):
            d[f"{e}_mean"], d[f"{e}_std"] = _num(m), _num(s)
        out.append(d)
    return out


def markdown(rows: Sequence[SummaryRow], emotions: Sequence[str], *, title: str, notes: Sequence[str] = ()) -> str:
    """Both tables as Markdown: dev mean Pearson per setting, then per emotion (mean ± std over seeds)."""
    lines = [f"# {title}", ""]
    lines += [f"{n}" for n in notes] + ([""] if notes else [])
    lines += ["Dev mean Pearson r, mean ± sample std over seeds.", "",
              "| Model | Inputs | Activation | LR | Seeds | Dev mean Pearson | Best epoch (mean) |",
              "|---|---|---|---|---|---|---|"]
    for row in rows:
        s = row.setting
        seeds = f"{len(row.seeds)}" + (f" ({row.n_undefined} undefined)" if row.n_undefined else "")
        lines.append(f"| {s.model} | {s.inputs.label} | {s.activation or '-'} | {s.lr:g} | {seeds} | "
                     f"{fmt_pm(row.mean, row.std)} | {np.mean(row.best_epochs):.1f} |")
    lines += ["", "Per emotion (dev Pearson r, mean ± sample std over seeds):", "",
              "| Setting | " + " | ".join(emotions) + " | Average |",
              "|---|" + "---|" * (len(emotions) + 1)]
    for row in rows:
        s = row.setting
        name = " ".join(p for p in (s.model, s.inputs.label, s.activation, f"lr {s.lr:g}") if p)
        cells = [fmt_pm(m, sd) for m, sd in zip(row.per_emotion_mean, row.per_emotion_std)]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {fmt_pm(row.mean, row.std)} |")
    return "\n".join(lines) + "\n"


def runs_table(results: Sequence[RunResult], emotions: Sequence[str]) -> list[dict[str, object]]:
    """The rows of `runs.csv` as dicts: one per run."""
    out = []
    for r in results:
        d = {"run_id": r.run.run_id, **_setting_fields(r.run.setting), "seed": r.run.seed,
             "best_epoch": r.best_epoch, "dev_mean_pearson": _num(r.dev_mean_pearson),
             "diverged_epoch": "" if r.diverged_epoch is None else r.diverged_epoch}
        d.update({e: _num(v) for e, v in zip(emotions, r.dev_pearson)})
        out.append(d)
    return out


def write_csv(path: Path, rows: Sequence[dict[str, object]]) -> None:
    """Write dict rows (same keys) as CSV atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def write_tables(out_dir: str | os.PathLike, results: Sequence[RunResult], emotions: Sequence[str], *,
                 title: str, notes: Sequence[str] = ()) -> list[SummaryRow]:
    """Aggregate `results` and write summary.csv, per_emotion.csv, runs.csv and summary.md into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = aggregate(results)
    write_csv(out_dir / "summary.csv", summary_table(rows, emotions))
    per_emotion = []
    for row in rows:
        for e, m, s in zip(emotions, row.per_emotion_mean, row.per_emotion_std):
            per_emotion.append({**_setting_fields(row.setting), "emotion": e, "n_seeds": len(row.seeds),
                                "dev_pearson_mean": _num(m), "dev_pearson_std": _num(s)})
    write_csv(out_dir / "per_emotion.csv", per_emotion)
    write_csv(out_dir / "runs.csv", runs_table(results, emotions))
    md = markdown(rows, emotions, title=title, notes=notes)
    write_text(out_dir / "summary.md", md)
    return rows
