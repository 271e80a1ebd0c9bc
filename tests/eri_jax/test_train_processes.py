"""`eri_jax.train` over two CPU processes (2 forced host devices each) joined by jax.distributed (gloo):
the batch split over the global 4-device mesh trains to the one-device run, by flags and by a SLURM
launch's environment (which also resumes the run); and the rules for joining processes."""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eri_jax.training.processes import add_process_flags, cluster_in_environment, start_processes

from .train_fixtures import build_dataset

REPO = Path(__file__).resolve().parents[2]
# An LSTM with dropout: the dropout RNG and the shuffle must agree across processes too.
ARGS = ["--model", "lstm", "--features", "fau", "--batch-size", "16", "--hidden", "8", "--lr", "3e-3",
        "--no-progress", "--run-name", "r"]


def _env(devices: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "TQDM_DISABLE": "1",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", **extra}


def _cmd(dataset, out: Path, epochs: int) -> list[str]:
    name, data_dir = dataset
    return [sys.executable, "-m", "eri_jax.train", "--dataset", name, "--data-dir", str(data_dir), *ARGS,
            "--epochs", str(epochs), "--workdir", str(out / "ck"), "--runs-dir", str(out / "runs")]


def _one_process(dataset, out: Path, epochs: int) -> None:
    proc = subprocess.run(_cmd(dataset, out, epochs), cwd=REPO, env=_env(1), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 device on 1 host (cpu); each batch is split over them" in proc.stderr


def _two_processes(cmds: list[list[str]], envs: list[dict[str, str]]) -> list[tuple[str, str]]:
    procs = [subprocess.Popen(c, cwd=REPO, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c, e in zip(cmds, envs)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    return results


def _free_port(low: int = 1024, high: int = 65535) -> int:
    for port in np.random.default_rng().integers(low, high, size=200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", int(port)))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free port")


def _assert_same_run(one: Path, other: Path) -> None:
    a = np.loadtxt(one / "runs/r/predictions_dev.csv", delimiter=",", skiprows=1, dtype=str)
    b = np.loadtxt(other / "runs/r/predictions_dev.csv", delimiter=",", skiprows=1, dtype=str)
    assert a[:, 0].tolist() == b[:, 0].tolist()
    # Not bit-identical: the gradient is reduced over 4 devices, so its sums are ordered differently.
    np.testing.assert_allclose(b[:, 1:].astype(float), a[:, 1:].astype(float), atol=1e-5)
    la, lb = (json.loads((d / "runs/r/train_log.json").read_text()) for d in (one, other))
    assert [e["epoch"] for e in la["epochs"]] == [e["epoch"] for e in lb["epochs"]]
    np.testing.assert_allclose([e["train_loss"] for e in lb["epochs"]], [e["train_loss"] for e in la["epochs"]],
                               rtol=1e-5)
    assert len(json.loads((other / "ck/r/config.json").read_text())["devices"]) == 4


def test_training_over_two_processes_equals_one_device(tmp_path):
    dataset = build_dataset(tmp_path / "data")
    _one_process(dataset, tmp_path / "one", epochs=2)

    port = _free_port()
    two = tmp_path / "two"
    flags = [["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)] for i in range(2)]
    results = _two_processes([_cmd(dataset, two, 2) + f for f in flags], [_env(2)] * 2)
    assert "4 devices on 2 hosts (cpu), joined by --coordinator; each batch is split over them" in results[0][1]
    assert "best epoch" in results[0][0] and "best epoch" not in results[1][0]  # process 0 reports
    _assert_same_run(tmp_path / "one", two)

    # The same run resumed to 3 epochs by a SLURM launch (`srun -n 2`): JAX reads the coordinator (the
    # step's first node, a port from the job id), the process count and index from SLURM's variables.
    _one_process(dataset, tmp_path / "one", epochs=3)
    job_id = _free_port(61440, 65535) - 61440  # JAX's port for a SLURM job: 61440 + job id mod 4096
    slurm = [_env(2, SLURM_JOB_ID=str(job_id), SLURM_STEP_NODELIST="127.0.0.1", SLURM_NTASKS="2",
                  SLURM_PROCID=str(i), SLURM_LOCALID=str(i)) for i in range(2)]
    results = _two_processes([_cmd(dataset, two, 3)] * 2, slurm)
    assert "4 devices on 2 hosts (cpu), joined by SLURM (2 tasks)" in results[0][1]
    assert "resuming r after epoch 2" in results[0][1]
    _assert_same_run(tmp_path / "one", two)


@pytest.mark.parametrize("env, found", [
    ({}, None),
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_NTASKS": "8", "SLURM_PROCID": "3",
      "SLURM_LOCALID": "1"}, "SLURM (8 tasks)"),
    # a single-task SLURM job (the usual `sbatch` of one process) is one process: nothing to join
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n1", "SLURM_NTASKS": "1", "SLURM_PROCID": "0",
      "SLURM_LOCALID": "0"}, None),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "8"}, None),  # inside an allocation but not in an srun step
    ({"OMPI_MCA_orte_hnp_uri": "1.2.3.4:5", "OMPI_COMM_WORLD_SIZE": "4"}, "Open MPI (4 processes)"),
    ({"TPU_WORKER_HOSTNAMES": "t0,t1,t2,t3"}, "Cloud TPU (4 hosts)"),
    ({"TPU_WORKER_HOSTNAMES": "t0"}, None),
])
def test_scheduler_environments(env, found):
    assert cluster_in_environment(env) == found


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_process_flags(p)
    return p.parse_args(argv)


@pytest.mark.parametrize("argv, message", [
    (("--coordinator", "h:1"), "go together"),
    (("--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"), r"--process-id 2 is not in 0\.\.1"),
    (("--coordinator", "h:1", "--num-processes", "2", "--process-id", "0", "--join-cluster"), "one of the two"),
])
def test_process_flags_are_checked_before_joining(argv, message):
    with pytest.raises(ValueError, match=message):
        start_processes(_args(*argv), env={})


def test_no_join_without_flags_or_scheduler():
    assert start_processes(_args(), env={}) is None
    slurm = {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "n1", "SLURM_NTASKS": "2", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0"}
    assert start_processes(_args("--no-join-cluster"), env=slurm) is None  # turned off


def test_join_cluster_without_a_cluster_is_one_line(tmp_path):
    no_cluster = {k: v for k, v in _env(1).items() if not k.startswith(("SLURM", "OMPI", "TPU", "KUBERNETES"))}
    proc = subprocess.run([sys.executable, "-m", "eri_jax.train", "--join-cluster", "--workdir", str(tmp_path / "c")],
                          cwd=REPO, env=no_cluster, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--join-cluster: JAX finds no SLURM, Open MPI, Cloud TPU or Kubernetes job here" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "c").exists()
