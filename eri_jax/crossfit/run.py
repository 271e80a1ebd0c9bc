"""Cross-fitting a finished run: K fold models, each trained as the run was on K-1 folds of train,
each predicting its held-out fold; together one out-of-fold prediction per train clip.

Files (work folder inside the run's checkpoint folder, out of the report's reach):

  <run-dir>/crossfit-k<K>-s<seed>/folds.json           the assignment (IDs, fold of each) and the run's
                                                       settings; a rerun with others is refused
  <run-dir>/crossfit-k<K>-s<seed>/fold<k>/             what `eri_jax.train` writes for the fold model
                                                       (config.json, train_log.json, dev metrics, orbax
                                                       `steps/` while the fold is in progress)
  <run-dir>/crossfit-k<K>-s<seed>/fold<k>/predictions_heldout.csv   the fold's held-out predictions (best
                                                       epoch); its presence marks the fold finished
  <runs-dir>/<run>/predictions_train_oof.csv           every train clip once, in dataset order, MuSe format
  <runs-dir>/<run>/crossfit.json                       folds, seed, per-fold best epoch, dev and held-out r

A fold model is `eri_jax.train.train` on the run's config with only the fold's train clips visible
(view.py): same model, preset, epochs, LR and schedule, batch, features, seed (initialisation and
shuffling as in the run), standardiser and output bias fit on the K-1 folds, best epoch by dev mean
Pearson. Unlabelled train clips are trained on as in the run (masked out of the loss) and predicted.
Once a fold's predictions are written its checkpoints are deleted (`keep_checkpoints` keeps them); an
interrupted fold resumes from its last orbax checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eri_jax.crossfit.folds import assign_folds
from eri_jax.crossfit.view import SplitView
from eri_jax.evaluation.metrics import mean_over_defined, pearson_per_emotion
from eri_jax.inputs import assembly as feats
from eri_jax.report.runs import read_predictions
from eri_jax.result_files import write_json, write_predictions
from eri_jax.training import loop
from eri_jax.training.config import IDENTITY_FIELDS, TrainConfig
from eri_jax.training.inputs import load_inputs, predict_split
from eri_jax.training.restore import read_run, restore

OOF_FILE = "predictions_train_oof.csv"
SUMMARY_FILE = "crossfit.json"
FOLDS_FILE = "folds.json"
HELDOUT_FILE = "predictions_heldout.csv"


@dataclasses.dataclass
class CrossfitResult:
    """ids [N] (dataset order), predictions float32 [N, E], fold [N]; `trained`: folds trained by this call."""

    path: Path
    ids: list[str]
    predictions: np.ndarray
    fold: np.ndarray
    trained: list[int]
    summary: dict[str, Any]


def work_dir(run_dir: str | Path, folds: int, seed: int) -> Path:
    return Path(run_dir) / f"crossfit-k{folds}-s{seed}"


def load_run_config(run_dir: str | Path, *, runs_dir: str | None = None,
                    data_dir: str | None = None) -> tuple[TrainConfig, dict[str, Any]]:
    """(TrainConfig, saved run info) of the run in its checkpoint folder `run_dir` (`training.restore.read_run`),
    with the output and data folders overridden where given; `init_from` is kept (folds start as the run did)."""

    cfg, info = read_run(run_dir)
    if runs_dir is not None:
        cfg.runs_dir = str(runs_dir)
    if data_dir is not None:
        cfg.data_dir = str(data_dir)
    return cfg, info


def _settings(cfg: TrainConfig) -> dict[str, Any]:
    """What the fold models depend on: the run's identity fields and its epochs."""
    d = cfg.to_json()
    return {k: d[k] for k in (*IDENTITY_FIELDS, "epochs")}


def _check_or_write_folds(path: Path, record: dict[str, Any]) -> None:
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != record:
            diff = sorted(k for k in set(saved) | set(record) if saved.get(k) != record.get(k))
            raise ValueError(f"{path} belongs to a cross-fit with other settings or clips (differs in: "
                             f"{', '.join(diff)}); delete {path.parent} to start over")
        return
    write_json(path, record)


def _predict_heldout(fold_cfg: TrainConfig, fold_dir: Path, view: SplitView, meta: Any,
                     heldout: list[str]) -> np.ndarray:
    """The fold model's best-epoch predictions of its held-out clips (in `heldout` order), restored and
    predicted as `eri_jax.evaluate` does."""

    info = json.loads((fold_dir / "config.json").read_text())
    predict, state, _, standardizer, mesh = restore(fold_cfg, info)
    data = load_inputs(fold_cfg, "train", meta, standardizer, read_split=view.train_only(heldout))
    if sorted(map(str, data.ids)) != sorted(heldout):
        raise RuntimeError(f"{fold_dir}: the held-out clips changed while assembling them")
    pred = predict_split(predict, state, data, fold_cfg.batch_size, mesh)
    order = {str(c): i for i, c in enumerate(data.ids)}
    return pred[[order[c] for c in heldout]]


def crossfit(run_dir: str | Path, *, folds: int = 5, seed: int | None = None, runs_dir: str | None = None,
             data_dir: str | None = None, keep_checkpoints: bool = False, progress: bool = True,
             on_fold_done: Callable[[int], None] | None = None) -> CrossfitResult:
    """Write `<runs-dir>/<run>/predictions_train_oof.csv` for the run in `run_dir` (module docstring).

    folds: K >= 2 (at most the number of train clips); seed: the fold assignment's seed (default: the
    run's; the fold models always use the run's seed). Finished folds are kept and skipped on a rerun.
    on_fold_done(k) is called after fold k's predictions are saved (tests use it to interrupt).
    """
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import dataset_meta

    cfg, info = load_run_config(run_dir, runs_dir=runs_dir, data_dir=data_dir)
    run_dir = Path(run_dir)
    seed = cfg.seed if seed is None else int(seed)
    meta = dataset_meta(cfg.dataset, cfg.data_dir)
    feats.check_numeric(cfg.features, meta.features, cfg.dataset)
    emotions = list(meta.emotions)
    if emotions != list(info.get("emotions", emotions)):
        raise ValueError(f"{cfg.dataset} has emotions {emotions}, the run {run_dir} was trained on {info['emotions']}")
    view = SplitView(cfg.dataset, cfg.data_dir, cfg.features)
    # The clips the run itself could see (a clip lacking a selected feature is left out, with a warning).
    train_all = feats.assemble(view.raw("train"), cfg.features, meta.features, cfg.model)
    ids, labels = [str(i) for i in train_all.ids], train_all.labels
    del train_all  # only IDs and labels are needed here; each fold assembles its own inputs
    if folds > len(ids):
        raise ValueError(f"--folds {folds} is more than the {len(ids)} train clips of {cfg.dataset} that the run "
                         f"{run_dir} trains on")
    fold = assign_folds(ids, folds, seed)
    labelled = np.isfinite(labels).any(axis=1)

    work = work_dir(run_dir, folds, seed)
    _check_or_write_folds(work / FOLDS_FILE, {"run": cfg.run_name, "folds": folds, "seed": seed,
                                              "settings": _settings(cfg), "ids": ids, "fold": fold.tolist()})
    out_dir = Path(cfg.runs_dir) / cfg.run_name
    predictions = np.full((len(ids), len(emotions)), np.nan, np.float32)
    index = {c: i for i, c in enumerate(ids)}
    trained, per_fold = [], []
    for k in range(folds):
        held = [c for c, f in zip(ids, fold) if f == k]
        fold_dir = work / f"fold{k}"
        path = fold_dir / HELDOUT_FILE
        if path.is_file():
            print(f"fold {k + 1}/{folds}: kept from an earlier run ({path})", file=sys.stderr)
        else:
            if not labelled[fold != k].any():
                raise ValueError(f"{run_dir}: fold {k}'s training part has no labelled clip; use fewer folds")
            n_train = int((fold != k).sum())
            print(f"fold {k + 1}/{folds}: training on {n_train} train clips, predicting {len(held)}",
                  file=sys.stderr)
            fold_cfg = dataclasses.replace(cfg, workdir=str(work), runs_dir=str(work), run_name=fold_dir.name)
            others = view.train_only([c for c, f in zip(ids, fold) if f != k])
            loop.train(fold_cfg, progress=progress, read_split=others)
            write_predictions(path, held, _predict_heldout(fold_cfg, fold_dir, view, meta, held), emotions)
            trained.append(k)
        if not keep_checkpoints and (fold_dir / "steps").is_dir():
            shutil.rmtree(fold_dir / "steps")
        got_ids, got = read_predictions(path, emotions)
        if sorted(got_ids) != sorted(held):
            raise ValueError(f"{path} holds other clips than fold {k} of {work / FOLDS_FILE}; delete {fold_dir} "
                             "to train that fold again")
        if not np.isfinite(got).all():
            raise ValueError(f"{path}: fold {k}'s model predicted non-finite values for "
                             f"{int((~np.isfinite(got)).any(axis=1).sum())} clip(s); delete {fold_dir} to train it "
                             "again")
        rows = [index[c] for c in got_ids]
        predictions[rows] = got.astype(np.float32)
        log = json.loads((fold_dir / "train_log.json").read_text())
        best = next((e for e in log["epochs"] if e["epoch"] == log["best_epoch"]), {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r_held, _ = mean_over_defined(pearson_per_emotion(got, labels[rows], emotions))
        per_fold.append({"fold": k, "n_train": int((fold != k).sum()), "n_heldout": len(held),
                         "best_epoch": log["best_epoch"], "dev_mean_pearson": best.get("dev_mean_pearson"),
                         "heldout_mean_pearson": None if np.isnan(r_held) else r_held})
        if k in trained and on_fold_done is not None:
            on_fold_done(k)
    if np.isnan(predictions).any():  # the folds partition the clips, so this is a bug, not bad input
        raise RuntimeError(f"{work}: {int(np.isnan(predictions).any(axis=1).sum())} clips got no prediction")
    out_dir.mkdir(parents=True, exist_ok=True)
    oof_path = out_dir / OOF_FILE
    write_predictions(oof_path, ids, predictions, emotions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r_oof, _ = mean_over_defined(pearson_per_emotion(predictions, labels, emotions))
    summary = {"run": cfg.run_name, "folds": folds, "seed": seed, "model_seed": cfg.seed, "n_clips": len(ids),
               "n_labelled": int(labelled.sum()), "file": OOF_FILE, "work_dir": str(work),
               "oof_mean_pearson": None if np.isnan(r_oof) else r_oof, "per_fold": per_fold}
    write_json(out_dir / SUMMARY_FILE, summary)
    return CrossfitResult(oof_path, ids, predictions, fold, trained, summary)
