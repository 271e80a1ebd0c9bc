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
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


def _json_safe(obj: Any) -> Any:
    """NaN/inf → None, numpy → Python, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write with NaN as null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_json_safe(obj), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def write_predictions(path: Path, ids: Sequence[str], predictions: np.ndarray, emotions: Sequence[str]) -> None:
    """MuSe-format predictions CSV (header `File_ID,<emotions>`), written atomically."""
    predictions = np.asarray(predictions)
    if predictions.shape != (len(ids), len(emotions)):
        raise ValueError(f"{path}: predictions of shape {predictions.shape} for {len(ids)} clips x "
                         f"{len(emotions)} emotions")
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["File_ID", *emotions])
        for clip_id, row in zip(ids, predictions):
            w.writerow([clip_id, *(str(v) for v in row)])  # str(np.float32): round-trips exactly
    os.replace(tmp, path)


def write_run(out: str | os.PathLike, run_id: str, *, info: dict[str, Any], params: dict[str, np.ndarray],
              ids: Sequence[str], predictions: np.ndarray, emotions: Sequence[str]) -> Path:
    """Write one run's three files into `<out>/runs/<run_id>/`; return that folder."""
    d = run_dir(out, run_id)
    d.mkdir(parents=True, exist_ok=True)
    write_predictions(d / "predictions_dev.csv", [str(i) for i in ids], predictions, emotions)
    tmp = d / ".best_params.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in params.items()})
    os.replace(tmp, d / "best_params.npz")
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
    from flax import nnx

    from eri_jax.checkpointing import unflatten_state
    from eri_jax.model_factory import build_model

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
