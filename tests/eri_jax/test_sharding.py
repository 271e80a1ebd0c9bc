"""Data parallelism: the batch split over 2 (forced host) devices trains to the single-device result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from eri_jax.training import sharding as shd

from .train_fixtures import build_dataset

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys, warnings
import jax, numpy as np
warnings.simplefilter("ignore")
from eri_jax.training import loop
from eri_jax.training.checkpoints import flatten_state
from tests.eri_jax.train_fixtures import small_config

name, data_dir, out = sys.argv[1:4]
assert jax.device_count() == 2, jax.devices()
runs = {}
for run, devices in (("one", jax.devices()[:1]), ("two", jax.devices())):
    cfg = small_config((name, data_dir), out, run_name=run, epochs=2)
    runs[run] = loop.train(cfg, progress=False, devices=devices)
a = {k: np.asarray(v) for k, v in flatten_state(runs["one"].state).items()}
b = {k: np.asarray(v) for k, v in flatten_state(runs["two"].state).items()}
print(json.dumps({
    "keys_equal": a.keys() == b.keys(),
    "max_abs_diff": max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a),
    "devices_per_leaf": sorted({len(l.sharding.device_set) for l in jax.tree_util.tree_leaves(runs["two"].state)}),
    "dev_r": [runs[r].metrics["dev"]["mean_pearson"] for r in ("one", "two")],
    "logged_devices": json.load(open(f"{out}/ck/two/config.json"))["devices"],
}))
"""


def test_batch_size_must_split_over_the_devices():
    mesh = shd.batch_mesh(jax.devices()[:1])
    shd.check_batch_size(7, mesh)  # one device takes any batch
    fake = type("M", (), {"devices": type("D", (), {"size": 2})()})()
    with pytest.raises(ValueError, match="batch size 7 does not split over 2 devices.*e.g. 8"):
        shd.check_batch_size(7, fake)


def test_two_devices_train_like_one(tmp_path):
    name, data_dir = build_dataset(tmp_path / "data")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, name, str(data_dir), str(tmp_path / "out")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["keys_equal"]
    assert res["devices_per_leaf"] == [2]  # the 2-device state is replicated on both
    assert len(res["logged_devices"]) == 2
    assert res["max_abs_diff"] < 1e-5, res  # same parameters, moments, counters and dropout RNG
    assert res["dev_r"][0] == pytest.approx(res["dev_r"][1], abs=1e-5)
