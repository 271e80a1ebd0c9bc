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
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import jax
from flax import nnx

from eri_jax import features as feats
from eri_jax import sharding as shd
from eri_jax.checkpointing import RunCheckpoints
from eri_jax.model_factory import build_model
from eri_jax.train import TrainConfig, evaluate_splits, load_inputs
from eri_jax.train_step import make_optimizer, make_predict
from tfds_hume.cli_errors import cli_main


def abstract_state(cfg: TrainConfig, run_info: dict[str, Any], mesh) -> tuple[Any, Any]:
    """(graphdef, abstract replicated state) of the run's (model, optimizer), allocating nothing."""
    halve_steps = cfg.halve_steps(run_info["steps_per_epoch"])

    def make():
        model = build_model(cfg.model, cfg.model_kwargs, in_dim=run_info["in_dim"],
                            num_outputs=len(run_info["emotions"]), seed=cfg.seed, precision=cfg.precision)
        return model, nnx.Optimizer(model, make_optimizer(cfg.optimizer, cfg.lr, cfg.weight_decay,
                                                          halve_steps=halve_steps), wrt=nnx.Param)

    graphdef, state = nnx.split(nnx.eval_shape(make))
    rep = shd.replicated(mesh)
    state = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rep), state)
    return graphdef, state


def read_run(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """(TrainConfig, saved run info) of the finished run in its checkpoint folder `run_dir` (`config.json`).

    The config's workdir and run name point at `run_dir`; everything else is as the run saved it.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} not found: pass the run's checkpoint folder "
                                "<workdir>/<run> written by `python -m eri_jax.train`")
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} not found: is {run_dir} a run folder written by "
                                "`python -m eri_jax.train`?")
    try:
        run_info = json.loads(config_path.read_text())
        cfg = TrainConfig.from_json(run_info)
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{config_path}: not a training config ({e})") from None
    cfg.workdir = str(run_dir.parent)
    cfg.run_name = run_dir.name
    return cfg, run_info


def check_checkpoints(cfg: TrainConfig, run_info: dict[str, Any]) -> None:
    """FileNotFoundError saying where the checkpoints are when `cfg.run_dir` holds none (e.g. runs/<run>)."""
    steps = Path(cfg.run_dir) / "steps"
    if steps.is_dir():
        return
    saved = Path(run_info.get("workdir") or "checkpoints") / cfg.run_name
    where = (f"pass --run-dir {saved}" if (saved / "steps").is_dir() else
             f"they live under <workdir>/{cfg.run_name} (checkpoints/{cfg.run_name} by default; "
             f"the run was trained with --workdir {run_info.get('workdir')})")
    raise FileNotFoundError(f"{cfg.run_dir} holds no checkpoints (no steps/ folder; a runs/<run> folder holds "
                            f"only the evaluation files): {where}")


def restore(cfg: TrainConfig, run_info: dict[str, Any], checkpoint: str = "best"):
    """(predict, state, epoch, standardizer, mesh): the run's model restored from checkpoint `best`, `last`
    or an epoch number, its jitted predict function and the standardizer it was trained with."""
    check_checkpoints(cfg, run_info)
    mesh = shd.batch_mesh()
    shd.check_batch_size(cfg.batch_size, mesh)
    graphdef, template = abstract_state(cfg, run_info, mesh)
    with RunCheckpoints(cfg.run_dir, read_only=True) as ckpt:
        if checkpoint == "best":
            epoch = ckpt.best_epoch()
        elif checkpoint == "last":
            epoch = ckpt.latest_epoch()
        else:
            epoch = int(checkpoint)
        if epoch is None:
            raise FileNotFoundError(f"{ckpt.directory} holds no checkpoint")
        state, _ = ckpt.restore(epoch, template)
    standardizer = (feats.Standardizer.from_json(run_info["standardizer"])
                    if run_info.get("standardizer") else None)
    predict = make_predict(graphdef, state_sharding=shd.replicated(mesh), batch_sharding=shd.batch_sharded(mesh))
    return predict, state, epoch, standardizer, mesh


def evaluate_run(run_dir: str | Path, *, split: str = "dev", checkpoint: str = "best",
                 dataset: str | None = None, data_dir: str | None = None,
                 runs_dir: str | None = None) -> dict[str, Any]:
    """Evaluate checkpoint `best`, `last` or an epoch number of the run in `run_dir`; return the metrics."""
    from eri_jax.data import dataset_meta

    cfg, run_info = read_run(run_dir)
    cfg.init_from = None  # the checkpoint holds the weights
    if dataset:
        cfg.dataset = dataset
    if data_dir:
        cfg.data_dir = data_dir
    if runs_dir:
        cfg.runs_dir = runs_dir
    meta = dataset_meta(cfg.dataset, cfg.data_dir)
    feats.check_numeric(cfg.features, meta.features, cfg.dataset)
    if list(meta.emotions) != list(run_info["emotions"]):
        raise ValueError(f"{cfg.dataset} has emotions {meta.emotions}, the run was trained on "
                         f"{run_info['emotions']}")
    in_dim = feats.input_dim(cfg.features, meta.features, cfg.block_widths)
    if in_dim != run_info["in_dim"]:
        raise ValueError(f"features {cfg.features} of {cfg.dataset} are {in_dim} wide; the run was "
                         f"trained on {run_info['in_dim']}")

    predict, state, epoch, standardizer, mesh = restore(cfg, run_info, checkpoint)
    data = load_inputs(cfg, split, meta, standardizer)
    out_dir = Path(cfg.runs_dir) / cfg.run_name
    return evaluate_splits(cfg, meta, predict, state, {split: data}, mesh, epoch=epoch, out_dir=out_dir,
                           checkpoint=checkpoint)[split]


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eri_jax.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", required=True, help="the run's checkpoint folder, <workdir>/<run>")
    p.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    p.add_argument("--checkpoint", default="best", help="best, last or an epoch number")
    p.add_argument("--dataset", default=None, help="TFDS name/config (default: the run's)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: the run's)")
    p.add_argument("--runs-dir", default=None, help="outputs go to <runs-dir>/<run>/ (default: the run's)")
    args = p.parse_args(argv)
    if args.checkpoint not in ("best", "last") and not args.checkpoint.isdigit():
        p.error(f"--checkpoint must be best, last or an epoch number, got {args.checkpoint!r}")
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
