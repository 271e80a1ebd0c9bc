"""Per-run outputs of a sweep, retrievable by run id.

    <out>/runs/<run_id>/predictions_dev.csv   MuSe format (`File_ID,<emotions>`), best epoch's parameters
    <out>/runs/<run_id>/best_params.npz       the model's parameters at the best epoch, keys as
                                              `checkpointing.flatten_state` writes them (`linear1.kernel.value`)
    <out>/runs/<run_id>/run.json              setting, seed, model settings to rebuild it, best epoch,
                                              per-epoch history (train loss, dev mean and per-emotion r)

`load_run(out, run_id)` reads them back; `restore_model(out, run_id)` rebuilds the model with
`model_factory.build_model` and loads the best parameters, so it predicts what `predictions_dev.csv` holds.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from eri_jax.models.factory import build_model

# The writers live in eri_jax.result_files; `outputs.write_json` / `outputs.write_predictions` stay
# importable from here for existing callers.
from eri_jax.result_files import atomic_path, write_json, write_predictions
from eri_jax.training.checkpoints import unflatten_state

RUNS_DIR = "runs"


@dataclasses.dataclass
class RunFiles:
    """A run read back: its `run.json`, best parameters (flat dict) and dev predictions (ids, [N,E])."""

    info: dict[str, Any]
    params: dict[str, np.ndarray]
    ids: list[str]
    predictions: np.ndarray


def run_dir(out: str | os.PathLike, run_id: str) -> Path:
    return Path(out) / RUNS_DIR / run_id


def write_run(out: str | os.PathLike, run_id: str, *, info: dict[str, Any], params: dict[str, np.ndarray],
              ids: Sequence[str], predictions: np.ndarray, emotions: Sequence[str]) -> Path:
    """Write one run's three files into `<out>/runs/<run_id>/`; return that folder."""
    d = run_dir(out, run_id)
    write_predictions(d / "predictions_dev.csv", ids, predictions, emotions)
    with atomic_path(d / "best_params.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in params.items()})
    write_json(d / "run.json", {"run_id": run_id, **info})
    return d


def load_run(out: str | os.PathLike, run_id: str) -> RunFiles:
    """Read a run's files back by id; FileNotFoundError listing the runs that exist otherwise."""
    d = run_dir(out, run_id)
    if not (d / "run.json").exists():
        root = Path(out) / RUNS_DIR
        have = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
        raise FileNotFoundError(f"no run {run_id!r} in {root}; runs there: {', '.join(have) or 'none'}")
    info = json.loads((d / "run.json").read_text())
    with np.load(d / "best_params.npz", allow_pickle=False) as z:
        params = {k: z[k] for k in z.files}
    with open(d / "predictions_dev.csv", newline="") as f:
        rows = list(csv.reader(f))
    ids = [r[0] for r in rows[1:]]
    preds = np.array([[float(v) for v in r[1:]] for r in rows[1:]], np.float32).reshape(len(ids), -1)
    return RunFiles(info=info, params=params, ids=ids, predictions=preds)


def restore_model(out: str | os.PathLike, run_id: str):
    """The run's model rebuilt from `run.json` with its best parameters loaded (an `nnx.Module`)."""
    files = load_run(out, run_id)
    i = files.info
    kwargs = dict(i["model_kwargs"])
    if i.get("activation"):
        kwargs["activation"] = i["activation"]
    model = build_model(i["model"], kwargs, in_dim=int(i["in_dim"]), num_outputs=len(i["emotions"]),
                        seed=int(i["seed"]), precision=i.get("precision", "float32"))
    template = nnx.state(model, nnx.Param)
    nnx.update(model, unflatten_state(template, files.params))
    model.eval()
    return model
