"""Evaluate a trained model on assembled splits: predict them and write each split's evaluation files.

`evaluate_splits` serves the end of training (best epoch on dev and test) and `evaluate_run` a finished
run's checkpoint on any split (`python -m eri_jax.evaluate`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from eri_jax.evaluation.files import write_evaluation
from eri_jax.inputs import assembly as feats
from eri_jax.training.config import TrainConfig
from eri_jax.training.inputs import has_labels, load_inputs, predict_split
from eri_jax.training.restore import read_run, restore


def evaluate_splits(cfg: TrainConfig, meta: Any, predict: Callable, state: Any, splits: dict[str, Any],
                    mesh, *, epoch: int, out_dir: Path, checkpoint: str = "best",
                    write: bool = True) -> dict[str, dict]:
    """Predict each assembled split with `state` and write its evaluation files into `out_dir`.

    write=False (the processes other than 0 of a run over several): predict only, as every process must
    take part in the predictions, and return {}.
    """
    eval_meta = {"model": cfg.model, "preset": cfg.preset, "run": cfg.run_name, "dataset": cfg.dataset,
                 "dataset_source": meta.dataset, "synthetic": meta.synthetic,
                 "random_weights": meta.random_weights, "features": cfg.features, "epoch": epoch,
                 "checkpoint": checkpoint, "checkpoint_dir": str(cfg.run_dir)}
    metrics = {}
    for split, data in splits.items():
        pred = predict_split(predict, state, data, cfg.batch_size, mesh)
        if not write:
            continue
        labels = data.labels if has_labels(data) else None
        metrics[split] = write_evaluation(out_dir, split=split, ids=data.ids, predictions=pred,
                                          labels=labels, emotions=list(meta.emotions), meta=eval_meta)
    return metrics



def open_run(run_dir: str | Path, *, dataset: str | None = None, data_dir: str | None = None,
             runs_dir: str | None = None) -> tuple[TrainConfig, dict[str, Any], Any]:
    """(config, run info, dataset meta) of a finished run, its dataset optionally replaced (a moved TFDS
    folder, another build of the same features): the emotions and the input width must be the run's."""
    from eri_jax.inputs.dataset import dataset_meta  # deferred: imports tensorflow_datasets

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
    return cfg, run_info, meta


def evaluate_run(run_dir: str | Path, *, split: str = "dev", checkpoint: str = "best",
                 dataset: str | None = None, data_dir: str | None = None,
                 runs_dir: str | None = None) -> dict[str, Any]:
    """Evaluate checkpoint `best`, `last` or an epoch number of the run in `run_dir`; return the metrics."""
    cfg, run_info, meta = open_run(run_dir, dataset=dataset, data_dir=data_dir, runs_dir=runs_dir)
    predict, state, epoch, standardizer, mesh = restore(cfg, run_info, checkpoint)
    data = load_inputs(cfg, split, meta, standardizer)
    out_dir = Path(cfg.runs_dir) / cfg.run_name
    return evaluate_splits(cfg, meta, predict, state, {split: data}, mesh, epoch=epoch, out_dir=out_dir,
                           checkpoint=checkpoint)[split]
