"""report.md, rendered from the report dict (so the Markdown never shows a number report.json lacks)."""
from __future__ import annotations

from typing import Any

from eri_jax.report.explanations import markdown_lines as _explanations

NOT_RUN = "not run"


def _f(v, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _p(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _ci(lo, hi) -> str:
    return "n/a" if lo is None or hi is None else f"[{lo:.4f}, {hi:.4f}]"


def _tag(report: dict) -> str:
    tags = report["dataset"]["tags"]
    return f" ({', '.join(tags)})" if tags else ""


def _method_table(rows: list[dict], first: str, ci_pct: str) -> list[str]:
    lines = [f"| {first} | Mean Pearson | {ci_pct} CI (clips) | Seed std | Seeds | Clips | Paper (Hume-Reaction dev) |",
             "|---|---:|---|---:|---:|---:|---:|"]
    notes = []
    for r in rows:
        paper = "—" if r.get("paper") is None else _f(r["paper"])
        if r["status"] != "ok":
            lines.append(f"| {r['label']} | {r['status']} | — | — | — | — | {paper} |")
            notes.append(f"- {r['label']}: {r['reason']}")
            continue
        clips = f"{r['n_clips']}" + (f" of {r['n_split']}" if r["n_clips"] != r["n_split"] else "")
        lines.append(f"| {r['label']} | {_f(r['mean_pearson'])} | {_ci(r['ci_lo'], r['ci_hi'])} | "
                     f"{_f(r['seed_std'])} | {r['n_seeds']} | {clips} | {paper} |")
    if notes:
        lines += ["", "Rows without numbers:", *notes]
    return lines


def _intro(report: dict) -> list[str]:
    d, b = report["dataset"], report["bootstrap"]
    pct = f"{b['ci'] * 100:g} %"
    lines = [f"# {report['title']}", ""]
    if d["tags"]:
        lines += [f"**These numbers come from {', '.join(d['tags'])}.** They exercise the pipeline; they are "
                  "not comparable with the paper's numbers, which are on the Hume-Reaction development split.", ""]
    lines += [
        f"- Dataset: `{d['name']}` (source: {d['source']}), emotions: {', '.join(d['emotions'])}; clips per split: "
        + ", ".join(f"{s} {n}" for s, n in d["splits"].items()) + ".",
        f"- Methods are scored on the **{report['split']}** split: Pearson r per emotion, unweighted mean over "
        "emotions (eri_jax/evaluation/metrics.py).",
        f"- Uncertainty: {pct} percentile bootstrap intervals over clips ({b['n_boot']} resamples, seed "
        f"{b['seed']}); with several seeds, the number is the mean over seeds, its interval is for that mean, "
        "and 'Seed std' is the sample std (ddof=1) over seeds.",
        f"- Paper: {report['paper_source']}",
        "",
    ]
    return lines


def _table2(report: dict) -> list[str]:
    t = report["table2"]
    splits = list(t["splits"])
    lines = [f"## Table 2: label mean ± std per emotion{_tag(report)}", "",
             "| Emotion | " + " | ".join(splits) + " | Paper |", "|---|" + "---:|" * (len(splits) + 1)]
    for e in report["dataset"]["emotions"]:
        cells = []
        for s in splits:
            v = t["splits"][s][e]
            cells.append("n/a" if v["mean"] is None else f"{v['mean']:.4f} ± {v['std']:.4f} (n={v['n']})")
        p = t["paper"].get(e)
        cells.append(f"{p['mean']:.4f} ± {p['std']:.4f}" if p else "—")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines += ["", f"Std: {t['std']}.", ""]
    return lines


def _figure1(report: dict) -> list[str]:
    lines = [f"## Figure 1: label density per emotion{_tag(report)}", ""]
    for split, f in report["figure1"].items():
        lines.append(f"![Figure 1, {split} split]({f['file']})")
        flat = [f"{e} (constant {d['constant']:.4g})" if d["constant"] is not None else f"{e} (no labelled clip)"
                for e, d in f["emotions"].items() if d["density"] is None]
        if flat:
            lines.append(f"No density for {', '.join(flat)} in the {split} split: drawn as a vertical line.")
        lines.append("")
    return lines


def _fusion_notes(report: dict) -> list[str]:
    lines = []
    for r in report["table3"]:
        fu = r.get("fusion")
        if r["status"] != "ok" or not fu:
            continue
        lines += [f"Late fusion weights ({r['label']}), fit on **{fu['weights_fit_on']}** train predictions "
                  f"(`{fu['train_files']}`), never on {report['split']} labels"
                  + (" — in-sample predictions favour the model that fits train more closely" if
                     fu["weights_fit_on"] == "in-sample" else "") + ":", ""]
        members = fu["members"]
        lines += ["| Seed | Emotion | " + " | ".join(members) + " | Train r |",
                  "|---|---|" + "---:|" * (len(members) + 1)]
        for seed, w in fu["weights_per_seed"].items():
            for e, ws in w["weights"].items():
                lines.append(f"| {seed} | {e} | " + " | ".join(f"{ws[m]:.2f}" for m in members)
                             + f" | {_f(w['train_pearson'][e])} |")
        lines.append("")
    return lines


def _query_notes(report: dict) -> list[str]:
    """Querying rows: how many answers gave scores, and how degenerate the parsed scores are."""
    rows = [r for r in report["table3"] if r["status"] == "ok" and r.get("query")]
    if not rows:
        return []
    lines = ["Querying rows: answers giving all / some / no scores, and the degeneracy (the most frequent parsed "
             "value and its share of all answers, for the emotion where that share is largest; `none parsed`: "
             "no score was found in any answer, every score is the fill value):", "",
             "| Method | Shots | Answers | All | Some | None | No answer | Most frequent value |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        q, top = r["query"], r["query"]["most_degenerate"]
        shown = "none parsed" if top is None else \
            f"{top['emotion']}: {top['most_frequent']:g} in {100 * top['share_of_answers']:.1f} %"
        lines.append(f"| {r['label']} | {q['shots']} | {q['answers']} | {q['with_all_scores']} | "
                     f"{q['with_some_scores']} | {q['with_no_score']} | {q['no_answer']} | {shown} |")
    return lines + [""]


def _table5(report: dict) -> list[str]:
    t = report["table5"]
    cols = t["columns"]
    lines = [f"## Table 5: Pearson r per emotion, ViPER text variants{_tag(report)}", "",
             "| Model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for r in t["rows"]:
        if r["status"] == "ok":
            lines.append(f"| {r['label']} | " + " | ".join(_f(r["pearson"][c]["r"]) for c in cols) + " |")
        else:
            lines.append(f"| {r['label']} | " + " | ".join(NOT_RUN for _ in cols) + " |")
        if r["paper"]:
            lines.append(f"| paper: {r['label']} | " + " | ".join(_f(r["paper"].get(c)) for c in cols) + " |")
    ok = [r for r in t["rows"] if r["status"] == "ok"]
    if ok:
        ci = report["bootstrap"]["ci"] * 100
        lines += ["", f"{ci:g} % bootstrap intervals:", "", "| Model | " + " | ".join(cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for r in ok:
            lines.append(f"| {r['label']} | " + " | ".join(_ci(r["pearson"][c]["lo"], r["pearson"][c]["hi"])
                                                         for c in cols) + " |")
    return lines + [""]


def _figures(report: dict) -> list[str]:
    lines = [f"## Figures 5–8: binned confusion matrices and prediction ranges{_tag(report)}", "",
             "Rows are label bins, columns prediction bins (width 0.1, predictions clipped to [0, 1]), each row "
             "normalised. The run shown is the row's lowest seed. Ranges are over the clips with a label.", "",
             "| Method | Emotion | Run | r | Pred. mean | std | min | max | Paper mean | std | min | max |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    images = []
    for f in report["figures_5_8"]:
        p = f.get("paper") or {}
        paper = " | ".join(_f(p.get(k)) for k in ("mean", "std", "min", "max")) if p else "— | — | — | —"
        if f["status"] != "ok":
            lines.append(f"| {f['method']} | {f['emotion']} | {NOT_RUN}: {f['reason']} | — | — | — | — | — | {paper} |")
            continue
        g = f["prediction_range"]
        lines.append(f"| {f['method']} | {f['emotion']} | {f['run']} | {_f(f['pearson'])} | {_f(g['mean'])} | "
                     f"{_f(g['std'])} | {_f(g['min'])} | {_f(g['max'])} | {paper} |")
        images.append(f"![{f['method']}, {f['emotion']}]({f['file']})")
    return lines + [""] + images + ([""] if images else [])


def _paired(report: dict) -> list[str]:
    ci = report["bootstrap"]["ci"] * 100
    lines = [f"## Paired bootstrap tests{_tag(report)}", "",
             "Both methods are scored on the same resampled clips; diff = mean Pearson of A minus B. Two-sided "
             "p = min(1, 2 min((#{d ≤ 0} + 1)/(B + 1), (#{d ≥ 0} + 1)/(B + 1))) over the B resampled "
             "differences d (eri_jax/evaluation/stats.py).", "",
             f"| A | B | Diff (A − B) | {ci:g} % CI | p | Clips |", "|---|---|---:|---|---:|---:|"]
    for p in report["paired"]:
        if p["status"] != "ok":
            lines.append(f"| {p['label_a']} | {p['label_b']} | {NOT_RUN} | — | — | {p['reason']} |")
            continue
        diff = "n/a" if p["diff"] is None else f"{p['diff']:+.4f}"  # undefined when a method's r is
        lines.append(f"| {p['label_a']} | {p['label_b']} | {diff} | {_ci(p['lo'], p['hi'])} | "
                     f"{_p(p['p_value'])} | {p['n_clips']} |")
    return lines + [""]


def render(report: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    ci = f"{report['bootstrap']['ci'] * 100:g} %"
    tag = _tag(report)
    lines = _intro(report) + _table2(report) + _figure1(report)
    lines += [f"## Table 3: mean Pearson r on the {report['split']} split{tag}", ""]
    lines += _method_table(report["table3"], "Method", ci) + [""] + _fusion_notes(report) + _query_notes(report)
    lines += [f"## Table 4: probe activations{tag}", ""]
    lines += _method_table(report["table4"], "Activation", ci) + [""]
    lines += _table5(report)
    lines += [f"## Table 6: ViPER modality ablation{tag}", ""]
    lines += _method_table(report["table6"], "Modalities", ci) + [""]
    lines += _figures(report) + _paired(report) + _explanations(report, tag)
    if report["runs_left_out"]:
        lines += ["## Runs left out", "", f"These runs match a row but were made on another dataset than "
                  f"`{report['dataset']['name']}`:", ""]
        lines += [f"- {r['run']}: {r['dataset']}" for r in report["runs_left_out"]] + [""]
    return "\n".join(lines)
