"""`build_report`: collect runs into the paper's tables and figures; write report.json, report.md and PNGs.

Everything the Markdown shows is in report.json (rendered from it by markdown.py). Rows whose runs are
absent are "not run", with the reason; nothing is filled in from the paper.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from eri_jax.evaluation import stats
from eri_jax.evaluation.metrics import binned_counts, row_normalise
from eri_jax.evaluation.plots import plot_confusion
from eri_jax.report import markdown
from eri_jax.report.collect import BootstrapSettings, Collector, Row
from eri_jax.report.explanations import collect_explanations
from eri_jax.report.figures import plot_label_density
from eri_jax.report.labels import DatasetLabels, label_density, label_stats
from eri_jax.report.rows import load_rows, paper_results
from eri_jax.result_files import json_safe, write_json, write_text


def _tagged(text: str, data: DatasetLabels, sep: str = " ") -> str:
    """`text` followed by what the data is (synthetic, random-weight features); `sep="\n"` for plot titles."""
    return f"{text}{sep}({', '.join(data.tags)})" if data.tags else text


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "x"


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _table2(data: DatasetLabels, paper: dict) -> dict[str, Any]:
    splits = {s: label_stats(v.labels, data.emotions) for s, v in data.splits.items() if v.labelled}
    return {"splits": splits, "std": "population (ddof=0), labelled clips only",
            "paper": {e: {"mean": m, "std": s} for e, (m, s) in paper["table2_label_mean_std"].items()}}


def _figure1(data: DatasetLabels, out: Path) -> dict[str, Any]:
    result = {}
    for split, v in data.splits.items():
        if not v.labelled:
            continue
        dens = {e: label_density(v.labels[:, k]) for k, e in enumerate(data.emotions)}
        name = f"figure1_label_density_{split}.png"
        plot_label_density(dens, out / name, title=_tagged(
            f"Figure 1: label density per emotion\n{data.name}, {split} split", data, "\n"))
        result[split] = {"file": name, "emotions": dens}
    return result


def _run_table(collector: Collector, specs: dict[str, Any], paper: dict[str, float], n_split: int,
               rows_out: dict[str, Row] | None = None) -> list[dict[str, Any]]:
    out = []
    for key, spec in specs.items():
        row = collector.run_row(key, spec)
        if rows_out is not None:
            rows_out[key] = row
        out.append(row.to_json(collector.data.emotions, paper.get(key), n_split))
    return out


def _figures_5_8(rows: dict[str, Row], spec: dict, data: DatasetLabels, split: str, paper: dict,
                 out: Path) -> list[dict[str, Any]]:
    result = []
    for method, key in spec["methods"].items():
        row = rows[key]
        for emotion in spec["emotions"]:
            entry: dict[str, Any] = {"method": method, "row": key, "emotion": emotion,
                                     "paper": paper.get(f"{method}_{emotion.lower().replace('-', '_')}")}
            if not row.ok:
                entry.update(status="not run", reason=f"row {key} is {row.status}")
            elif emotion not in data.emotions:
                entry.update(status="not run", reason=f"{data.name} has no emotion {emotion!r}")
            else:
                k = data.emotions.index(emotion)
                # The run shown: the row's lowest seed (runs are sorted by seed), not its best.
                labels, pred = row.labels[:, k], row.stack[0][:, k]
                keep = ~np.isnan(labels)
                counts = binned_counts(labels, pred)
                p = pred[keep]
                rng = {"mean": float(p.mean()), "std": float(p.std()), "min": float(p.min()), "max": float(p.max())}
                r = stats.pearson_runs(pred[:, None], labels[:, None])[0, 0]
                name = f"figure_confusion_{_file_stem(method)}_{_file_stem(emotion)}.png"
                title = _tagged(f"{row.label}\n{emotion}, {split} split, r = "
                                + ("n/a" if math.isnan(r) else f"{r:.4f}") + f", run {row.runs[0].name}", data, "\n")
                title += (f"\npredictions: mean {rng['mean']:.3f}, std {rng['std']:.3f}, min {rng['min']:.3f}, "
                          f"max {rng['max']:.3f}")
                plot_confusion(row_normalise(counts), out / name, title=title)
                entry.update(status="ok", run=row.runs[0].name, seed=row.runs[0].seed, n_clips=int(keep.sum()),
                             pearson=_num(r), prediction_range=rng, counts=counts.tolist(), file=name)
            result.append(entry)
    return result


def _paired(rows: dict[str, Row], pairs: list[list[str]], data: DatasetLabels, split: str,
            boot: BootstrapSettings) -> list[dict[str, Any]]:
    out = []
    for a, b in pairs:
        entry: dict[str, Any] = {"a": a, "b": b, "label_a": rows[a].label, "label_b": rows[b].label}
        absent = [k for k in (a, b) if not rows[k].ok]
        if absent:
            entry.update(status="not run", reason=f"row(s) not available: {', '.join(absent)}")
            out.append(entry)
            continue
        common = set(rows[a].ids) & set(rows[b].ids)
        ids = [c for c in data.splits[split].ids if c in common]
        if len(ids) < 2:
            entry.update(status="not run", reason=f"the rows share {len(ids)} clip(s)")
            out.append(entry)
            continue

        def take(row: Row) -> np.ndarray:
            pos = {c: k for k, c in enumerate(row.ids)}
            return row.stack[:, [pos[c] for c in ids]]

        labels = data.splits[split].labels[data.splits[split].rows(ids, "the dataset")]
        res = stats.paired_bootstrap(take(rows[a]), take(rows[b]), labels, n_boot=boot.n_boot, seed=boot.seed,
                                     ci=boot.ci)
        entry.update(status="ok", n_seeds_a=len(rows[a].runs), n_seeds_b=len(rows[b].runs),
                     **{k: (_num(v) if isinstance(v, float) else v) for k, v in res.items()})
        out.append(entry)
    return out


def _table5(rows: dict[str, Row], spec: dict[str, str], data: DatasetLabels, paper: dict) -> dict[str, Any]:
    columns = paper["table5_per_emotion"]["columns"]
    out = {"columns": [*data.emotions, "Average"], "rows": []}
    for paper_key, key in spec.items():
        row = rows[key]
        ref = paper["table5_per_emotion"].get(paper_key)
        entry: dict[str, Any] = {"paper_key": paper_key, "row": key, "label": row.label, "status": row.status,
                                 "paper": dict(zip(columns, ref)) if ref else None}
        if row.ok:
            b = row.boot
            entry["pearson"] = {e: {"r": _num(r), "lo": _num(lo), "hi": _num(hi)}
                                for e, r, lo, hi in zip(data.emotions, b.per_emotion, b.per_emotion_lo,
                                                        b.per_emotion_hi)}
            entry["pearson"]["Average"] = {"r": _num(b.mean), "lo": _num(b.mean_lo), "hi": _num(b.mean_hi)}
            entry["n_seeds"] = len(row.runs)
        else:
            entry["reason"] = row.reason
        out["rows"].append(entry)
    return out


def build_report(runs_dir: str | Path, out: str | Path, data: DatasetLabels, *, rows: dict | None = None,
                 split: str = "dev", boot: BootstrapSettings | None = None) -> dict[str, Any]:
    """Write report.json, report.md and the PNGs into `out`; return the report dict (= report.json).

    data: the dataset's labels (`labels.load_dataset_labels`); rows: the row mapping (`rows.load_rows`,
    default mapping when None); boot: bootstrap settings (1000 resamples, seed 0, 95 %).
    """
    rows = rows if rows is not None else load_rows()
    boot = boot or BootstrapSettings()
    paper = paper_results()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    collector = Collector(Path(runs_dir), data, split, boot)
    n_split = len(data.splits[split].ids)

    t3_rows: dict[str, Row] = {}
    table3 = []
    fusion_specs = {k: s for k, s in rows["table3"].items() if "fusion" in s}
    for key, spec in rows["table3"].items():
        if key in fusion_specs:
            continue
        t3_rows[key] = collector.run_row(key, spec)
    for key, spec in fusion_specs.items():
        t3_rows[key] = collector.fusion_row(key, spec, [t3_rows[m] for m in spec["fusion"]])
    # Rows beyond the paper (Qwen2.5-Omni, few-shot) are shown when run, left out when not (`reproduce
    # --data-root` runs them only with --beyond-paper); the paper's rows always show their status.
    unrun = {k for k, r in t3_rows.items() if rows["table3"][k].get("beyond_paper") and r.status == "not run"}
    for key in rows["table3"]:
        if key not in unrun:
            table3.append(t3_rows[key].to_json(data.emotions, paper["table3_mean_pearson"].get(key), n_split))

    report: dict[str, Any] = {
        "title": _tagged(f"Paper reproduction report: {data.name} [{data.source}]", data),
        "dataset": {"name": data.name, "source": data.source, "synthetic": data.synthetic,
                    "random_weights": data.random_weights, "emotions": data.emotions,
                    "splits": {s: len(v.ids) for s, v in data.splits.items()}, "tags": data.tags},
        "split": split,
        "bootstrap": {"n_boot": boot.n_boot, "seed": boot.seed, "ci": boot.ci},
        "paper_source": paper["source"],
        "table2": _table2(data, paper),
        "figure1": _figure1(data, out),
        "table3": table3,
        "table4": _run_table(collector, rows["table4"], paper["table4_probe_activation_prompt2"], n_split),
        "table5": _table5(t3_rows, rows["table5"], data, paper),
        "table6": _run_table(collector, rows["table6"], paper["table6_modality_ablation_mean_pearson"], n_split),
        "figures_5_8": _figures_5_8(t3_rows, rows["figures"], data, split, paper["figures_5_to_8_prediction_stats"],
                                    out),
        "paired": _paired(t3_rows, [p for p in rows["paired"] if not unrun & set(p)], data, split, boot),
        "explanations": collect_explanations(Path(runs_dir), out, data.name, split),
    }
    report["runs_left_out"] = [{"run": r, "dataset": d} for r, d in sorted(collector.other_dataset.items())]
    report = json_safe(report)  # returned as written: plain JSON values, NaN as None
    write_json(out / "report.json", report)
    write_text(out / "report.md", markdown.render(report))
    return report


def main_summary(report: dict[str, Any], out: Path) -> str:
    """One line per Table 3 row for the terminal."""
    lines = [report["title"]]
    for r in report["table3"]:
        value = (f"{r['mean_pearson']:.4f}" if r.get("mean_pearson") is not None else "n/a") if r["status"] == "ok" \
            else r["status"]
        lines.append(f"  {r['label']}: {value}")
    lines.append(f"report: {out / 'report.md'}")
    return "\n".join(lines)

