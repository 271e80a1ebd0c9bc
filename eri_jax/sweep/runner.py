"""Run a whole sweep: load the splits once, group runs by input shape, train each group vmapped, write outputs.

`train_runs` works on arrays (no TFDS): it trains a list of runs that share one input on one engine, in
vmapped chunks, and returns each run's best epoch, history, dev predictions and best parameters.
`run_sweep` does the rest for a built TFDS dataset: features (inputs/assembly.py), groups, engines (one per
input shape, so groups of equal shape share the compiled program), per-run files (outputs.py) and
tables (tables.py), plus `sweep.json` with everything machine-readable.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import queue
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from eri_jax.evaluation.metrics import mean_over_defined, pearson_per_emotion
from eri_jax.inputs import assembly as feats
from eri_jax.inputs.token_layout import viper_block_widths
from eri_jax.models.factory import compute_dtype, viper_config
from eri_jax.models.probe import activation_index
from eri_jax.sweep import engine as eng
from eri_jax.sweep import grid, outputs, slices, tables
from eri_jax.training.checkpoints import flatten_state
from eri_jax.training.processes import is_writer

FAST_COMPILE = (("xla_backend_optimization_level", 0),)


@dataclasses.dataclass
class SweepConfig:
    """Everything a sweep needs (saved in `sweep.json`). `activations`: [None] for ViPER."""

    model: str
    dataset: str
    inputs: list[grid.Inputs]
    seeds: list[int]
    lrs: list[float]
    activations: list[str | None]
    epochs: int
    batch_size: int
    model_kwargs: dict[str, Any]
    out: str
    data_dir: str | None = None
    preset: str = "paper"
    eval_batch_size: int = 256
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    halve_every: int = 0
    precision: str = "float32"
    chunk: int = 0
    table: int | None = None
    modality_map: dict[str, str] | None = None
    fast_compile: bool = False  # XLA backend optimisation level 0: quicker compiles for tiny models

    def engine_config(self) -> eng.EngineConfig:
        return eng.EngineConfig(batch_size=self.batch_size, eval_batch_size=self.eval_batch_size,
                                optimizer=self.optimizer, weight_decay=self.weight_decay,
                                halve_every=self.halve_every,
                                compiler_options=FAST_COMPILE if self.fast_compile else ())


@dataclasses.dataclass
class RunOutput:
    """One trained run, on host: best epoch (by the on-device dev score), history, predictions, params."""

    run: grid.RunSpec
    best_epoch: int
    device_best_score: float
    history: dict[str, np.ndarray]   # train_loss [epochs], dev_mean_pearson [epochs], dev_pearson [epochs,E]
    predictions: np.ndarray          # dev [N,E] from the best parameters
    params: dict[str, np.ndarray]    # best parameters, flat (checkpointing.flatten_state keys)

    @property
    def diverged_epoch(self) -> int | None:
        bad = np.flatnonzero(~np.isfinite(self.history["train_loss"]))
        return int(bad[0]) + 1 if bad.size else None


def activation_indices(runs: Sequence[grid.RunSpec]) -> list[int]:
    return [activation_index(r.setting.activation) if r.setting.activation else 0 for r in runs]


def train_runs(engine: eng.Engine, runs: Sequence[grid.RunSpec], train: eng.SplitArrays,
               dev: eng.SplitArrays, epochs: int, *, chunk: int = 0, progress: bool = False,
               desc: str = "sweep", mesh: Any = None) -> tuple[list[RunOutput], dict[str, float]]:
    """Train `runs` (same input) vmapped in chunks of `chunk` runs (0 = all); return outputs and timings.

    mesh: a `eng.run_mesh` to split each chunk's runs over (train and dev `eng.replicated` on it); a chunk
    is padded to a multiple of its devices with copies of its last run, whose results are dropped.

    timings: `first_epoch_s` (includes compilation) and `total_s`, summed over chunks; `devices`, how
    many devices the last chunk's runs were split over, and `padding_runs`, the copies trained and dropped.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    out: list[RunOutput] = []
    timing = {"first_epoch_s": 0.0, "total_s": 0.0}
    for part in grid.chunks(runs, chunk):
        t0 = time.perf_counter()
        padded = list(part) + [part[-1]] * (eng.padded_runs(len(part), mesh) - len(part))
        carry = engine.init([r.seed for r in padded], [r.setting.lr for r in padded], activation_indices(padded),
                            mesh=mesh)
        bar = tqdm(total=epochs, desc=f"{desc} ({len(part)} runs)", unit="epoch", leave=False,
                   disable=None if progress else True)  # None: on a terminal only

        def on_epoch(e: int, m: eng.EpochMetrics) -> None:
            scores = eng.to_host(m.dev_mean_pearson)[:len(part)]  # waits for the epoch: progress stays truthful
            if e == 0:
                timing["first_epoch_s"] += time.perf_counter() - t0
            best = np.nanmax(scores) if np.isfinite(scores).any() else float("nan")
            bar.set_postfix(best_dev_r=f"{best:.4f}")
            bar.update(1)

        carry, history = eng.run_epochs(engine, carry, train, dev, epochs, on_epoch=on_epoch)
        preds = eng.to_host(engine.predict_best(carry, dev))
        timing["devices"] = len(carry.best_score.sharding.device_set)
        timing["padding_runs"] = timing.get("padding_runs", 0) + len(padded) - len(part)
        best_epoch, best_score, params = eng.to_host((carry.best_epoch, carry.best_score, carry.best_params))
        bar.close()
        timing["total_s"] += time.perf_counter() - t0
        for i, r in enumerate(part):
            out.append(RunOutput(
                run=r, best_epoch=int(best_epoch[i]), device_best_score=float(best_score[i]),
                history={k: np.asarray(v)[:, i] for k, v in history.items()}, predictions=preds[i],
                params={k: np.asarray(v) for k, v in flatten_state(eng.take_run(params, i)).items()}))
    return out, timing


def score_run(o: RunOutput, labels: np.ndarray, emotions: Sequence[str]) -> tables.RunResult:
    """The audited host metric (metrics.pearson_per_emotion) on the best parameters' dev predictions."""
    if o.best_epoch == 0 or not np.isfinite(o.predictions).all():
        r = np.full(len(emotions), np.nan)
    else:
        r = pearson_per_emotion(o.predictions, labels, emotions)
    return tables.RunResult(run=o.run, best_epoch=o.best_epoch, dev_mean_pearson=mean_over_defined(r)[0],
                            dev_pearson=r, diverged_epoch=o.diverged_epoch)


# ------------------------------------------------------------------------------------------ TFDS path


def _builder(cfg: SweepConfig, in_dim: int, num_outputs: int) -> eng.ModelBuilder:
    dtype = compute_dtype(cfg.precision)
    if cfg.model == "probe":
        return eng.probe_builder(in_dim, int(cfg.model_kwargs.get("hidden", 512)), num_outputs, dtype=dtype)
    if cfg.model == "viper":
        return eng.viper_builder(viper_config(cfg.model_kwargs, in_dim=in_dim, num_outputs=num_outputs),
                                 dtype=dtype)
    raise ValueError(f"sweeps train the probe or ViPER, not {cfg.model!r}")


def _arrays(data: Any) -> eng.SplitArrays:
    return eng.SplitArrays(x=data.features[feats.INPUT_KEY], labels=np.asarray(data.labels, np.float32),
                           frame_mask=data.frame_masks.get(feats.INPUT_KEY))


def load_group_data(cfg: SweepConfig, meta: Any) -> dict[tuple[str, ...], tuple[Any, Any]]:
    """Assembled (train, dev) SplitData per distinct input, reading each split once for all inputs."""
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import load_split

    keys = list(dict.fromkeys(k for inp in cfg.inputs for k in inp.features))
    feats.check_numeric(keys, meta.features, cfg.dataset, flag="--feature-sets", sep="+")
    for split in ("train", "dev"):
        if not meta.splits.get(split):
            raise ValueError(f"dataset {cfg.dataset} has no {split} split (splits: {meta.splits})")
    raw = {s: load_split(s, keys, name=cfg.dataset, data_dir=cfg.data_dir) for s in ("train", "dev")}
    out = {}
    for inp in cfg.inputs:
        if inp.features in out:
            continue
        widths = viper_block_widths(inp.modalities, inp.features) if cfg.model == "viper" and inp.modalities else None
        pair = tuple(feats.assemble(raw[s], list(inp.features), meta.features, cfg.model, widths)
                     for s in ("train", "dev"))
        for split, d in zip(("train", "dev"), pair):
            if not len(d.ids) or not np.isfinite(d.labels).any():
                raise ValueError(f"dataset {cfg.dataset}: the {split} split has no labelled clip with "
                                 f"{'+'.join(inp.features)}")
        out[inp.features] = pair
    return out


@dataclasses.dataclass
class SweepResult:
    """What `run_sweep` returns (and wrote): per-run results in grid order, summary rows, group timings."""

    config: SweepConfig
    results: list[tables.RunResult]
    rows: list[tables.SummaryRow]
    groups: list[dict[str, Any]]


def run_sweep(cfg: SweepConfig, *, progress: bool = True) -> SweepResult:
    """Train every run of `cfg` on its dataset and write all outputs under `cfg.out` (module docstring)."""
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import dataset_meta

    meta = dataset_meta(cfg.dataset, cfg.data_dir)
    emotions = list(meta.emotions)
    runs = grid.expand_grid(cfg.model, inputs=cfg.inputs, lrs=cfg.lrs, seeds=cfg.seeds,
                            activations=cfg.activations)
    data = load_group_data(cfg, meta)

    def shape_of(r: grid.RunSpec):
        train, _ = data[r.setting.inputs.features]
        return tuple(train.features[feats.INPUT_KEY].shape[1:]), len(train.ids)

    groups = grid.group_runs(runs, shape_of)
    engines: dict[Any, eng.Engine] = {}
    by_id: dict[str, tables.RunResult] = {}
    group_log = []
    out = Path(cfg.out)
    base_info = {"model": cfg.model, "dataset": cfg.dataset, "synthetic": meta.synthetic,
                 "random_weights": meta.random_weights, "preset": cfg.preset, "emotions": emotions,
                 "epochs": cfg.epochs, "batch_size": cfg.batch_size, "optimizer": cfg.optimizer,
                 "weight_decay": cfg.weight_decay, "halve_every": cfg.halve_every, "precision": cfg.precision,
                 "model_kwargs": cfg.model_kwargs}
    # Runs split over the devices of a slice (sweep/slices.py), the splits replicated on it.
    local, me = jax.local_devices(), jax.process_index()
    pl = slices.plan(len(local), [[len(c) for c in grid.chunks(g, cfg.chunk)] for _, g in groups],
                     processes=jax.process_count())
    if pl.owners[0] is None:  # one mesh over every device of every process; every process trains every group
        meshes, mine = [eng.run_mesh()], list(range(len(groups)))
    else:  # slices of this process's devices; it trains its own groups and shares the results
        meshes = [eng.run_mesh(local[i:i + pl.size]) for i in range(0, len(local), pl.size)]
        mine = [g for g, owner in enumerate(pl.owners) if owner == me]
    lock = threading.Lock()

    def train_group(g: int, shape_key, features, group, mesh) -> tuple[list[RunOutput], dict[str, Any]]:
        train_data, dev_data = data[features]
        train = _arrays(train_data).to_device(eng.replicated(mesh))
        dev = _arrays(dev_data).to_device(eng.replicated(mesh))
        with lock:  # groups of one shape share an engine (its compiled programs), also across slices
            if shape_key not in engines:
                engines[shape_key] = eng.Engine(_builder(cfg, int(shape_key[0][-1]), len(emotions)),
                                                cfg.engine_config(), n_train=train.size)
        label = group[0].setting.inputs.label
        return train_runs(engines[shape_key], group, train, dev, cfg.epochs, chunk=cfg.chunk, progress=progress,
                          desc=f"group {g}/{len(groups)} {label}", mesh=mesh)

    jobs = [(g + 1, k, f, group) for g, ((k, _, f), group) in enumerate(groups) if g in mine]
    done = dict(zip(mine, _on_slices(meshes, jobs, train_group)))
    shared = pl.owners[0] is not None and jax.process_count() > 1
    trained = [slices.share(done.get(g), pl.owners[g]) if shared else done[g] for g in range(len(groups))]
    writer = is_writer()  # several processes compute the same results; one writes them
    for ((shape_key, _, features), group), (outs, timing) in zip(groups, trained):
        train_data, dev_data = data[features]
        in_dim = int(shape_key[0][-1])
        label = group[0].setting.inputs.label
        group_log.append({"inputs": label, "features": list(features), "input_shape": list(shape_key[0]),
                          "n_train": len(train_data.ids), "n_dev": len(dev_data.ids),
                          "runs": [o.run.run_id for o in outs], **timing})
        for o in outs:
            res = score_run(o, np.asarray(dev_data.labels), emotions)
            if res.diverged_epoch is not None:
                warnings.warn(f"run {o.run.run_id}: training loss is not finite from epoch {res.diverged_epoch}; "
                              f"its best epoch ({o.best_epoch}) is from before", RuntimeWarning, stacklevel=2)
            by_id[o.run.run_id] = res
            s = o.run.setting
            if not writer:
                continue
            outputs.write_run(out, o.run.run_id, ids=dev_data.ids, predictions=o.predictions, params=o.params,
                              emotions=emotions, info={
                                  **base_info, "seed": o.run.seed, "lr": s.lr, "activation": s.activation,
                                  "inputs": s.inputs.label, "modalities": s.inputs.modalities,
                                  "features": list(s.inputs.features), "in_dim": in_dim,
                                  "best_epoch": o.best_epoch, "dev_mean_pearson": res.dev_mean_pearson,
                                  "dev_pearson": dict(zip(emotions, res.dev_pearson)),
                                  "device_best_score": o.device_best_score,
                                  "diverged_epoch": res.diverged_epoch, "history": o.history})
    results = [by_id[r.run_id] for r in runs]
    title, notes = _describe(cfg, meta)
    if not writer:
        return SweepResult(cfg, results, tables.aggregate(results), group_log)
    rows = tables.write_tables(out, results, emotions, title=title, notes=notes)
    outputs.write_json(out / "sweep.json", {
        "config": dataclasses.asdict(cfg), "dataset": {"name": cfg.dataset, "source": meta.dataset,
                                                       "synthetic": meta.synthetic,
                                                       "random_weights": meta.random_weights},
        "emotions": emotions, "groups": group_log, "programs": len(engines),
        "runs": tables.runs_table(results, emotions), "summary": tables.summary_table(rows, emotions)})
    return SweepResult(cfg, results, rows, group_log)


def _on_slices(meshes: Sequence[Any], jobs: Sequence[tuple], fn) -> list[Any]:
    """`fn(*job, mesh)` for every job, up to one job per mesh at a time (threads: JAX dispatches from each
    to its own devices); the results in job order. One mesh: one job after another, in this thread."""
    if len(meshes) == 1:
        return [fn(*job, meshes[0]) for job in jobs]
    free: queue.Queue = queue.Queue()
    for m in meshes:
        free.put(m)

    def on_a_free_slice(job):
        mesh = free.get()
        try:
            return fn(*job, mesh)
        finally:
            free.put(mesh)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(meshes), thread_name_prefix="slice") as pool:
        return list(pool.map(on_a_free_slice, jobs))


def _describe(cfg: SweepConfig, meta: Any) -> tuple[str, list[str]]:
    data = f"{cfg.dataset} ({'synthetic data' if meta.synthetic else meta.dataset})"
    preset = grid.TABLES.get(cfg.table) if cfg.table else None
    title = f"{preset.description} — {data}" if preset else f"Sweep: {cfg.model} on {data}"
    notes = [f"{cfg.model}, preset `{cfg.preset}`: {cfg.epochs} epochs, batch {cfg.batch_size}, "
             f"{cfg.optimizer} (weight decay {cfg.weight_decay:g}), "
             + (f"LR halved every {cfg.halve_every} epochs" if cfg.halve_every else "constant LR")
             + f"; seeds {', '.join(map(str, cfg.seeds))}. Best epoch by dev mean Pearson (as in the paper)."]
    if meta.random_weights:
        notes.append("Features come from randomly initialised models (miniature test models).")
    if cfg.modality_map and any(i.modalities for i in cfg.inputs):
        notes.append("Modality letters → dataset features: "
                     + ", ".join(f"{k}={v}" for k, v in cfg.modality_map.items()) + ".")
    if preset and preset.paper:
        ref = ", ".join(f"{k} {v:.4f}" for k, v in preset.paper.items())
        notes.append(f"Paper, Hume-Reaction dev (single run each, for comparison): {ref}.")
    return title, notes
