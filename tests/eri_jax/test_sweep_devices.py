"""A sweep's run axis split over 4 (forced host) devices, in one process or two joined by jax.distributed
(gloo on the CPU), writes what the 1-device sweep writes."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eri_jax.sweep import load_run

from .train_fixtures import build_dataset

REPO = Path(__file__).resolve().parents[2]


ARGS = ["--seeds", "0,1,2", "--activations", "relu,tanh", "--feature-sets", "vllava_emb_p1", "--lrs", "1e-2",
        "--epochs", "4", "--batch-size", "16", "--hidden", "16", "--no-progress", "--fast-compile"]


def _env(devices: int) -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "TQDM_DISABLE": "1",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _sweep(name, data_dir, out: Path, devices: int) -> str:
    # 3 seeds x 2 activations = 6 runs: on 4 devices padded to 8 (2 dropped); on 1 device stacked by seed.
    proc = subprocess.run([sys.executable, "-m", "eri_jax.sweep", "--dataset", name, "--data-dir", str(data_dir),
                           "--out", str(out), *ARGS], cwd=REPO, env=_env(devices),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep_devices")
    name, data_dir = build_dataset(tmp / "data")
    err = _sweep(name, data_dir, tmp / "one", 1)
    assert "1 device on 1 host (cpu)" in err
    return name, data_dir, tmp / "one"


def assert_same_outputs(one: Path, other: Path, devices: int, padding: int) -> None:
    info1 = json.loads((one / "sweep.json").read_text())
    info = json.loads((other / "sweep.json").read_text())
    assert [(g["devices"], g["padding_runs"]) for g in info1["groups"]] == [(1, 0)]
    assert [(g["devices"], g["padding_runs"]) for g in info["groups"]] == [(devices, padding)]  # the carry was split
    a_runs, b_runs = info1["runs"], info["runs"]
    assert [r["run_id"] for r in b_runs] == [r["run_id"] for r in a_runs] and len(a_runs) == 6  # padding dropped
    assert [r["best_epoch"] for r in b_runs] == [r["best_epoch"] for r in a_runs]
    assert len({r["best_epoch"] for r in a_runs} | {0}) > 1  # the runs learnt something (a best epoch exists)
    # Not bit-identical: the 1-device CPU sweep trains runs that share a seed as one wide GEMM (stacked.py)
    # and the sharded one run by run, so sums inside the matrix products are ordered differently
    # (float32 rounding: measured differences up to 2e-7 after 4 epochs of 4 steps; tolerance 1e-6).
    for a, b in zip(a_runs, b_runs):
        assert float(b["dev_mean_pearson"]) == pytest.approx(float(a["dev_mean_pearson"]), abs=1e-6), a["run_id"]
        ra, rb = load_run(one, a["run_id"]), load_run(other, a["run_id"])
        assert ra.ids == rb.ids
        np.testing.assert_allclose(rb.predictions, ra.predictions, atol=1e-6)
        assert ra.params.keys() == rb.params.keys()
        for k in ra.params:
            np.testing.assert_allclose(rb.params[k], ra.params[k], atol=1e-6, err_msg=k)


def test_sweep_on_four_devices_equals_one_device(one_device, tmp_path):
    name, data_dir, one = one_device
    err = _sweep(name, data_dir, tmp_path / "four", 4)
    assert "4 devices on 1 host (cpu)" in err
    assert_same_outputs(one, tmp_path / "four", devices=4, padding=2)


def _two_process_sweep(name, data_dir, outs: list[Path], args: list[str]) -> list[tuple[str, str]]:
    """Two sweep processes of 2 devices joined by --coordinator (process i writes to outs[i]); (stdout, stderr)."""
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, "-m", "eri_jax.sweep", "--dataset", name, "--data-dir", str(data_dir),
                               "--out", str(outs[i]), *args, "--coordinator", f"127.0.0.1:{port}",
                               "--num-processes", "2", "--process-id", str(i)],
                              cwd=REPO, env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    return results


def test_sweep_over_two_processes_equals_one_device(one_device, tmp_path):
    name, data_dir, one = one_device
    out = tmp_path / "two"
    results = _two_process_sweep(name, data_dir, [out, out], ARGS)
    assert "4 devices on 2 hosts (cpu)" in results[0][1]
    assert "Sweep" in results[0][0] and "Sweep" not in results[1][0]  # process 0 writes and prints the tables
    assert_same_outputs(one, out, devices=4, padding=2)


def test_coordinator_flags_go_together(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "eri_jax.sweep", "--coordinator", "127.0.0.1:1",
                           "--out", str(tmp_path / "x")], cwd=REPO, env=_env(1), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "--coordinator, --num-processes and --process-id go together" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x").exists()


SLICE_ARGS = ["--seeds", "0", "--activations", "relu", "--feature-sets", "vllava_emb_p1,fau,pixels,vllava_emb_p1+fau",
              "--lrs", "1e-2", "--epochs", "3", "--batch-size", "16", "--hidden", "16", "--no-progress",
              "--fast-compile"]


@pytest.fixture(scope="module")
def slices_one_device(one_device):
    name, data_dir, one = one_device
    out = one.parent / "slices-one"
    proc = subprocess.run([sys.executable, "-m", "eri_jax.sweep", "--dataset", name, "--data-dir", str(data_dir),
                           "--out", str(out), *SLICE_ARGS], cwd=REPO, env=_env(1), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return name, data_dir, out


def assert_same_groups(one: Path, other: Path) -> None:
    """4 groups of 1 run, one per device: no padding trained, the 1-device results."""
    a_info, b_info = (json.loads((d / "sweep.json").read_text()) for d in (one, other))
    assert [(g["devices"], g["padding_runs"]) for g in b_info["groups"]] == [(1, 0)] * 4
    assert [r["run_id"] for r in b_info["runs"]] == [r["run_id"] for r in a_info["runs"]]
    for a, b in zip(a_info["runs"], b_info["runs"]):
        assert b["best_epoch"] == a["best_epoch"]
        assert float(b["dev_mean_pearson"]) == pytest.approx(float(a["dev_mean_pearson"]), abs=1e-6), a["run_id"]
        ra, rb = load_run(one, a["run_id"]), load_run(other, a["run_id"])
        np.testing.assert_allclose(rb.predictions, ra.predictions, atol=1e-6)
        for k in ra.params:
            np.testing.assert_allclose(rb.params[k], ra.params[k], atol=1e-6, err_msg=k)


def test_groups_train_side_by_side_on_device_slices(slices_one_device, tmp_path):
    """4 groups of 1 run on 4 devices: one group per device, all at once (sweep/slices.py)."""
    name, data_dir, one = slices_one_device
    proc = subprocess.run([sys.executable, "-m", "eri_jax.sweep", "--dataset", name, "--data-dir", str(data_dir),
                           "--out", str(tmp_path / "four"), *SLICE_ARGS], cwd=REPO, env=_env(4),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_groups(one, tmp_path / "four")


def test_two_processes_train_their_own_groups_and_share_the_results(slices_one_device, tmp_path):
    """The same 4 groups over two processes of 2 devices: each trains two groups on its own devices; the
    results reach process 0 over the devices (no shared folder needed: each writes to its own --out)."""
    name, data_dir, one = slices_one_device
    _two_process_sweep(name, data_dir, [tmp_path / "p0", tmp_path / "p1"], SLICE_ARGS)
    assert not (tmp_path / "p1").exists()  # process 1 wrote nothing
    assert_same_groups(one, tmp_path / "p0")
