"""`python -m eri_jax.report`: collect runs into the paper reproduction report (report.md, report.json, PNGs).

    python -m eri_jax.report --runs-dir runs --dataset hume_reaction/demo --data-dir D --out runs/report
    python -m eri_jax.report --rows my_rows.json --n-boot 2000        # another run → row mapping

Which runs fill which row: eri_jax/report/default_rows.json (run folders found by glob under --runs-dir
and selected by their recorded attributes: model, features, modalities, text_source, activation, ...);
`--rows FILE` merges a JSON file of the same form over it. Rows without runs are shown as "not run".
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from eri_jax.report.build import build_report, main_summary
from eri_jax.report.collect import BootstrapSettings
from eri_jax.report.labels import load_dataset_labels
from eri_jax.report.rows import load_rows
from tfds_hume.cli_errors import cli_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eri_jax.report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default="runs", help="folder holding the run folders (default runs)")
    p.add_argument("--dataset", default="hume_reaction/demo", help="TFDS name/config the runs were scored on")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: $TFDS_DATA_DIR or TFDS's)")
    p.add_argument("--out", default=None, help="output folder (default <runs-dir>/report)")
    p.add_argument("--rows", default=None, help="JSON file mapping rows to runs, merged over the defaults")
    p.add_argument("--split", default="dev", choices=("train", "dev", "test"),
                   help="split the methods are scored on (default dev)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--ci", type=float, default=0.95, help="interval coverage (default 0.95)")
    return p


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    out = Path(args.out) if args.out else Path(args.runs_dir) / "report"
    if args.n_boot < 1 or not 0 < args.ci < 1:
        raise ValueError(f"--n-boot must be >= 1 and --ci in (0, 1), got {args.n_boot} and {args.ci}")
    rows = load_rows(args.rows)
    data = load_dataset_labels(args.dataset, args.data_dir)
    report = build_report(args.runs_dir, out, data, rows=rows, split=args.split,
                          boot=BootstrapSettings(n_boot=args.n_boot, seed=args.seed, ci=args.ci))
    print(main_summary(report, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
