"""`python -m eri_jax.explain`: which input blocks and frames a trained run's predictions rest on."""
from __future__ import annotations

import argparse
from typing import Sequence

from eri_jax.evaluation.run_flags import add_run_flags, parse_run_flags
from tfds_hume.cli_errors import cli_main


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eri_jax.explain", description=__doc__.split(":", 1)[1].strip())
    add_run_flags(p)
    p.add_argument("--clips", default="", help="comma-separated clip ids to map besides the most extreme ones")
    p.add_argument("--steps", type=int, default=32, help="integration steps (default 32)")
    p.add_argument("--top", type=int, default=3, help="how many most extreme clips to map (default 3)")
    args = parse_run_flags(p, argv)
    if args.steps < 1 or args.top < 0:
        p.error("--steps must be at least 1 and --top at least 0")
    from eri_jax.explain.run import explain_run  # deferred: imports jax and the model

    clips = [c.strip() for c in args.clips.split(",") if c.strip()]
    out, out_dir = explain_run(args.run_dir, split=args.split, clips=clips, runs_dir=args.runs_dir, steps=args.steps,
                      top=args.top, checkpoint=args.checkpoint, dataset=args.dataset, data_dir=args.data_dir)
    ranks = ", ".join(f"{e}: {r[0]}" for e, r in out["modality_rank"].items())
    c = out["completeness"]
    print(f"{out['run']} {args.split}: {out['n_clips']} clips; top block per emotion: {ranks}")
    print(f"completeness: max |sum - (f(x) - f(baseline))| = {c['max_abs_error']:.2e} "
          f"(largest change {c['max_abs_change']:.3f}); wrote explain_{args.split}.json and its PNGs in {out_dir}")
    return 0
