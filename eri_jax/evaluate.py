"""`python -m eri_jax.evaluate`: evaluate a trained run's checkpoint on a split.

    python -m eri_jax.evaluate --run-dir checkpoints/<run> [--split dev] [--checkpoint best|last|EPOCH]
                               [--dataset hume_reaction/demo] [--data-dir D] [--runs-dir runs]

Rebuilds the model from `<run-dir>/config.json` (no weights are initialised: the state is restored
into an abstract template), restores the checkpoint, predicts the split and writes the evaluation
files (predictions CSV, metrics JSON/Markdown, confusion PNGs) into `<runs-dir>/<run>/`. The dataset
defaults to the one the run was trained on; another one must have the same features and emotions.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from eri_jax.evaluation.run import evaluate_run
from eri_jax.evaluation.run_flags import add_run_flags, parse_run_flags
from eri_jax.training.restore import read_run
from tfds_hume.cli_errors import cli_main


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eri_jax.evaluate", description=__doc__.split("\n\n")[0])
    add_run_flags(p)
    args = parse_run_flags(p, argv)
    metrics = evaluate_run(args.run_dir, split=args.split, checkpoint=args.checkpoint,
                           dataset=args.dataset, data_dir=args.data_dir, runs_dir=args.runs_dir)
    cfg, _ = read_run(args.run_dir)
    print(console_summary(cfg.run_name, args.checkpoint, metrics, Path(args.runs_dir or cfg.runs_dir) / cfg.run_name))
    return 0


def console_summary(run: str, checkpoint: str, metrics: dict[str, Any], out_dir: Path) -> str:
    """One line for the console: numbers to 4 significant digits (the files keep full precision)."""
    head = f"{run} ({checkpoint} = epoch {metrics['meta']['epoch']}) on {metrics['split']}: "
    where = f"; files in {out_dir}"
    if metrics["pearson"] is None:
        return head + f"no labels in this split, so no Pearson correlation (predictions written){where}"
    defined = sum(r is not None for r in metrics["pearson"].values())
    if metrics["mean_pearson"] is None:
        return head + f"mean Pearson undefined (r undefined for every emotion){where}"
    return (head + f"mean Pearson {metrics['mean_pearson']:.4g} (over {defined} of {len(metrics['pearson'])} "
            f"emotions){where}")

if __name__ == "__main__":
    sys.exit(main())
