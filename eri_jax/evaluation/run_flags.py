"""The flags that name a finished run to read (`eri_jax.evaluate`, `eri_jax.explain`); no JAX import, so
`--help` stays quick."""
from __future__ import annotations

import argparse
from typing import Sequence


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """--run-dir, --split, --checkpoint, --dataset, --data-dir, --runs-dir (`evaluation.run.open_run`)."""
    p.add_argument("--run-dir", required=True, help="the run's checkpoint folder, <workdir>/<run>")
    p.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    p.add_argument("--checkpoint", default="best", help="best, last or an epoch number")
    p.add_argument("--dataset", default=None, help="TFDS name/config (default: the run's)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: the run's)")
    p.add_argument("--runs-dir", default=None, help="outputs go to <runs-dir>/<run>/ (default: the run's)")


def parse_run_flags(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv`; a --checkpoint other than best, last or an epoch number is a usage error (exit 2)."""
    args = p.parse_args(argv)
    if args.checkpoint not in ("best", "last") and not args.checkpoint.isdigit():
        p.error(f"--checkpoint must be best, last or an epoch number, got {args.checkpoint!r}")
    return args
