"""`python -m eri_jax.query.compare RUN [RUN ...]`: query runs side by side (e.g. K = 0 vs K = 3 shots).

    python -m eri_jax.query.compare runs/query-qwen2vl runs/query-qwen2vl-3shot [--split dev] [--out FILE]

Reads each run's metrics_<split>.json and query_stats_<split>.json and prints one Markdown table of the
runs (chat model, with Qwen2.5-Omni's input in brackets, shots, mean Pearson, how many answers gave all /
some / no scores) and one per emotion (Pearson r, and the most frequent value with its share of answers:
the degeneracy). `--out` also writes it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from tfds_hume.cli_errors import cli_main


def _read(run: Path, name: str) -> dict:
    path = run / name
    if not path.is_file():
        raise ValueError(f"{path}: not found; is {run} a query run scored on this split?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: not JSON ({err.msg})") from None


def _num(v) -> str:
    return "undefined" if v is None else f"{v:.4f}"


def compare(runs: Sequence[str | Path], split: str = "dev") -> str:
    """The Markdown comparison of query runs on `split` (ValueError naming a missing or bad file)."""
    if len(runs) < 1:
        raise ValueError("name at least one query run folder")
    loaded = []
    for run in map(Path, runs):
        metrics, stats = _read(run, f"metrics_{split}.json"), _read(run, f"query_stats_{split}.json")
        if stats.get("meta", {}).get("model") != "query":
            raise ValueError(f"{run / f'query_stats_{split}.json'}: not a query run's stats")
        loaded.append((run.name, metrics, stats))
    lines = [f"Query runs on {split}", "",
             "| run | chat model | shots | mean Pearson | all scores | some | none | no answer |",
             "|---|---|---|---|---|---|---|---|"]
    for name, metrics, stats in loaded:
        meta = stats["meta"]
        k = (meta.get("shots") or {}).get("k") or 0
        chat = meta.get("chat_model") + (f" ({meta['omni_input']})" if meta.get("omni_input") else "")
        lines.append(f"| {name} | {chat} | {k} | {_num(metrics.get('mean_pearson'))} | "
                     f"{stats['with_all_scores']} | {stats['with_some_scores']} | {stats['with_no_score']} | "
                     f"{stats['no_answer']} |")
    emotions = list(loaded[0][2]["per_emotion"])
    lines += ["", "Per emotion: Pearson r; most frequent parsed value (share of answers)", "",
              "| emotion | " + " | ".join(n for n, _, _ in loaded) + " |", "|---" * (len(loaded) + 1) + "|"]
    for e in emotions:
        cells = []
        for _, metrics, stats in loaded:
            s = stats["per_emotion"].get(e)
            if s is None:
                cells.append("—")
                continue
            top = "none parsed" if s["most_frequent"] is None else \
                f"{s['most_frequent']:g} ({100 * s['share_of_answers']:.1f} %)"
            cells.append(f"{_num((metrics.get('pearson') or {}).get(e))}; {top}")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eri_jax.query.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="query run folders (runs/<run-name>)")
    p.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    p.add_argument("--out", default=None, help="also write the tables to this Markdown file")
    args = p.parse_args(argv)
    text = compare(args.runs, args.split)
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
