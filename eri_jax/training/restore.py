"""A trained run's checkpoint folder read back: its config, the (model, optimizer) template and state.

`read_run` rebuilds the `TrainConfig` from `<workdir>/<run>/config.json`; `restore` builds the model as an
abstract template (no weights are initialised) and restores checkpoint `best`, `last` or an epoch into it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
from flax import nnx

from eri_jax.inputs import assembly as feats
from eri_jax.models.factory import build_model
from eri_jax.training import sharding as shd
from eri_jax.training.checkpoints import DamagedCheckpoint, RunCheckpoints
from eri_jax.training.config import TrainConfig
from eri_jax.training.step import make_optimizer, make_predict


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
        try:
            state, _ = ckpt.restore(epoch, template)
        except DamagedCheckpoint as e:
            others = [str(k) for k in ckpt.epochs() if k != epoch]
            way = (f"pass --checkpoint {' or '.join(others)} (the other kept epoch{'s' * (len(others) > 1)})"
                   if others else "no other epoch is kept")
            raise DamagedCheckpoint(f"{e}; {way}, or train the run again (delete {cfg.run_dir})",
                                    epoch=e.epoch, path=e.path) from None
    standardizer = (feats.Standardizer.from_json(run_info["standardizer"])
                    if run_info.get("standardizer") else None)
    predict = make_predict(graphdef, state_sharding=shd.replicated(mesh), batch_sharding=shd.batch_sharded(mesh))
    return predict, state, epoch, standardizer, mesh


