"""`python -m eri_jax.reproduce`: the paper's whole table end to end, one command.

    python -m eri_jax.reproduce                       # = --demo: synthetic set, tiny random-weight models
    python -m eri_jax.reproduce --dry-run             # print the commands only
    python -m eri_jax.reproduce --data-root DIR       # real data (GPU): --models real, paper presets
    python -m eri_jax.reproduce --data-root DIR --models tiny   # its formats end to end on a CPU

Steps, each its own process: (1) `python -m extract --config full` (demo: `--models tiny
--synthetic-clips N`); (2) every Table 3 method with `python -m eri_jax.train` (MuSe LSTM on fau and
vggface2, ViPER-V, ViPER-VATF with CLIP / Video-LLaVA p1 / p2 / LLaVA per-frame text, probes on
vllava_emb_p1 / p2), train-split predictions of the two ViPER runs the late-fusion row fuses
(in-sample with `python -m eri_jax.evaluate --split train`, out-of-fold with `python -m eri_jax.crossfit
--folds K`, which the report fits the weights on) and the querying baseline (`python -m eri_jax.query
--from-dataset`); beyond the paper (`--beyond-paper`, the demo's default), the extraction adds
Qwen2.5-Omni, a probe on `omni_av_emb_p2` and ViPER-VATF with T = `omni_av_p2` train, and Omni is asked on
dev zero-shot and with 3 train clips shown first (`python -m eri_jax.query --run --chat-model omni`);
(3) the Table 4 and Table 6 sweeps (`python -m eri_jax.sweep`); (4) the report (`python -m eri_jax.report`).
Each step is printed with its command and wall time; a failing step stops the run with its command and
exit code. Rerunning resumes: finished steps are skipped (plan.py says how each one knows), extraction
always runs but reads its feature cache. At the end: where the report is, a timing table, and
`<runs-dir>/report/timings.json`.

Demo timing: measured on 2 shared CPU cores, see the project README. Real data: the whole run was never
timed (the data is not available to us); per-stage GPU figures (extraction throughput, train step,
sweep, measured on an H200 with random-weight models) are in BENCHMARKS.md, and the README turns them
into an estimate (about 12 hours of MLLM generation on one GPU).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from eri_jax.reproduce import execute
from eri_jax.reproduce.plan import (
    DEFAULT_DEMO_CLIPS,
    DEFAULT_DEMO_FOLDS,
    DEFAULT_FOLDS,
    REPORT_DIR,
    Options,
    build_plan,
)
from tfds_hume.cli_errors import USAGE_EXIT, cli_main
from tfds_hume.layouts import read_layout

PLAN_FILE = "reproduce_plan.json"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eri_jax.reproduce", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--demo", action="store_true",
                     help="the built-in synthetic set with tiny random-weight models (default without --data-root)")
    src.add_argument("--data-root", type=Path, default=None,
                     help="real dataset folder (MuSe-2022, ABAW5 or CSV layout): --models real, paper presets")
    p.add_argument("--cache-dir", type=Path, default=None, help="extraction cache (default: extract's)")
    p.add_argument("--data-dir", type=Path, default=None, help="TFDS data dir (default: $TFDS_DATA_DIR or TFDS's)")
    p.add_argument("--runs-dir", type=Path, default=None,
                   help="run outputs and the report (default runs/reproduce-demo, or runs/reproduce)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="checkpoints (default checkpoints/reproduce-demo, or checkpoints/reproduce)")
    p.add_argument("--models", choices=("tiny", "real"), default=None,
                   help="extraction models (default: tiny for the demo, real with --data-root); tiny on a data "
                        "root checks its formats end to end on a CPU, with random-weight features")
    p.add_argument("--preset", choices=("demo", "paper"), default=None,
                   help="training presets (default: demo with tiny models, else paper)")
    p.add_argument("--seeds", default="0", help="seeds of the Table 3 runs, e.g. 0 or 0,1,2 (default 0)")
    p.add_argument("--sweep-seeds", default="0,1,2", help="seeds of the Table 4 / 6 sweeps (>= 3; default 0,1,2)")
    p.add_argument("--clips-per-split", type=int, default=DEFAULT_DEMO_CLIPS, metavar="N",
                   help=f"demo: synthetic clips per split (default {DEFAULT_DEMO_CLIPS})")
    p.add_argument("--epochs", type=int, default=None, help="epochs of the Table 3 runs (default: the preset's)")
    p.add_argument("--sweep-epochs", type=int, default=None, help="epochs of the sweeps (default: the preset's)")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="folds of the cross-fitted train predictions late fusion is fit on "
                        f"(default {DEFAULT_DEMO_FOLDS} for the demo, {DEFAULT_FOLDS} for real data)")
    p.add_argument("--beyond-paper", action=argparse.BooleanOptionalAction, default=None,
                   help="also the rows beyond the paper: Qwen2.5-Omni features (frames + audio) in the probe and "
                        "ViPER's T slot, Omni querying zero-shot and 3-shot (default: on for the demo, off with "
                        "--data-root, where Omni runs three times per clip)")
    p.add_argument("--progress", action="store_true", help="show the steps' progress bars (default: off)")
    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    return p


def _seeds(text: str, flag: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected comma-separated integers") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"{flag} {text!r}: expected distinct non-negative integers")
    return seeds


def options(args: argparse.Namespace) -> Options:
    if args.data_root is not None and not args.data_root.is_dir():
        raise ValueError(f"--data-root {args.data_root}: no such folder")
    if args.clips_per_split < 1:
        raise ValueError("--clips-per-split must be at least 1")
    for flag, v in (("--epochs", args.epochs), ("--sweep-epochs", args.sweep_epochs)):
        if v is not None and v < 1:
            raise ValueError(f"{flag} must be at least 1")
    if args.folds is not None and args.folds < 2:
        raise ValueError("--folds must be at least 2")
    sweep_seeds = _seeds(args.sweep_seeds, "--sweep-seeds")
    if len(sweep_seeds) < 3:
        raise ValueError(f"--sweep-seeds {args.sweep_seeds!r}: the Table 4 / 6 sweeps need at least 3 seeds")
    tag = "reproduce" if args.data_root is not None else "reproduce-demo"
    return Options(runs_dir=args.runs_dir or Path("runs") / tag, workdir=args.workdir or Path("checkpoints") / tag,
                   data_dir=args.data_dir, cache_dir=args.cache_dir, data_root=args.data_root,
                   seeds=_seeds(args.seeds, "--seeds"), sweep_seeds=sweep_seeds,
                   clips_per_split=args.clips_per_split, epochs=args.epochs, sweep_epochs=args.sweep_epochs,
                   folds=args.folds, no_progress=not args.progress, models=args.models,
                   preset_name=args.preset, beyond=args.beyond_paper)


def identity(o: Options) -> dict:
    """What the runs in the runs folder depend on: reusing the folder with other values is refused."""
    return {"demo": o.demo, "data_root": None if o.demo else str(o.data_root.resolve()),
            "clips_per_split": o.clips_per_split if o.demo else None,
            "data_dir": None if o.data_dir is None else str(o.data_dir.resolve()),
            "models": o.model_mode}


def check_data_root(o: Options) -> None:
    """Read the data root's label and partition files before anything runs or is written: bad input there
    (a malformed row, an unknown split, a missing emotion column) is one `error:` line naming the file and
    line (a LayoutError), exit code 2, instead of a failed extraction step and a half-made runs folder."""
    if not o.demo:
        read_layout(o.data_root)


def check_runs_dir(o: Options) -> None:
    """Refuse a runs folder whose runs came from another dataset build (the report would mix them)."""
    path = o.runs_dir / PLAN_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        saved.setdefault("models", "tiny" if saved.get("demo") else "real")  # folders from before --models
        now = identity(o)
        diff = {k: (saved.get(k), v) for k, v in now.items() if saved.get(k) != v}
        if diff:
            shown = "; ".join(f"{k}: then {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"{path}: this runs folder holds runs of another dataset build ({shown}); pass "
                             "another --runs-dir and --workdir, or delete them to start over")
    o.runs_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identity(o), indent=1) + "\n")


@cli_main
def main(argv: Sequence[str] | None = None, *, runner: execute.Runner = execute.subprocess_runner) -> int:
    args = parser().parse_args(argv)
    o = options(args)
    check_data_root(o)
    plan = build_plan(o)
    if o.demo:
        mode = "DEMO: synthetic set, tiny random-weight models, demo presets"
    elif o.model_mode == "tiny":
        mode = f"data in {o.data_root} with tiny random-weight models (a format check), {o.preset} presets"
    else:
        mode = f"real data in {o.data_root}: --models real, {o.preset} presets (GPU expected)"
    print(f"reproduce ({mode}): {len(plan)} steps; runs in {o.runs_dir}, checkpoints in {o.workdir}")
    if args.dry_run:
        for k, step in enumerate(plan, 1):
            state = "done, would skip" if step.is_done() else step.resume
            print(f"[{k}/{len(plan)}] {step.name}  ({state})\n  $ {execute.shlex.join(execute.command(step))}")
        return 0
    check_runs_dir(o)
    info = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(o).items()} | identity(o)}
    timings_path = o.runs_dir / REPORT_DIR / "timings.json"
    try:
        timings = execute.run_plan(plan, runner=runner)
    except execute.StepFailed as e:
        execute.write_timings(timings_path, e.timings, {**info, "failed_step": e.step.name, "exit_code": e.code})
        print(execute.timing_table(e.timings))
        print(f"error: {e}", file=sys.stderr)
        return USAGE_EXIT if e.code == USAGE_EXIT else 1  # a step's bad-input exit stays one
    execute.write_timings(timings_path, timings, info)
    print(execute.timing_table(timings))
    print(f"report: {o.runs_dir / REPORT_DIR / 'report.md'} (and report.json, PNGs); timings: {timings_path}")
    return 0
