"""`python -m extract --ray` on embedded Ray (2 CPUs): the same cache entries as a plain run, byte for byte,
broken clips recorded as failures, an actor killed mid-batch retried with nothing lost, and resuming a
plain run's cache."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from extract.cli import main
from extract.ray_pipeline import KILL_ONCE_ENV
from tfds_hume.synthetic import generate

pytestmark = pytest.mark.slow  # one embedded Ray cluster and three extraction runs (about 1-2 minutes)

# Model extractors that cover batched face crops (vit), audio with a missing track (wavlm) and generation
# (vllava_query), beside the CPU extractors (pixels, shipped).
EXTRACTORS = "pixels,shipped,vit,wavlm,vllava_query"
MODEL_ARGS = ["--config", "full", "--models", "tiny", "--max-new-tokens", "4", "--batch-size-vit", "64",
              "--no-progress", "--no-build"]


def argv(root: Path, cache: Path, *extra: str) -> list[str]:
    return ["--data-root", str(root), "--cache-dir", str(cache), *MODEL_ARGS, *extra]


def cache_entries(cache: Path, folders: list[str] | None = None) -> dict[str, bytes]:
    """Every value / missing file of the feature cache by relative path, as bytes (a cache entry depends on
    its arrays only: `tfds_hume.manifest.save_value` stamps no clock into the .npz)."""
    root = cache / "features" / "reactions"
    out: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or folders is not None and rel.parts[0] not in folders:
            continue
        if p.name.endswith((".missing.json", ".npz")):
            out[str(rel)] = p.read_bytes()
    return out


def failures(cache: Path) -> set[tuple[str, str, str]]:
    return {(f.parent.name.split("-")[0], e["id"], e["reason"]) for f in (cache / "features" / "reactions").rglob(
        "failures.jsonl") for e in map(json.loads, f.read_text().splitlines())}


def summary(cache: Path) -> dict:
    return json.loads((cache / "exports" / "reactions-full" / "summary.json").read_text())


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """One embedded Ray instance, 2 CPUs, for the module; its workers see the kill hook's flag path."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    flag = tmp_path_factory.mktemp("kill") / "kill-actor"
    import os

    os.environ[KILL_ONCE_ENV] = str(flag)  # before ray.init: workers inherit the driver's environment
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield flag
    ray.shutdown()
    os.environ.pop(KILL_ONCE_ENV, None)


@pytest.fixture(scope="module")
def synth(run_once):
    def make(folder):
        generate(folder / "reactions", layout="muse", clips_per_split=2, seed=5, faults=True, progress=False)

    return run_once("ray-synthetic-data", make) / "reactions"


@pytest.fixture(scope="module")
def plain(synth, tiny_cache, run_once):
    """The plain run's cache, made once per session even when xdist spreads this module over workers."""

    def extract(folder):
        assert main(argv(synth, tiny_cache(folder / "cache"), "--extractors", EXTRACTORS)) == 0

    return run_once("ray-plain-reference", extract) / "cache"


def test_ray_run_writes_the_plain_runs_cache_entries(ray_cluster, synth, plain, tiny_cache, tmp_path, capsys):
    cache = tiny_cache(tmp_path / "cache")
    assert main(argv(synth, cache, "--extractors", EXTRACTORS, "--ray", "--ray-actors", "2")) == 0
    # what it ran on, before the work: the cluster this test started (2 CPUs, no GPU)
    assert "Ray (embedded): 1 node, 2 CPUs, 0 GPUs; 2 actors per model extractor" in capsys.readouterr().err
    ours, theirs = cache_entries(cache), cache_entries(plain)
    assert len(ours) > 40 and ours.keys() == theirs.keys()
    assert [k for k in ours if ours[k] != theirs[k]] == []
    assert any(k.endswith(".missing.json") for k in ours)  # the clip without audio: wavlm missing, not zero
    s, p = summary(cache), summary(plain)
    assert s["failed"] == p["failed"] and len(s["failed"]) >= 2  # broken videos: failure records as today
    assert failures(cache) == failures(plain)
    assert all(e["compute_seconds"] > 0 for n, e in s["extractors"].items() if n in ("vit", "wavlm", "vllava_query"))
    assert (cache / "exports" / "reactions-full" / "manifest.json").read_text() == \
        (plain / "exports" / "reactions-full" / "manifest.json").read_text().replace(str(plain), str(cache))


def test_killed_actor_is_retried_and_ray_resumes_a_plain_cache(ray_cluster, synth, plain, tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path / "cache")
    shutil.copytree(plain / "features", cache / "features", symlinks=True)
    (vit,) = [p for p in (cache / "features" / "reactions").iterdir() if p.name.startswith("vit-")]
    values = sorted((vit / "vit").glob("*.npz"))
    for p in values[: len(values) // 2]:  # half of the clips unfinished, as after a killed plain run
        p.unlink()
    ray_cluster.write_text("armed")
    assert main(argv(synth, cache, "--extractors", "vit", "--ray", "--ray-actors", "1")) == 0
    assert Path(f"{ray_cluster}.killed").exists(), "no actor was killed: the test tested nothing"
    run = summary(cache)["extractors"]["vit"]
    assert run["cached"] == len(values) - len(values) // 2 and run["done"] == len(values) // 2
    folders = [vit.name]
    assert cache_entries(cache, folders) == cache_entries(plain, folders)


def test_gpus_the_cluster_lacks_are_a_usage_error(ray_cluster, synth, tiny_cache, tmp_path, capsys):
    cache = tiny_cache(tmp_path / "cache")
    assert main(argv(synth, cache, "--extractors", "vit", "--ray", "--device", "cuda")) == 2
    assert "the Ray cluster has no GPUs" in capsys.readouterr().err
    assert not list(cache.glob("features/*/vit-*/*.npz"))


def test_ray_without_ray_installed_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    assert main(["--cache-dir", str(tmp_path), "--ray", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pip install '.[ray]'" in err and "Traceback" not in err and not (tmp_path / "features").exists()


def test_ray_and_shard_together_is_a_usage_error(tmp_path, capsys):
    assert main(["--cache-dir", str(tmp_path), "--ray", "--shard", "0/2"]) == 2
    assert "--shard and --ray" in capsys.readouterr().err
