"""Config `full` with the miniature models on a small synthetic set: one uninterrupted reference run, then
a run killed mid-way and resumed, a run split into shards, and training eri_jax on every new feature."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from extract.cli import main
from tfds_hume.manifest import Manifest
from tfds_hume.synthetic import generate

pytestmark = pytest.mark.slow  # whole extraction runs (about a minute on 2 cores)

REPO = Path(__file__).resolve().parents[2]
CLIPS_PER_SPLIT = 2
N_CLIPS = 3 * CLIPS_PER_SPLIT
# The same model settings in every run, so that every run's cache folders are the reference's.
MODEL_ARGS = ["--config", "full", "--models", "tiny", "--max-new-tokens", "8", "--batch-size-llava", "32",
              "--no-progress"]


def argv(root: Path, cache: Path, *extra: str) -> list[str]:
    return ["--data-root", str(root), "--cache-dir", str(cache), "--data-dir", str(cache / "tfds"), *MODEL_ARGS,
            *extra]


@pytest.fixture(scope="module")
def synth(run_once):
    def make(folder):
        generate(folder / "reactions", layout="muse", clips_per_split=CLIPS_PER_SPLIT, seed=11, progress=False)

    return run_once("full-synthetic-data", make) / "reactions"


@pytest.fixture(scope="module")
def reference(synth, tiny_cache, run_once):
    def extract(folder):
        assert main(argv(synth, tiny_cache(folder / "cache"))) == 0

    cache = run_once("full-synthetic-reference", extract) / "cache"
    export = cache / "exports" / "reactions-full"
    return SimpleNamespace(cache=cache, export=export, manifest=Manifest.read(export),
                           summary=json.loads((export / "summary.json").read_text()))


def feature_files(cache: Path, folders: list[str] | None = None) -> dict[str, Path]:
    """Every value / missing file of the dataset's feature cache, by path relative to its folder."""
    root = cache / "features" / "reactions"
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and p.name.endswith((".npz", ".missing.json")) and (folders is None or rel.parts[0] in folders):
            out[str(rel)] = p
    return out


def assert_same_values(a: dict[str, Path], b: dict[str, Path]) -> None:
    assert sorted(a) == sorted(b)
    for rel, pa in a.items():
        if rel.endswith(".missing.json"):
            assert json.loads(pa.read_text()) == json.loads(b[rel].read_text())
            continue
        with np.load(pa) as za, np.load(b[rel]) as zb:
            assert za.files == zb.files, rel
            for k in za.files:
                if za[k].dtype.kind in "fc":
                    # Batches differ between runs (batch 1 vs 4, other clips): float noise only.
                    np.testing.assert_allclose(za[k], zb[k], rtol=1e-4, atol=1e-5, err_msg=rel)
                else:
                    assert np.array_equal(za[k], zb[k]), rel


def test_reference_run_is_complete(reference):
    s = reference.summary
    assert s["clips"]["exported"] == N_CLIPS and s["random_weights"] is True
    assert set(s["extractors"]) == {"pixels", "shipped-fau", "shipped-vggface2", "vit", "wavlm", "clip_text", "vllava",
                                    "vllava_query", "llava"}
    assert all(e["done"] == N_CLIPS for e in s["extractors"].values())
    spec = reference.manifest.features
    assert spec["vit"].num_frames == spec["wavlm"].num_frames == spec["llava_text"].num_frames == 32


def test_resume_after_a_kill_repeats_no_finished_clip(synth, reference, tiny_cache, tmp_path):
    cache = tiny_cache(tmp_path / "cache")
    args = argv(synth, cache, "--extractors", "vllava", "--batch-size-vllava", "1", "--workers", "0", "--no-build")
    env = dict(os.environ, JAX_PLATFORMS="cpu", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "extract", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # A clip is finished when its last key is written (keys are written in order, each file atomically).
    last_key = "vllava_text_emb_p2"
    deadline = time.monotonic() + 300
    try:
        while len(list(cache.glob(f"features/reactions/vllava-*/{last_key}/*.npz"))) < 2:
            assert proc.poll() is None, f"extraction ended before it could be killed: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no clip finished within 300 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    finished = {p.stem.removesuffix(".npz") for p in cache.glob(f"features/reactions/vllava-*/{last_key}/*.npz")}
    assert 2 <= len(finished) < N_CLIPS, "the kill came too late to test anything"

    assert main(args) == 0
    summary = json.loads((cache / "exports" / "reactions-full" / "summary.json").read_text())
    run = summary["extractors"]["vllava"]
    assert run["cached"] == len(finished) and run["done"] == N_CLIPS - len(finished) and run["failed"] == 0
    folder = Path(run["folder"]).name
    assert folder == Path(reference.summary["extractors"]["vllava"]["folder"]).name  # same settings, same key
    assert_same_values(feature_files(cache, [folder]), feature_files(reference.cache, [folder]))


def test_union_of_shards_equals_a_full_run(synth, reference, tiny_cache, tmp_path, capsys):
    cache = tiny_cache(tmp_path / "cache")
    subset = ["--extractors", "shipped,vit,clip_text,vllava_query"]
    for shard in ("0/2", "1/2"):
        assert main(argv(synth, cache, *subset, "--shard", shard)) == 0
        assert "run the same command without --shard" in capsys.readouterr().out
    export = cache / "exports" / "reactions-full"
    assert not (export / "manifest.json").exists()  # shards never export
    shards = [json.loads((export / f"shard-{i}-of-2.json").read_text()) for i in (0, 1)]
    assert [s["clips"]["in_shard"] for s in shards] == [N_CLIPS // 2, N_CLIPS - N_CLIPS // 2]
    assert all(s["extractors"]["vit"]["done"] == s["clips"]["in_shard"] for s in shards)

    assert main(argv(synth, cache, *subset)) == 0  # the final run finds everything cached and exports
    summary = json.loads((export / "summary.json").read_text())
    assert all(e["done"] == 0 and e["cached"] == N_CLIPS for e in summary["extractors"].values())
    folders = [Path(e["folder"]).name for e in summary["extractors"].values()]
    assert_same_values(feature_files(cache, folders), feature_files(reference.cache, folders))
    m = Manifest.read(export)
    assert set(m.features) == {"fau", "vggface2", "vit", "face_found", "clip_text", "clip_template", "query_answer"}


@pytest.mark.parametrize("model, features", [
    ("lstm", "vit,face_found,wavlm,clip_text,llava_text_emb"),
    ("probe", "vllava_emb_p1,vllava_emb_p2,vllava_text_emb_p1,vllava_text_emb_p2"),
])
def test_eri_jax_trains_on_every_new_numeric_feature(reference, tmp_path, model, features):
    from eri_jax import train

    code = train.main(["--model", model, "--preset", "demo", "--dataset", "hume_reaction/full", "--data-dir",
                       str(reference.cache / "tfds"), "--features", features, "--epochs", "1",
                       "--workdir", str(tmp_path / "ck"), "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    assert code == 0
    (run,) = (tmp_path / "runs").iterdir()
    log = json.loads((run / "train_log.json").read_text())
    assert log["last_epoch"] == 1 and all(np.isfinite(e["train_loss"]) for e in log["epochs"])
