"""A sweep's run axis split over 4 (forced host) devices writes what the 1-device sweep writes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eri_jax.sweep import load_run

from .train_fixtures import build_dataset

REPO = Path(__file__).resolve().parents[2]


def _sweep(name, data_dir, out: Path, devices: int) -> str:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TQDM_DISABLE": "1",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    # 3 seeds x 2 activations = 6 runs: on 4 devices padded to 8 (2 dropped); on 1 device stacked by seed.
    args = ["--dataset", name, "--data-dir", str(data_dir), "--seeds", "0,1,2", "--activations", "relu,tanh",
            "--feature-sets", "vllava_emb_p1", "--lrs", "1e-2", "--epochs", "4", "--batch-size", "16",
            "--hidden", "16", "--out", str(out), "--no-progress", "--fast-compile"]
    proc = subprocess.run([sys.executable, "-m", "eri_jax.sweep", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


def test_sweep_on_four_devices_equals_one_device(tmp_path):
    name, data_dir = build_dataset(tmp_path / "data")
    err1 = _sweep(name, data_dir, tmp_path / "one", 1)
    err4 = _sweep(name, data_dir, tmp_path / "four", 4)
    assert "1 device on 1 host (cpu)" in err1
    assert "4 devices on 1 host (cpu)" in err4
    info1 = json.loads((tmp_path / "one" / "sweep.json").read_text())
    info4 = json.loads((tmp_path / "four" / "sweep.json").read_text())
    assert [(g["devices"], g["padding_runs"]) for g in info1["groups"]] == [(1, 0)]
    assert [(g["devices"], g["padding_runs"]) for g in info4["groups"]] == [(4, 2)]  # the carry was split
    one, four = info1["runs"], info4["runs"]
    assert [r["run_id"] for r in four] == [r["run_id"] for r in one] and len(one) == 6  # padding dropped
    assert [r["best_epoch"] for r in four] == [r["best_epoch"] for r in one]
    assert len({r["best_epoch"] for r in one} | {0}) > 1  # the runs learnt something (a best epoch exists)
    # Not bit-identical: the 1-device CPU sweep trains runs that share a seed as one wide GEMM (stacked.py)
    # and the 4-device one run by run, so sums inside the matrix products are ordered differently
    # (float32 rounding, a few ulps per step, over 4 epochs of 4 steps).
    for a, b in zip(one, four):
        assert float(b["dev_mean_pearson"]) == pytest.approx(float(a["dev_mean_pearson"]), abs=1e-6), a["run_id"]
        ra, rb = load_run(tmp_path / "one", a["run_id"]), load_run(tmp_path / "four", a["run_id"])
        assert ra.ids == rb.ids
        np.testing.assert_allclose(rb.predictions, ra.predictions, atol=1e-6)
        assert ra.params.keys() == rb.params.keys()
        for k in ra.params:
            np.testing.assert_allclose(rb.params[k], ra.params[k], atol=1e-6, err_msg=k)
