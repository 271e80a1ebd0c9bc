"""`python -m eri_jax.crossfit`: out-of-fold train predictions of a finished run, for late fusion.

    python -m eri_jax.crossfit --run-dir checkpoints/<run> [--folds 5] [--seed S] [--runs-dir runs]

Splits the run's train clips into K folds (seeded), trains K models exactly as the run was trained
(`eri_jax.train` on the run's config.json), each on K-1 folds with the best epoch chosen on dev, predicts
each held-out fold and writes `<runs-dir>/<run>/predictions_train_oof.csv` (every train clip once,
MuSe format) and `crossfit.json`. The report fits its late-fusion weights on this file when every
member has one. Rerunning resumes: finished folds are kept (run.py lists the files).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from eri_jax.crossfit.run import crossfit
from eri_jax.training.loop import TrainingDiverged
from tfds_hume.cli_errors import cli_main, error


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eri_jax.crossfit", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-dir", required=True, help="the run's checkpoint folder, <workdir>/<run>")
    p.add_argument("--folds", type=int, default=5, help="K: folds of the train split, >= 2 (default 5)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the fold assignment (default: the run's seed; the fold models use the run's)")
    p.add_argument("--runs-dir", default=None, help="outputs go to <runs-dir>/<run>/ (default: the run's)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: the run's)")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep each fold model's orbax checkpoints (default: deleted once its predictions are written)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    try:
        result = crossfit(args.run_dir, folds=args.folds, seed=args.seed, runs_dir=args.runs_dir,
                          data_dir=args.data_dir, keep_checkpoints=args.keep_checkpoints,
                          progress=not args.no_progress)
    except TrainingDiverged as e:  # a fold model diverged: say which, as train does
        return error(e)
    s = result.summary
    oof = "undefined" if s["oof_mean_pearson"] is None else f"{s['oof_mean_pearson']:.4g}"  # files: full
    print(f"{s['run']}: {s['n_clips']} train clips in {s['folds']} folds (seed {s['seed']}), "
          f"{len(result.trained)} fold(s) trained now; out-of-fold mean Pearson {oof}; "
          f"wrote {result.path}")
    return 0
