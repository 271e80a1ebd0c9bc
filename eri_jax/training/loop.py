"""The training loop of one run: `train` sets the run up (data, model, checkpoints), `train_epochs` is the
epoch loop, and the best epoch is evaluated into `<runs_dir>/<run>/` at the end.

Each epoch trains on `train` (seeded shuffle per epoch, fixed batch shape, padded last batch) with the
jitted `step.update`, then predicts `dev` and computes the mean Pearson r; orbax keeps the best epoch and
the last one under `<workdir>/<run>/`. Losses stay on the device during an epoch (no per-step host
sync); at the end of the epoch a NaN or infinite loss stops the run with the epoch and step where it
first appeared, before that epoch is saved. A rerun under the same run name resumes; one with other
settings is refused (`TrainConfig`'s identity fields).
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from eri_jax.evaluation.metrics import mean_over_defined, pearson_per_emotion
from eri_jax.evaluation.run import evaluate_splits
from eri_jax.inputs import assembly as feats
from eri_jax.models.factory import OUTPUT_BIAS_INITS, build_model, set_output_bias
from eri_jax.result_files import write_json
from eri_jax.training import sharding as shd
from eri_jax.training.checkpoints import DamagedCheckpoint, RunCheckpoints
from eri_jax.training.config import IDENTITY_FIELDS, TrainConfig
from eri_jax.training.inputs import SplitReader, batch_arrays, fit_standardizer, has_labels, load_inputs, predict_split
from eri_jax.training.processes import is_writer
from eri_jax.training.step import learning_rate, make_optimizer, make_predict, make_train_step


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""



@dataclasses.dataclass
class TrainResult:
    """What a finished `train()` returns: the log, best/last epochs, evaluation metrics, final state."""

    config: TrainConfig
    log: list[dict[str, Any]]
    best_epoch: int
    last_epoch: int
    metrics: dict[str, dict[str, Any]]
    state: Any



def init_state(cfg: TrainConfig, *, in_dim: int, num_outputs: int, steps_per_epoch: int,
               label_mean: np.ndarray | None = None):
    """(graphdef, state, halve_steps) of a freshly initialised model and optimizer.

    label_mean: the train labels' mean per emotion, used when `cfg.output_bias == "train-mean"`.
    """
    model = build_model(cfg.model, cfg.model_kwargs, in_dim=in_dim, num_outputs=num_outputs,
                        seed=cfg.seed, precision=cfg.precision, init_from=cfg.init_from,
                        trust_pickle=cfg.trust_pickle)
    if cfg.output_bias == "train-mean":
        set_output_bias(model, cfg.model, label_mean)
    elif cfg.output_bias != "zero":
        raise ValueError(f"unknown output bias init {cfg.output_bias!r}; choose {OUTPUT_BIAS_INITS}")
    halve_steps = cfg.halve_steps(steps_per_epoch)
    tx = make_optimizer(cfg.optimizer, cfg.lr, cfg.weight_decay, halve_steps=halve_steps)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    return graphdef, state, halve_steps


def _check_same_run(saved: dict[str, Any], cfg: TrainConfig, path: Path) -> None:
    now = cfg.to_json()
    diff = {k: (saved.get(k), now[k]) for k in IDENTITY_FIELDS if saved.get(k) != now[k]}
    if diff:
        shown = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"{path} belongs to a run with other settings ({shown}); pass another "
                         "--run-name or delete that folder to start over")


def _check_epochs(cfg: TrainConfig, held: int) -> None:
    """Refuse fewer epochs than the run holds: its config.json would no longer describe its checkpoints."""
    if held > cfg.epochs:
        raise ValueError(f"{cfg.run_dir} holds {held} trained epochs; --epochs {cfg.epochs} would not describe "
                         f"it: pass --epochs {held} or more, or another --run-name to train {cfg.epochs}")


def _finite_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# Files that other commands derive from a trained model (eri_jax.evaluate --split train, eri_jax.crossfit,
# eri_jax.explain: explain_<split>.json and its PNGs).
DERIVED_OUTPUTS = ("predictions_train.csv", "predictions_train_oof.csv", "crossfit.json")
DERIVED_PATTERNS = ("explain_*.json", "explain_*.png")


def _remove_stale_outputs(out_dir: Path) -> None:
    """A fresh model under an old run name: delete what was derived from the earlier model, so that the
    report cannot fuse predictions of a model that no longer exists."""
    paths = [out_dir / name for name in DERIVED_OUTPUTS] + sorted(p for g in DERIVED_PATTERNS for p in out_dir.glob(g))
    for path in paths:
        if path.is_file():
            path.unlink()
            print(f"removed {path}: it came from an earlier model of this run name", file=sys.stderr)


@dataclasses.dataclass
class PreparedRun:
    """A run set up to train: its assembled splits, fresh (replicated) state and compiled functions."""

    meta: Any
    train_data: Any
    dev_data: Any
    standardizer: feats.Standardizer | None
    mesh: Any
    steps_per_epoch: int
    halve_steps: int
    state: Any
    train_step: Callable
    predict: Callable
    run_info: dict[str, Any]  # saved as config.json: the config and what the data fixed


def prepare(cfg: TrainConfig, *, devices: Sequence[jax.Device] | None = None,
            read_split: SplitReader | None = None) -> PreparedRun:
    """Load and assemble train and dev, initialise the model and optimizer, compile the step and predict."""
    from eri_jax.inputs.dataset import dataset_meta, num_batches  # deferred: imports tensorflow_datasets

    meta = dataset_meta(cfg.dataset, cfg.data_dir)
    feats.check_numeric(cfg.features, meta.features, cfg.dataset)
    for split in ("train", "dev"):
        if not meta.splits.get(split):
            raise ValueError(f"dataset {cfg.dataset} has no {split} split (splits: {meta.splits})")
    train_data = load_inputs(cfg, "train", meta, read_split=read_split)
    if not has_labels(train_data):
        raise ValueError(f"dataset {cfg.dataset}: the train split has no labelled clip")
    standardizer = fit_standardizer(train_data) if cfg.standardize else None
    if standardizer is not None:
        train_data = standardizer.apply(train_data)
    dev_data = load_inputs(cfg, "dev", meta, standardizer, read_split=read_split)
    in_dim = feats.input_dim(cfg.features, meta.features, cfg.block_widths)
    emotions = list(meta.emotions)

    mesh = shd.batch_mesh(devices)
    shd.check_batch_size(cfg.batch_size, mesh)
    steps_per_epoch = num_batches(len(train_data.ids), cfg.batch_size)
    label_mean = np.nanmean(train_data.labels, axis=0)
    graphdef, state, halve_steps = init_state(cfg, in_dim=in_dim, num_outputs=len(emotions),
                                              steps_per_epoch=steps_per_epoch, label_mean=label_mean)
    state = shd.replicate(state, mesh)
    rep, split_batch = shd.replicated(mesh), shd.batch_sharded(mesh)
    run_info = {**cfg.to_json(), "in_dim": in_dim, "emotions": emotions,
                "standardizer": standardizer.to_json() if standardizer else None,
                "feature_specs": {k: dataclasses.asdict(meta.features[k]) for k in cfg.features},
                "synthetic": meta.synthetic, "random_weights": meta.random_weights,
                "steps_per_epoch": steps_per_epoch,
                "devices": [str(d) for d in mesh.devices.flat]}
    return PreparedRun(
        meta=meta, train_data=train_data, dev_data=dev_data, standardizer=standardizer, mesh=mesh,
        steps_per_epoch=steps_per_epoch, halve_steps=halve_steps, state=state,
        train_step=make_train_step(graphdef, state_sharding=rep, batch_sharding=split_batch),
        predict=make_predict(graphdef, state_sharding=rep, batch_sharding=split_batch), run_info=run_info)


def train_epochs(cfg: TrainConfig, run: PreparedRun, ckpt: RunCheckpoints, state: Any, log: list[dict[str, Any]],
                 *, start: int, progress: bool = True,
                 on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None) -> Any:
    """The epoch loop: train epochs `start + 1 .. cfg.epochs`, score dev, save each epoch; the final state."""
    emotions = list(run.meta.emotions)
    disable = None if progress else True  # None: bars on a TTY only
    epochs_bar = tqdm(range(start + 1, cfg.epochs + 1), initial=start, total=cfg.epochs,
                      desc=cfg.run_name, disable=disable, unit="epoch")
    for epoch in epochs_bar:
        t0 = time.perf_counter()
        lr = learning_rate(state, run.halve_steps)
        losses = []
        batches = _train_batches(cfg, run, epoch)
        for batch in tqdm(batches, total=run.steps_per_epoch, leave=False, disable=disable,
                          desc=f"epoch {epoch}", unit="batch"):
            state, loss = run.train_step(state, shd.shard_batch(batch_arrays(batch), run.mesh))
            losses.append(loss)
        losses = np.asarray(jnp.stack(losses))
        _check_finite(cfg, losses, epoch, run.steps_per_epoch)
        dev_pred = predict_split(run.predict, state, run.dev_data, cfg.batch_size, run.mesh)
        per_emotion = pearson_per_emotion(dev_pred, run.dev_data.labels, emotions)
        r, _ = mean_over_defined(per_emotion)
        entry = {"epoch": epoch, "train_loss": float(losses.mean()), "dev_mean_pearson": _finite_or_none(r),
                 "dev_pearson": [_finite_or_none(float(v)) for v in per_emotion], "lr": lr,
                 "steps": int(losses.size), "time_s": round(time.perf_counter() - t0, 3)}
        log.append(entry)
        ckpt.save(epoch, state, {"epoch": epoch, "log": log}, r)
        epochs_bar.set_postfix(loss=f"{entry['train_loss']:.4f}", dev_r=f"{r:.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, entry)
    return state


def _train_batches(cfg: TrainConfig, run: PreparedRun, epoch: int):
    from eri_jax.inputs.dataset import iterate_batches  # deferred: imports tensorflow_datasets

    return iterate_batches(run.train_data, cfg.batch_size, shuffle=True, seed=cfg.seed, epoch=epoch - 1)


def _check_finite(cfg: TrainConfig, losses: np.ndarray, epoch: int, steps_per_epoch: int) -> None:
    """TrainingDiverged naming the first step whose loss is NaN or infinite (before the epoch is saved)."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        step = int(bad[0]) + 1
        raise TrainingDiverged(
            f"{cfg.run_name}: training loss is {losses[bad[0]]} at epoch {epoch}, step {step} of "
            f"{steps_per_epoch} (global step {(epoch - 1) * steps_per_epoch + step}); nothing of "
            f"this epoch was saved. Lower --lr (now {cfg.lr:g}) or use --precision float32.")


def train(cfg: TrainConfig, *, progress: bool = True, devices: Sequence[jax.Device] | None = None,
          on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
          read_split: SplitReader | None = None) -> TrainResult:
    """Train (or resume) the run `cfg`, then evaluate its best epoch into `<runs_dir>/<run>/`.

    devices: the devices to shard each batch over (default: all local devices).
    read_split: where the splits come from instead of the dataset (`SplitReader`; default: the dataset).
    on_epoch_end(epoch, log_entry) is called after each epoch's checkpoint is saved (tests use it to
    interrupt a run).
    """
    run = prepare(cfg, devices=devices, read_split=read_split)
    saved_config = cfg.run_dir / "config.json"
    if saved_config.exists():
        _check_same_run(json.loads(saved_config.read_text()), cfg, saved_config)

    log: list[dict[str, Any]] = []
    state = run.state
    with RunCheckpoints(cfg.run_dir) as ckpt:
        start = ckpt.latest_epoch() or 0
        _check_epochs(cfg, start)
        writer = is_writer()  # over several processes, process 0 writes (all of them train and checkpoint)
        if writer:
            write_json(saved_config, run.run_info)
        if not start and writer:
            _remove_stale_outputs(Path(cfg.runs_dir) / cfg.run_name)
        if start:
            start, state, saved_meta, damaged = ckpt.restore_newest(state)
            log = list(saved_meta["log"])
            if writer:
                for d in damaged:
                    print(f"{d}; moved to {d.path}", file=sys.stderr)
                print(f"resuming {cfg.run_name} after epoch {start} from {ckpt.directory}", file=sys.stderr)
        state = train_epochs(cfg, run, ckpt, state, log, start=start, progress=progress, on_epoch_end=on_epoch_end)
        ckpt.wait()
        last_epoch = ckpt.latest_epoch()
        best_epoch = ckpt.best_epoch()
        try:
            best_state, _ = ckpt.restore(best_epoch, state)
        except DamagedCheckpoint as e:
            raise DamagedCheckpoint(
                f"{e}; it is the best epoch: delete {e.path} to evaluate the best of the others, or delete "
                f"{cfg.run_dir} to train the run again", epoch=e.epoch, path=e.path) from None

    out_dir = Path(cfg.runs_dir) / cfg.run_name
    splits = {"dev": run.dev_data}
    if run.meta.splits.get("test"):
        test_data = load_inputs(cfg, "test", run.meta, run.standardizer, read_split=read_split)
        if has_labels(test_data):
            splits["test"] = test_data
    metrics = evaluate_splits(cfg, run.meta, run.predict, best_state, splits, run.mesh, epoch=best_epoch,
                              out_dir=out_dir, write=writer)
    if writer:
        write_json(out_dir / "config.json", run.run_info)
        # Written last: its presence means the run's outputs are complete (eri_jax.reproduce skips on it).
        write_json(out_dir / "train_log.json", {"run": cfg.run_name, "best_epoch": best_epoch,
                                                 "last_epoch": last_epoch, "epochs": log})
    return TrainResult(cfg, log, best_epoch, last_epoch, metrics, state)
