"""`python -m eri_jax.train`: train ViPER, the probe or the MuSe LSTM on a built TFDS dataset.

    python -m eri_jax.train --model viper --preset demo                  # demo dataset, small ViPER
    python -m eri_jax.train --model viper --modalities VATF --text-source vllava_p2
    python -m eri_jax.train --model probe --features vllava_emb_p1
    python -m eri_jax.train --model lstm --features fau

Each epoch trains on `train` (seeded shuffle per epoch, fixed batch shape, padded last batch), then
predicts `dev` and computes the mean Pearson r; orbax keeps the best epoch and the last one under
`<workdir>/<run>/`. Rerunning the same command resumes from the last checkpoint (and only evaluates if
training is complete). Afterwards the best epoch is evaluated on dev (and on test when it has labels)
into `<runs-dir>/<run>/` with `train_log.json` and `config.json`.

Defaults: `--preset` is `paper` for real data and `demo` for synthetic data; every unset option takes
the preset's value (see presets.py); features are chosen as described in features.py.

Losses stay on the device during an epoch (no per-step host sync); at the end of the epoch a NaN or
infinite loss stops the run with the epoch and step where it first appeared, before that epoch is
saved. With several local devices each batch is split over them (sharding.py); the result equals
the single-device run up to float rounding. A rerun under the same run name with other settings is
refused; only `--epochs` may change, and only to as many epochs as the run holds or more (to train
further). A kept checkpoint that no longer restores (a truncated file) is named in one line; training
resumes from the newest kept one that restores (checkpointing.py).
"""
from __future__ import annotations

import argparse
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

from eri_jax import features as feats
from eri_jax.result_files import write_json
from eri_jax import sharding as shd
from eri_jax.checkpointing import DamagedCheckpoint, RunCheckpoints
from eri_jax.model_factory import OUTPUT_BIAS_INITS, build_model, set_output_bias
from eri_jax.models.probe import ACTIVATION_NAMES
from eri_jax.presets import MODELS, OPTIMIZERS, PRESETS, SCHEDULES, resolve_preset
from eri_jax.token_layout import viper_block_widths
from eri_jax.train_step import learning_rate, make_optimizer, make_predict, make_train_step
from tfds_hume.cli_errors import cli_main

# Marks a field that defines a run: a rerun with another value under the same run name is refused, not resumed.
_IDENTITY = {"identity": True}


def _identity(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=_IDENTITY)


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclasses.dataclass
class TrainConfig:
    """Everything that determines a run (saved as `config.json`; `evaluate.py` rebuilds from it)."""

    model: str = _identity()
    preset: str = _identity()
    dataset: str = _identity()
    features: list[str] = _identity()
    model_kwargs: dict[str, Any] = _identity()
    optimizer: str = _identity()
    lr: float = _identity()
    weight_decay: float = _identity()
    batch_size: int = _identity()
    epochs: int = dataclasses.field()  # may grow on a rerun (train further)
    schedule: str = _identity()
    halve_every: int = _identity()  # epochs between LR halvings; 0 = constant LR
    standardize: bool = _identity()
    precision: str = _identity()
    seed: int = _identity()
    run_name: str = dataclasses.field()
    data_dir: str | None = None
    workdir: str = "checkpoints"
    runs_dir: str = "runs"
    init_from: str | None = _identity(None)
    trust_pickle: bool = False
    output_bias: str = _identity("zero")
    modalities: str | None = None
    text_source: str | None = None
    # ViPER's token layout: {feature key: width its block is zero-padded to} (token_layout.py).
    block_widths: dict[str, int] | None = _identity(None)
    perceiver_config: str | None = None  # --perceiver-config: the HF config of an --init-from state dict
    model_source: str | None = None  # with --init-from: where model_kwargs came from

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def run_dir(self) -> Path:
        return Path(self.workdir) / self.run_name

    def halve_steps(self, steps_per_epoch: int) -> int:
        """Optimizer updates between LR halvings (0 = constant LR)."""
        return self.halve_every * steps_per_epoch


# Fields that define a run: a rerun with other values under the same run name is refused, not resumed.
IDENTITY_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("identity"))


@dataclasses.dataclass
class TrainResult:
    """What a finished `train()` returns: the log, best/last epochs, evaluation metrics, final state."""

    config: TrainConfig
    log: list[dict[str, Any]]
    best_epoch: int
    last_epoch: int
    metrics: dict[str, dict[str, Any]]
    state: Any


def default_run_name(model: str, preset: str, features: Sequence[str], seed: int,
                     modalities: str | None = None, text_source: str | None = None,
                     changed: Sequence[str] = ()) -> str:
    """`changed`: tags of model settings that differ from the preset's (e.g. `tanh`, `h128`)."""
    tag = f"{modalities.upper()}-{text_source}" if modalities else "+".join(features)
    return "-".join([model, preset, tag, *changed, f"s{seed}"])


def _activation_name(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def model_settings(args: argparse.Namespace, preset_kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The preset's model kwargs with `--activation` (probe) and `--hidden` (probe, LSTM) applied, and the
    run-name tags of those that differ from the preset."""
    kwargs, changed = dict(preset_kwargs), []
    activation = getattr(args, "activation", None)
    hidden = getattr(args, "hidden", None)
    if activation is not None:
        if args.model != "probe":
            raise ValueError(f"--activation is the probe's; the {args.model} has a fixed one")
        if activation != kwargs.get("activation"):
            changed.append(activation)
        kwargs["activation"] = activation
    if hidden is not None:
        if args.model == "viper":
            raise ValueError("--hidden is the probe's and the LSTM's; the ViPER size comes from its preset")
        if hidden < 1:
            raise ValueError(f"--hidden {hidden}: must be at least 1")
        if hidden != kwargs.get("hidden"):
            changed.append(f"h{hidden}")
        kwargs["hidden"] = hidden
    return kwargs, changed


# The flags of `python -m eri_jax.train` that override a preset setting of the same name (None = not given).
PRESET_FLAGS = ("optimizer", "lr", "weight_decay", "batch_size", "epochs", "schedule", "halve_every",
                "standardize", "text_source")


def make_config(args: argparse.Namespace, *, synthetic: bool) -> TrainConfig:
    """The run's config: the preset (paper for real data, demo for synthetic) with the user's flags over it."""
    preset_name = args.preset or ("demo" if synthetic else "paper")
    # Loaded weights keep their own output bias unless the user asks for the train mean.
    output_bias = args.output_bias or ("zero" if args.init_from else None)
    p = resolve_preset(args.model, preset_name, output_bias=output_bias,
                       **{k: getattr(args, k) for k in PRESET_FLAGS})
    explicit = [k for k in (args.features or "").split(",") if k.strip()]
    if explicit and args.modalities:
        raise ValueError("pass either --features (dataset keys) or --modalities (ViPER letters), not both")
    modalities = args.modalities
    text_source = p.text_source
    if args.model != "viper" and modalities:
        raise ValueError("--modalities is ViPER's; pass --features for the probe and the LSTM")
    if explicit:
        keys = feats.resolve_features(features=explicit)
    elif modalities:
        keys = feats.resolve_features(modalities=modalities, text_source=text_source)
    elif p.features:
        keys = list(p.features)
    else:
        modalities = p.modalities
        keys = feats.resolve_features(modalities=modalities, text_source=text_source)
    if not modalities:
        text_source = None
    seed = args.seed if args.seed is not None else 0
    model_kwargs, model_source = dict(p.model_kwargs), None
    if args.init_from and args.model == "viper":
        if p.standardize:
            raise ValueError("--init-from with --standardize: a ViPER checkpoint was trained on raw tokens, and "
                             "z-scored inputs would not reproduce it; drop --standardize")
        model_kwargs, model_source = checkpoint_model_kwargs(args, p.model_kwargs, preset_name)
    elif args.perceiver_config:
        raise ValueError("--perceiver-config describes the state dict of --init-from (ViPER); pass --init-from too")
    model_kwargs, changed = model_settings(args, model_kwargs)  # over the checkpoint's, with --init-from
    return TrainConfig(
        model=args.model, preset=preset_name, dataset=args.dataset, features=keys,
        model_kwargs=model_kwargs, optimizer=p.optimizer, lr=p.lr, weight_decay=p.weight_decay,
        batch_size=p.batch_size, epochs=p.epochs, schedule=p.schedule, halve_every=p.halve_epochs,
        standardize=p.standardize, output_bias=p.output_bias, precision=args.precision, seed=seed,
        run_name=args.run_name or default_run_name(args.model, preset_name, keys, seed, modalities,
                                                    text_source, changed),
        data_dir=args.data_dir, workdir=args.workdir, runs_dir=args.runs_dir, init_from=args.init_from,
        trust_pickle=args.trust_pickle, modalities=modalities, text_source=text_source,
        block_widths=viper_block_widths(modalities, keys) if args.model == "viper" and modalities else None,
        perceiver_config=args.perceiver_config, model_source=model_source)


def checkpoint_model_kwargs(args: argparse.Namespace, preset_kwargs: dict[str, Any],
                            preset_name: str) -> tuple[dict[str, Any], str]:
    """ViPER's settings from the --init-from checkpoint (they override the preset's, said aloud)."""
    from eri_jax.models.viper_import import checkpoint_config

    vcfg, source = checkpoint_config(args.init_from, trust_pickle=args.trust_pickle,
                                     perceiver_config=args.perceiver_config)
    kwargs = {f.name: getattr(vcfg, f.name) for f in dataclasses.fields(vcfg)
              if f.name not in ("d_model", "num_outputs")}  # these come from the data
    print(f"--init-from: the model is the checkpoint's, from {source}: d_model {vcfg.d_model}, "
          f"{vcfg.num_latents} latents x {vcfg.d_latents}, {vcfg.num_blocks} block(s) x "
          f"{vcfg.num_self_attends_per_block} layers, {vcfg.num_self_attention_heads} self-/"
          f"{vcfg.num_cross_attention_heads} cross-attention heads", file=sys.stderr)
    overridden = [f"{k} {v} -> {kwargs[k]}" for k, v in preset_kwargs.items() if kwargs.get(k) != v]
    if overridden:
        print(f"  (overrides the {preset_name} preset's {', '.join(overridden)})", file=sys.stderr)
    return kwargs, source


# ---------------------------------------------------------------------------------------------- data


# (split name) -> the raw split (`eri_jax.data.SplitData`) with the run's features, in place of reading it
# from the dataset: cross-fitting (eri_jax.crossfit) trains on a subset of the train clips this way.
SplitReader = Callable[[str], Any]


def load_inputs(cfg: TrainConfig, split: str, meta: Any, standardizer: feats.Standardizer | None = None, *,
                read_split: SplitReader | None = None):
    """Load `split` with the run's features (or take it from `read_split`) and assemble the model input."""
    if read_split is None:
        from eri_jax.data import load_split

        raw = load_split(split, cfg.features, name=cfg.dataset, data_dir=cfg.data_dir)
    else:
        raw = read_split(split)
    data = feats.assemble(raw, cfg.features, meta.features, cfg.model, cfg.block_widths)
    return standardizer.apply(data) if standardizer is not None else data


def fit_standardizer(train_data: Any) -> feats.Standardizer:
    return feats.Standardizer.fit(train_data.features[feats.INPUT_KEY],
                                  train_data.frame_masks.get(feats.INPUT_KEY))


def batch_arrays(batch: Any) -> dict[str, np.ndarray]:
    """The jit-facing dict of a `data.Batch` (train_step.py describes the keys)."""
    out = {"x": batch.inputs[feats.INPUT_KEY], "labels": batch.labels, "mask": batch.mask}
    if feats.INPUT_KEY in batch.frame_masks:
        out["frame_mask"] = batch.frame_masks[feats.INPUT_KEY]
    return out


def predict_split(predict: Callable, state: Any, data: Any, batch_size: int, mesh) -> np.ndarray:
    """Predictions float32 [N,E] for every clip of an assembled split, in its row order."""
    from eri_jax.data import iterate_batches

    n, e = data.labels.shape
    out = np.full((n, e), np.nan, np.float32)
    for batch in iterate_batches(data, batch_size, shuffle=False):
        pred = np.asarray(predict(state, shd.shard_batch(batch_arrays(batch), mesh)))
        out[batch.index[batch.mask]] = pred[batch.mask]
    return out


def has_labels(data: Any) -> bool:
    return bool(len(data.ids)) and bool(np.isfinite(data.labels).any())


# --------------------------------------------------------------------------------------------- setup


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


def evaluate_splits(cfg: TrainConfig, meta: Any, predict: Callable, state: Any, splits: dict[str, Any],
                    mesh, *, epoch: int, out_dir: Path, checkpoint: str = "best") -> dict[str, dict]:
    """Predict each assembled split with `state` and write its evaluation files into `out_dir`."""
    from eri_jax.evaluation import write_evaluation

    eval_meta = {"model": cfg.model, "preset": cfg.preset, "run": cfg.run_name, "dataset": cfg.dataset,
                 "dataset_source": meta.dataset, "synthetic": meta.synthetic,
                 "random_weights": meta.random_weights, "features": cfg.features, "epoch": epoch,
                 "checkpoint": checkpoint, "checkpoint_dir": str(cfg.run_dir)}
    metrics = {}
    for split, data in splits.items():
        pred = predict_split(predict, state, data, cfg.batch_size, mesh)
        labels = data.labels if has_labels(data) else None
        metrics[split] = write_evaluation(out_dir, split=split, ids=data.ids, predictions=pred,
                                          labels=labels, emotions=list(meta.emotions), meta=eval_meta)
    return metrics


# ----------------------------------------------------------------------------------------------- run

# Files that other commands derive from a trained model (eri_jax.evaluate --split train, eri_jax.crossfit).
DERIVED_OUTPUTS = ("predictions_train.csv", "predictions_train_oof.csv", "crossfit.json")


def _remove_stale_outputs(out_dir: Path) -> None:
    """A fresh model under an old run name: delete what was derived from the earlier model, so that the
    report cannot fuse predictions of a model that no longer exists."""
    for name in DERIVED_OUTPUTS:
        path = out_dir / name
        if path.is_file():
            path.unlink()
            print(f"removed {path}: it came from an earlier model of this run name", file=sys.stderr)



def train(cfg: TrainConfig, *, progress: bool = True, devices: Sequence[jax.Device] | None = None,
          on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
          read_split: SplitReader | None = None) -> TrainResult:
    """Train (or resume) the run `cfg`, then evaluate its best epoch into `<runs_dir>/<run>/`.

    devices: the devices to shard each batch over (default: all local devices).
    read_split: where the splits come from instead of the dataset (`SplitReader`; default: the dataset).
    on_epoch_end(epoch, log_entry) is called after each epoch's checkpoint is saved (tests use it to
    interrupt a run).
    """
    from eri_jax.data import dataset_meta, iterate_batches, num_batches
    from eri_jax.metrics import mean_over_defined, pearson_per_emotion

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
    train_step = make_train_step(graphdef, state_sharding=rep, batch_sharding=split_batch)
    predict = make_predict(graphdef, state_sharding=rep, batch_sharding=split_batch)

    run_dir = cfg.run_dir
    saved_config = run_dir / "config.json"
    if saved_config.exists():
        _check_same_run(json.loads(saved_config.read_text()), cfg, saved_config)
    run_info = {**cfg.to_json(), "in_dim": in_dim, "emotions": emotions,
                "standardizer": standardizer.to_json() if standardizer else None,
                "feature_specs": {k: dataclasses.asdict(meta.features[k]) for k in cfg.features},
                "synthetic": meta.synthetic, "random_weights": meta.random_weights,
                "steps_per_epoch": steps_per_epoch,
                "devices": [str(d) for d in mesh.devices.flat]}

    log: list[dict[str, Any]] = []
    with RunCheckpoints(run_dir) as ckpt:
        start = ckpt.latest_epoch() or 0
        _check_epochs(cfg, start)
        write_json(saved_config, run_info)
        if not start:
            _remove_stale_outputs(Path(cfg.runs_dir) / cfg.run_name)
        if start:
            start, state, saved_meta, damaged = ckpt.restore_newest(state)
            for d in damaged:
                print(f"{d}; moved to {d.path}", file=sys.stderr)
            log = list(saved_meta["log"])
            print(f"resuming {cfg.run_name} after epoch {start} from {ckpt.directory}", file=sys.stderr)
        epochs_bar = tqdm(range(start + 1, cfg.epochs + 1), initial=start, total=cfg.epochs,
                          desc=cfg.run_name, disable=None if progress else True, unit="epoch")  # None: TTY only
        for epoch in epochs_bar:
            t0 = time.perf_counter()
            lr = learning_rate(state, halve_steps)
            losses = []
            batches = iterate_batches(train_data, cfg.batch_size, shuffle=True, seed=cfg.seed,
                                      epoch=epoch - 1)
            for batch in tqdm(batches, total=steps_per_epoch, leave=False, disable=None if progress else True,
                              desc=f"epoch {epoch}", unit="batch"):
                state, loss = train_step(state, shd.shard_batch(batch_arrays(batch), mesh))
                losses.append(loss)
            losses = np.asarray(jnp.stack(losses))
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                step = int(bad[0]) + 1
                raise TrainingDiverged(
                    f"{cfg.run_name}: training loss is {losses[bad[0]]} at epoch {epoch}, step {step} of "
                    f"{steps_per_epoch} (global step {(epoch - 1) * steps_per_epoch + step}); nothing of "
                    f"this epoch was saved. Lower --lr (now {cfg.lr:g}) or use --precision float32.")
            dev_pred = predict_split(predict, state, dev_data, cfg.batch_size, mesh)
            per_emotion = pearson_per_emotion(dev_pred, dev_data.labels, emotions)
            r, _ = mean_over_defined(per_emotion)
            entry = {"epoch": epoch, "train_loss": float(losses.mean()), "dev_mean_pearson": _finite_or_none(r),
                     "dev_pearson": [_finite_or_none(float(v)) for v in per_emotion], "lr": lr,
                     "steps": int(losses.size), "time_s": round(time.perf_counter() - t0, 3)}
            log.append(entry)
            ckpt.save(epoch, state, {"epoch": epoch, "log": log}, r)
            epochs_bar.set_postfix(loss=f"{entry['train_loss']:.4f}", dev_r=f"{r:.4f}")
            if on_epoch_end is not None:
                on_epoch_end(epoch, entry)
        ckpt.wait()
        last_epoch = ckpt.latest_epoch()
        best_epoch = ckpt.best_epoch()
        final_state = state
        try:
            best_state, _ = ckpt.restore(best_epoch, state)
        except DamagedCheckpoint as e:
            raise DamagedCheckpoint(
                f"{e}; it is the best epoch: delete {e.path} to evaluate the best of the others, or delete "
                f"{run_dir} to train the run again", epoch=e.epoch, path=e.path) from None

    out_dir = Path(cfg.runs_dir) / cfg.run_name
    splits = {"dev": dev_data}
    if meta.splits.get("test"):
        test_data = load_inputs(cfg, "test", meta, standardizer, read_split=read_split)
        if has_labels(test_data):
            splits["test"] = test_data
    metrics = evaluate_splits(cfg, meta, predict, best_state, splits, mesh, epoch=best_epoch,
                              out_dir=out_dir)
    write_json(out_dir / "config.json", run_info)
    # Written last: its presence means the run's outputs are complete (eri_jax.reproduce skips on it).
    write_json(out_dir / "train_log.json", {"run": cfg.run_name, "best_epoch": best_epoch,
                                             "last_epoch": last_epoch, "epochs": log})
    return TrainResult(cfg, log, best_epoch, last_epoch, metrics, final_state)


# ----------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eri_jax.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="hume_reaction/demo", help="TFDS name/config (default hume_reaction/demo)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: $TFDS_DATA_DIR or TFDS's)")
    p.add_argument("--model", choices=MODELS, default="viper")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="defaults per model (presets.py); default: paper for real data, demo for synthetic")
    p.add_argument("--features", default=None, help="comma-separated dataset feature keys, e.g. pixels,fau")
    p.add_argument("--modalities", default=None, help="ViPER modality letters, subset of VATF")
    p.add_argument("--text-source", choices=list(feats.TEXT_SOURCES), default=None,
                   help="what T means for --modalities (features.py)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="step: halve the LR every --halve-every epochs; constant")
    p.add_argument("--halve-every", type=int, default=None)
    p.add_argument("--activation", type=_activation_name, choices=ACTIVATION_NAMES, default=None,
                   help="probe activation (paper Table 4; default: the preset's, relu)")
    p.add_argument("--hidden", type=int, default=None,
                   help="probe / LSTM hidden width (default: the preset's)")
    p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                   help="z-score inputs with train-split statistics (default: the preset's)")
    p.add_argument("--output-bias", choices=OUTPUT_BIAS_INITS, default=None,
                   help="initial output bias: zero (the models' own init) or the train-label mean "
                        "(default: the preset's)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="compute dtype (parameters stay float32)")
    p.add_argument("--workdir", default="checkpoints", help="checkpoints go to <workdir>/<run>/")
    p.add_argument("--run-name", default=None, help="default: model-preset-features-seed")
    p.add_argument("--runs-dir", default="runs", help="evaluation outputs go to <runs-dir>/<run>/")
    p.add_argument("--init-from", default=None, help="ViPER: Hugging Face Perceiver weights to start from")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow --init-from to unpickle a whole model (only for files you trust)")
    p.add_argument("--perceiver-config", default=None, metavar="CONFIG.JSON",
                   help="Hugging Face PerceiverConfig of an --init-from state dict (default: the pickled "
                        "model's own config, else ViPER's published one where the shapes are ViPER's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from eri_jax.data import dataset_meta

    try:
        meta = dataset_meta(args.dataset, args.data_dir)
        cfg = make_config(args, synthetic=meta.synthetic)
        print(f"run {cfg.run_name}: {cfg.model} ({cfg.preset} preset) on {cfg.dataset} "
              f"[{'synthetic' if meta.synthetic else meta.dataset}], features {','.join(cfg.features)}, "
              f"{jax.device_count()} device(s)", file=sys.stderr)
        result = train(cfg, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    mean = result.metrics["dev"].get("mean_pearson")
    print(f"best epoch {result.best_epoch}/{result.last_epoch}: dev mean Pearson "
          f"{'undefined' if mean is None else format(mean, '.4g')}; outputs in {Path(cfg.runs_dir) / cfg.run_name}, "
          f"checkpoints in {cfg.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
