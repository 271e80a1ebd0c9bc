"""The report's Explanations section: every run folder under the runs folder that holds `explain_<split>.json`
(written by `python -m eri_jax.explain`) gives its per-emotion block ranking and its figures (copied beside the
report). Explanations of runs made on another dataset are named and left out; no file, no section.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from eri_jax.report.runs import read_attrs
from eri_jax.result_files import atomic_path

FIGURES = ("modalities", "frames", "attention")  # explain_<split>_<kind>.png, in the order shown


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    keys = ("run", "emotions", "blocks", "modality_mean_abs", "modality_rank")
    missing = [k for k in keys if k not in data] if isinstance(data, dict) else []
    if not isinstance(data, dict) or missing:
        raise ValueError(f"{path}: not an explain_<split>.json of `python -m eri_jax.explain` "
                         f"(missing {', '.join(missing) or 'an object'})")
    return data


def collect_explanations(runs_dir: Path, out: Path, dataset: str, split: str) -> list[dict[str, Any]]:
    """One entry per explained run folder (sorted by name); its PNGs copied into `out` as
    `explain_<run>_<split>_<kind>.png`. An entry of another dataset has `status` "left out" and no figures."""
    entries = []
    for path in sorted(Path(runs_dir).rglob(f"explain_{split}.json")):
        folder = path.parent
        name = folder.relative_to(runs_dir).as_posix()
        data = _read(path)
        made_on = data.get("dataset") or read_attrs(folder, split).get("dataset")
        entry: dict[str, Any] = {"run": name, "file": path.relative_to(runs_dir).as_posix(),
                                 "dataset": made_on}
        if made_on != dataset:
            entries.append({**entry, "status": "left out", "reason": f"made on {made_on or '(none recorded)'}"})
            continue
        figures = []
        for kind in FIGURES:
            src = folder / f"explain_{split}_{kind}.png"
            if src.is_file():
                target = f"explain_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}_{split}_{kind}.png"
                with atomic_path(out / target) as tmp:
                    shutil.copyfile(src, tmp)
                figures.append({"kind": kind, "file": target})
        attention = data.get("attention")
        entry.update(status="ok", model=data.get("model"), checkpoint=data.get("checkpoint"),
                     epoch=data.get("epoch"), method=data.get("method"), n_clips=data.get("n_clips"),
                     emotions=data["emotions"], blocks=[b["name"] for b in data["blocks"]],
                     modality_mean_abs=data["modality_mean_abs"], modality_rank=data["modality_rank"],
                     completeness=data.get("completeness"),
                     attention=None if attention is None else {"method": attention["method"],
                                                               "split_mean": attention["split_mean"]},
                     figures=figures)
        entries.append(entry)
    return entries


def markdown_lines(report: dict[str, Any], tag: str) -> list[str]:
    """The section, or nothing when no run was explained."""
    entries = report.get("explanations") or []
    if not entries:
        return []
    lines = [f"## Explanations{tag}", "",
             "From `python -m eri_jax.explain` (integrated gradients per input block; for ViPER also the latents' "
             "cross-attention over the frames). The table gives, per emotion, the mean over the split's clips of "
             "|a block's attribution summed over the clip's frames|, and the blocks ranked by it. Attention is not "
             "attribution: the attention weights are the same for every emotion and say which frames the latents "
             "read, not how much a prediction would change without them.", ""]
    for e in entries:
        if e["status"] != "ok":
            lines += [f"- {e['run']}: left out, {e['reason']} (`{e['file']}`).", ""]
            continue
        blocks = e["blocks"]
        lines += [f"### {e['run']} ({e['model']}, {report['split']} split, checkpoint {e['checkpoint']}, "
                  f"epoch {e['epoch']}, {e['n_clips']} clips)", "",
                  "| Emotion | " + " | ".join(blocks) + " | Ranking |", "|---|" + "---:|" * len(blocks) + "---|"]
        for emotion in e["emotions"]:
            values = e["modality_mean_abs"][emotion]
            lines.append(f"| {emotion} | " + " | ".join(f"{values[b]:.4g}" for b in blocks)
                         + f" | {' > '.join(e['modality_rank'][emotion])} |")
        lines += ["", f"Method: {e['method']}."]
        c = e.get("completeness")
        if c:
            lines.append(f"Completeness: largest |sum of attributions − (f(x) − f(baseline))| = "
                         f"{c['max_abs_error']:.2e}, beside a largest change of {c['max_abs_change']:.3g}.")
        if e["attention"]:
            lines.append(f"Attention: {e['attention']['method']}.")
        lines.append("")
        lines += [f"![{e['run']}: {f['kind']}]({f['file']})" for f in e["figures"]]
        lines.append("")
    return lines
