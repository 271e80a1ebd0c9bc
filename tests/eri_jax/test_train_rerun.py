"""Rerunning a training run: a smaller `--epochs` is refused without touching the run, and a checkpoint
whose data file was truncated after it was written is named in one line; training resumes from the newest
kept checkpoint that restores (bit-identical to an undamaged run) or refuses with the way out; a kill -9
during a checkpoint write resumes bit-identically."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from eri_jax import train
from eri_jax.training.checkpoints import RunCheckpoints

from .train_fixtures import build_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # the planted set's clip without `fau`

# A tiny probe whose dev Pearson on the planted set dips at its last epoch (seed 0, lr 0.1: best 6 of 7,
# 0.567 then 0.555), so that best and last are two kept checkpoints.
PROBE = ("--model", "probe", "--preset", "demo", "--features", "vllava_emb_p1", "--hidden", "16",
         "--lr", "0.1", "--batch-size", "16")
EPOCHS = 7


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    name, data_dir = build_dataset(tmp_path_factory.mktemp("planted"))
    return name, str(data_dir)


def cli(dataset, root: Path, *args: str) -> list[str]:
    name, data_dir = dataset
    return ["--dataset", name, "--data-dir", data_dir, "--workdir", str(root / "ck"),
            "--runs-dir", str(root / "runs"), "--no-progress", *PROBE, *args]


def run(dataset, root: Path, name: str, epochs: int, capsys) -> tuple[int, str]:
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rc = train.main(cli(dataset, root, "--epochs", str(epochs), "--run-name", name))
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """The reference run `full` (7 epochs, best before last), trained once and copied by each test."""
    root = tmp_path_factory.mktemp("rerun")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert train.main(cli(dataset, root, "--epochs", str(EPOCHS), "--run-name", "full")) == 0
    log = json.loads((root / "runs" / "full" / "train_log.json").read_text())
    assert log["best_epoch"] < log["last_epoch"] == EPOCHS, "the reference run must keep two checkpoints"
    return root, log


def copy_run(root: Path, tmp_path: Path, name: str) -> Path:
    shutil.copytree(root / "ck" / "full", tmp_path / "ck" / name)
    shutil.copytree(root / "runs" / "full", tmp_path / "runs" / name)
    return tmp_path / "ck" / name


def truncate_step(run_dir: Path, epoch: int) -> Path:
    """Cut the largest data file of a kept step's state to half its size (what an interrupted copy leaves).

    The arrays are read from the step's merged OCDBT database, `state/d/` (the per-process copy under
    `state/ocdbt.process_0/` is not read on restore)."""
    files = list((run_dir / "steps" / str(epoch) / "state" / "d").iterdir())
    big = max(files, key=lambda p: p.stat().st_size)
    size = big.stat().st_size
    assert size > 1000, "the probe's arrays are in a data file of a few kB"
    with open(big, "r+b") as f:
        f.truncate(size // 2)
    return big


def last_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    """The arrays of the last kept step, read straight from orbax (no model template needed)."""
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(run_dir.absolute() / "steps", item_names=("state", "meta"),
                               options=ocp.CheckpointManagerOptions(read_only=True)) as m:
        out = m.restore(m.latest_step(), args=ocp.args.Composite(state=ocp.args.StandardRestore()))
        return {k: np.asarray(v) for k, v in out["state"].items()}


def strip_times(log: dict) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "time_s"} for e in log["epochs"]]


# --------------------------------------------------------------------------------------------- epochs


def test_fewer_epochs_than_the_run_holds_is_refused_and_touches_nothing(dataset, trained, tmp_path, capsys):
    root, _ = trained
    run_dir = copy_run(root, tmp_path, "r")
    files = [run_dir / "config.json", tmp_path / "runs" / "r" / "config.json",
             tmp_path / "runs" / "r" / "train_log.json"]
    before = [p.read_bytes() for p in files]
    steps = sorted(p.name for p in (run_dir / "steps").iterdir())

    rc, err = run(dataset, tmp_path, "r", 2, capsys)
    assert rc == 2
    lines = [line for line in err.splitlines() if not line.startswith(("run r:", "1 device on 1 host"))]
    assert lines == [f"error: {run_dir} holds {EPOCHS} trained epochs; --epochs 2 would not describe it: "
                     f"pass --epochs {EPOCHS} or more, or another --run-name to train 2"]
    assert [p.read_bytes() for p in files] == before
    assert sorted(p.name for p in (run_dir / "steps").iterdir()) == steps

    # The same number is "nothing to train": the run is evaluated again and still says what it holds.
    rc, err = run(dataset, tmp_path, "r", EPOCHS, capsys)
    assert rc == 0 and f"resuming r after epoch {EPOCHS}" in err
    assert json.loads(files[0].read_text())["epochs"] == EPOCHS
    assert json.loads(files[2].read_text())["last_epoch"] == EPOCHS


# --------------------------------------------------------------------------------- damaged checkpoints


def test_truncated_last_checkpoint_resumes_from_the_best_one_bit_identically(dataset, trained, tmp_path, capsys):
    root, log = trained
    best = log["best_epoch"]
    run_dir = copy_run(root, tmp_path, "cut")
    big = truncate_step(run_dir, EPOCHS)

    rc, err = run(dataset, tmp_path, "cut", EPOCHS, capsys)
    assert rc == 0, err
    assert "Traceback" not in err and "TensorStore" not in err
    damaged = [line for line in err.splitlines() if "does not restore" in line]
    assert len(damaged) == 1
    line = damaged[0]
    # The run, the step and the file in one line, TensorStore's reason, and where the step went.
    assert line.startswith(f"run cut: checkpoint of epoch {EPOCHS} does not restore, file {big}: OUT_OF_RANGE: "
                           f"Requested byte range [0, ")
    assert f"resuming cut after epoch {best} from" in err
    moved = sorted((run_dir / "damaged").iterdir())
    assert len(moved) == 1 and moved[0].name.startswith(f"epoch{EPOCHS}-") and f"moved to {moved[0]}" in line
    assert (moved[0] / big.relative_to(run_dir / "steps" / str(EPOCHS))).is_file()  # kept for inspection

    # Epochs best+1..6 trained again: the same log, the same last state, the same predictions.
    new_log = json.loads((tmp_path / "runs" / "cut" / "train_log.json").read_text())
    assert strip_times(new_log) == strip_times(log)
    assert (new_log["best_epoch"], new_log["last_epoch"]) == (best, EPOCHS)
    a, b = last_arrays(root / "ck" / "full"), last_arrays(run_dir)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert ((tmp_path / "runs" / "cut" / "predictions_dev.csv").read_text()
            == (root / "runs" / "full" / "predictions_dev.csv").read_text())


def test_truncated_best_checkpoint_is_refused_with_the_way_out(dataset, trained, tmp_path, capsys):
    root, log = trained
    best = log["best_epoch"]
    run_dir = copy_run(root, tmp_path, "b")
    big = truncate_step(run_dir, best)
    rc, err = run(dataset, tmp_path, "b", EPOCHS, capsys)
    assert rc == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: run b: checkpoint of epoch {best} does not restore, file {big}: OUT_OF_RANGE")
    assert f"it is the best epoch: delete {run_dir.absolute() / 'steps' / str(best)}" in line

    # Deleting the damaged best step, as told, evaluates the best remaining one (the last).
    shutil.rmtree(run_dir / "steps" / str(best))
    rc, err = run(dataset, tmp_path, "b", EPOCHS, capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "runs" / "b" / "train_log.json").read_text())["best_epoch"] == EPOCHS


def test_evaluating_a_damaged_best_checkpoint_names_the_other_kept_epoch(dataset, trained, tmp_path, capsys):
    from eri_jax import evaluate

    root, log = trained
    best = log["best_epoch"]
    run_dir = copy_run(root, tmp_path, "e")
    big = truncate_step(run_dir, best)
    capsys.readouterr()
    assert evaluate.main(["--run-dir", str(run_dir), "--runs-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: run e: checkpoint of epoch {best} does not restore, file {big}")
    assert line.endswith(f"pass --checkpoint {EPOCHS} (the other kept epoch), or train the run again "
                         f"(delete {run_dir})")
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    # as told: the other kept epoch evaluates
    assert evaluate.main(["--run-dir", str(run_dir), "--runs-dir", str(tmp_path / "out"),
                          "--checkpoint", str(EPOCHS)]) == 0


def test_no_checkpoint_restores_is_refused_and_nothing_is_moved(dataset, trained, tmp_path, capsys):
    root, log = trained
    run_dir = copy_run(root, tmp_path, "all")
    for epoch in (log["best_epoch"], EPOCHS):
        truncate_step(run_dir, epoch)
    rc, err = run(dataset, tmp_path, "all", EPOCHS, capsys)
    assert rc == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: run all: checkpoint of epoch {EPOCHS} does not restore")
    assert (f"no kept checkpoint of this run restores (epochs {EPOCHS}, {log['best_epoch']}): "
            f"delete {run_dir.absolute()} to train it again from the start") in line
    assert not (run_dir / "damaged").exists()
    assert sorted(int(p.name) for p in (run_dir / "steps").iterdir()) == sorted({log["best_epoch"], EPOCHS})
    with RunCheckpoints(run_dir, read_only=True) as ckpt:
        assert ckpt.latest_epoch() == EPOCHS


# A child that trains the run and kills itself with SIGKILL when orbax is about to rename epoch 3's
# finished temporary folder into place: a kill -9 in the middle of a checkpoint write.
KILL_DURING_SAVE = """
import asyncio, json, os, signal, sys, warnings
from orbax.checkpoint._src.path import atomicity
from eri_jax import train

finalize = atomicity.AtomicRenameTemporaryPath.finalize

async def killing_finalize(self, *args, **kwargs):
    if self.get_final().name == "3":
        os.kill(os.getpid(), signal.SIGKILL)
    return await finalize(self, *args, **kwargs)

atomicity.AtomicRenameTemporaryPath.finalize = killing_finalize
warnings.simplefilter("ignore")
sys.exit(train.main(json.loads(sys.argv[1])))
"""


def test_kill_during_a_checkpoint_write_resumes_bit_identically(dataset, trained, tmp_path, capsys):
    import subprocess
    import sys

    root, log = trained
    args = cli(dataset, tmp_path, "--epochs", str(EPOCHS), "--run-name", "killed")
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, json.dumps(args)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    run_dir = tmp_path / "ck" / "killed"
    left = sorted(p.name for p in (run_dir / "steps").iterdir())
    assert any(name.startswith("3.orbax-checkpoint-tmp") for name in left), left  # the half-done write

    rc, err = run(dataset, tmp_path, "killed", EPOCHS, capsys)
    assert rc == 0, err
    assert "resuming killed after epoch 2" in err and "does not restore" not in err
    new_log = json.loads((tmp_path / "runs" / "killed" / "train_log.json").read_text())
    assert strip_times(new_log) == strip_times(log) and new_log["best_epoch"] == log["best_epoch"]
    a, b = last_arrays(root / "ck" / "full"), last_arrays(run_dir)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
