"""Orbax checkpoints of a training run: the best epoch (by dev mean Pearson) and the last one.

Layout of a run folder `<workdir>/<run>/`:
  config.json      the training config (written by `train.py`; `evaluate.py` rebuilds the model from it)
  steps/<epoch>/   one orbax checkpoint per kept epoch: items `state` (every array of the
                   (model, optimizer) state, flattened to `path.to.leaf` keys; PRNG keys stored as their
                   raw key data) and `meta` (JSON: epoch, per-epoch log, dev metric)

Preservation: the latest checkpoint and the best one by `dev_mean_pearson` (higher is better) are
kept, all others deleted; an epoch whose dev Pearson is undefined (NaN) is ranked below every real
value. Orbax writes asynchronously; `RunCheckpoints` is a context manager that waits and closes.

Damage: orbax writes a step into a temporary folder and renames it when complete, so a kill during a
write leaves the previous steps intact. A step damaged after it was written (a truncated or missing
file: an interrupted copy, a full disk on a network filesystem) raises `DamagedCheckpoint`, one line
naming the run, the epoch and the file. `restore_newest` then resumes from the newest kept step that
restores and moves the damaged newer ones to `<run>/damaged/` (kept for inspection, never read again).
"""
from __future__ import annotations

import logging
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import AnyPreservationPolicy, BestN, LatestN

METRIC = "dev_mean_pearson"
UNDEFINED_METRIC = -2.0  # below every Pearson r, so a NaN epoch is never "best" over a real one


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _key_data(leaf: Any) -> Any:
    if isinstance(leaf, jax.ShapeDtypeStruct):  # abstract template (nnx.eval_shape)
        return jax.ShapeDtypeStruct(jax.eval_shape(jax.random.key_data, leaf).shape, np.uint32,
                                    sharding=leaf.sharding)
    return jax.random.key_data(leaf)


def _key_impl(leaf: Any) -> Any:
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return leaf.dtype._impl  # an abstract key array carries its implementation in the dtype only
    return jax.random.key_impl(leaf)


def flatten_state(state: Any) -> dict[str, Any]:
    """The state's arrays as a flat `{"0.layer.kernel.value": array}` dict; PRNG keys as key data.

    Works on concrete states and on abstract ones (leaves `jax.ShapeDtypeStruct`).
    """
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        flat[jax.tree_util.keystr(path, simple=True, separator=".")] = (
            _key_data(leaf) if _is_key(leaf) else leaf)
    return flat


def unflatten_state(template: Any, flat: dict[str, Any]) -> Any:
    """Put the arrays of `flat` back into the structure of `template` (re-wrapping PRNG keys)."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(template)
    missing = []
    leaves = []
    for path, leaf in paths:
        name = jax.tree_util.keystr(path, simple=True, separator=".")
        if name not in flat:
            missing.append(name)
            continue
        value = flat[name]
        leaves.append(jax.random.wrap_key_data(value, impl=_key_impl(leaf))
                      if _is_key(leaf) else value)
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} arrays of the model, e.g. {missing[:5]}; "
                         "was it written for another model or config?")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _abstract(flat: dict[str, Any]) -> dict[str, jax.ShapeDtypeStruct]:
    return {k: jax.ShapeDtypeStruct(np.shape(v), v.dtype, sharding=getattr(v, "sharding", None))
            for k, v in flat.items()}


class DamagedCheckpoint(ValueError):
    """A kept checkpoint step that no longer restores (its files are truncated, missing or corrupt)."""

    def __init__(self, message: str, *, epoch: int, path: Path):
        super().__init__(message)
        self.epoch = epoch
        self.path = path


# TensorStore names the failing files and the reason in the innermost error's message, outermost first,
# e.g. 'OUT_OF_RANGE: Error reading "w/0" in OCDBT database at local file ".../state/": Error reading Byte
# range [0, 4266) of local file ".../state/d/3b70...": Requested byte range [0, 4266) is not valid for
# value of size 1000 [tensorstore_spec=...]'; orbax wraps it in a bare Exception with the whole TensorStore
# spec (dozens of lines). The reason is the innermost error's first line: its status code, the last file it
# names and what follows that file, without the spec.
_FILE_IN_MESSAGE = re.compile(r'file "([^"]+)"')


def _reason(error: BaseException) -> tuple[str, str | None]:
    """(one-line reason, file named by the error or None) from the innermost cause of `error`."""
    inner = error
    while inner.__cause__ is not None or (inner.__context__ is not None and not inner.__suppress_context__):
        inner = inner.__cause__ or inner.__context__
    text = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
    text = re.sub(r"\s*\[tensorstore_spec\b.*$", "", text)
    matches = list(_FILE_IN_MESSAGE.finditer(text))
    path = matches[-1][1] if matches else getattr(inner, "filename", None)
    if matches:  # the file is named on its own: keep the status code and what follows the file name
        code = re.match(r"[A-Z_]+(?=: )", text)
        text = ((code[0] + ": ") if code else "") + text[matches[-1].end():].lstrip(' :')
    text = re.sub(r"\s+", " ", text)
    return (text[:300] + "...") if len(text) > 300 else text, path


def _metric_value(metrics: dict[str, float]) -> float:
    v = metrics.get(METRIC, UNDEFINED_METRIC)
    return UNDEFINED_METRIC if v is None or math.isnan(v) else float(v)


def _quiet_read_only(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Given directory is read only")


class RunCheckpoints:
    """Orbax `CheckpointManager` for one run: save per epoch, keep best + last, restore either."""

    def __init__(self, run_dir: str | Path, *, read_only: bool = False):
        self.directory = Path(run_dir).absolute() / "steps"
        policy = AnyPreservationPolicy([
            LatestN(n=1),
            BestN(get_metric_fn=_metric_value, reverse=False, n=1, keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(
            best_fn=_metric_value, best_mode="max", preservation_policy=None if read_only else policy,
            max_to_keep=None, create=not read_only, read_only=read_only,
            save_interval_steps=0 if read_only else 1)
        absl_log = logging.getLogger("absl")
        absl_log.addFilter(_quiet_read_only)  # orbax warns on every read-only open; reading is all we ask for
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options,
                                                  item_names=("state", "meta"))
        finally:
            absl_log.removeFilter(_quiet_read_only)

    def __enter__(self) -> "RunCheckpoints":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait(self) -> None:
        """Block until asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self.wait()
        self._manager.close()

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def best_epoch(self) -> int | None:
        return self._manager.best_step()

    def epochs(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, epoch: int, state: Any, meta: dict[str, Any], dev_metric: float) -> None:
        """Save the state after `epoch` (1-based) with its dev metric (NaN allowed) and JSON `meta`."""
        metric = UNDEFINED_METRIC if dev_metric is None or math.isnan(dev_metric) else float(dev_metric)
        self._manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(flatten_state(state)), meta=ocp.args.JsonSave(meta)),
            metrics={METRIC: metric})

    def restore(self, epoch: int, template: Any) -> tuple[Any, dict[str, Any]]:
        """The state saved at `epoch`, shaped (and sharded) like `template`, and its meta.

        `template` may be abstract (`nnx.eval_shape`, with shardings set) so nothing is allocated twice.
        Raises `DamagedCheckpoint` when the step's files do not restore.
        """
        if epoch not in self._manager.all_steps():
            raise FileNotFoundError(f"{self.directory}: no checkpoint for epoch {epoch}; "
                                    f"it has {sorted(self._manager.all_steps())}")
        target = _abstract(flatten_state(template))
        try:
            out = self._manager.restore(epoch, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
            meta = dict(out["meta"])
        except Exception as e:  # noqa: BLE001 -- orbax raises bare Exceptions; the cause is named below.
            # Whatever the cause, restore_newest moves a step aside only when an older one restores.
            reason, path = _reason(e)
            step_dir = self.directory / str(epoch)
            raise DamagedCheckpoint(
                f"run {self.directory.parent.name}: checkpoint of epoch {epoch} does not restore, file "
                f"{path or step_dir}: {reason}", epoch=epoch, path=step_dir) from e
        return unflatten_state(template, dict(out["state"])), meta

    def restore_newest(self, template: Any) -> tuple[int, Any, dict[str, Any], list[DamagedCheckpoint]]:
        """(epoch, state, meta, damaged) of the newest kept step that restores, newest first.

        The damaged newer steps are moved to `<run>/damaged/` so that training continues from the
        restored epoch (orbax never saves a step at or below its latest one). If no step restores, nothing
        is moved and `DamagedCheckpoint` says how to start over.
        """
        if not self._manager.all_steps():
            raise FileNotFoundError(f"{self.directory} holds no checkpoint")
        damaged: list[DamagedCheckpoint] = []
        for epoch in sorted(self._manager.all_steps(), reverse=True):
            try:
                state, meta = self.restore(epoch, template)
            except DamagedCheckpoint as e:
                damaged.append(e)
                continue
            for d in damaged:
                self._set_aside(d)
            return epoch, state, meta, damaged
        run_dir = self.directory.parent
        raise DamagedCheckpoint(
            f"{damaged[0]}; no kept checkpoint of this run restores (epochs "
            f"{', '.join(str(d.epoch) for d in damaged)}): delete {run_dir} to train it again from the start",
            epoch=damaged[0].epoch, path=damaged[0].path)

    def _set_aside(self, damaged: DamagedCheckpoint) -> None:
        dest = self.directory.parent / "damaged" / f"epoch{damaged.epoch}-{time.strftime('%Y%m%dT%H%M%S')}"
        if jax.process_index() == 0:  # over several processes: one moves, all wait for it, all reload
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(damaged.path), str(dest))
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils  # deferred: only runs over several processes

            multihost_utils.sync_global_devices(f"set aside epoch {damaged.epoch}")
        damaged.path = dest
        self._manager.reload()
