"""`python -m extract` end to end on tiny synthetic sets: cache, export, TFDS dataset, rerun, --data-root."""
import json
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import extract.pipeline as pipeline
from extract.cli import main
from tfds_hume.manifest import Manifest
from tfds_hume.synthetic import generate


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    cache, data = tmp / "cache", tmp / "tfds"
    argv = ["--cache-dir", str(cache), "--data-dir", str(data), "--synthetic-clips", "2", "--synthetic-faults",
            "--no-progress"]
    assert main(argv) == 0
    export = cache / "exports" / "synthetic-muse-n2-s0-faults-demo"
    return argv, cache, data, export


def test_demo_export_and_summary(demo_run):
    _, cache, _, export = demo_run
    summary = json.loads((export / "summary.json").read_text())
    assert summary["synthetic"] is True and summary["config"] == "demo"
    # 2 clips per split + 3 fault clips in train: truncated and empty fail, the one without audio is fine.
    assert summary["clips"]["exported"] == 7 and summary["clips"]["by_split"] == {"train": 3, "dev": 2, "test": 2}
    assert set(summary["failed"]) == {"99997", "99998"}
    assert "empty file" in summary["failed"]["99998"][0]
    assert set(summary["extractors"]) == {"pixels", "shipped-fau", "shipped-vggface2"}
    assert all(s["done"] == 7 and s["failed"] == 2 for s in summary["extractors"].values())
    m = Manifest.read(export)
    assert m.synthetic and set(m.features) == {"pixels", "fau", "vggface2"}
    assert m.features["fau"].dim == 20 and m.features["pixels"].dim == 144
    clip = next(c for c in m.clips if c.split == "train")
    assert all(not p.startswith("/") for p in clip.files.values())  # relative to the export folder
    feature_file = (export / clip.files["pixels"]).resolve()
    assert feature_file.parent.parent == (cache / "features" / m.dataset).resolve()


def test_demo_tfds_dataset_matches_the_cache(demo_run):
    _, cache, data, export = demo_run
    ds = tfds.data_source("hume_reaction/demo", data_dir=str(data))
    assert {k: len(v) for k, v in ds.items()} == {"train": 3, "dev": 2, "test": 2}
    m = Manifest.read(export)
    ex = ds["dev"][0]
    clip = next(c for c in m.clips if c.id == ex["id"].decode())
    for key in ("pixels", "fau", "vggface2"):
        with np.load(export / clip.files[key]) as z:
            assert np.array_equal(ex["features"][key], z["value"])
        assert not ex["missing"][key]
    assert np.allclose(ex["labels"], clip.labels)
    assert np.isnan(ds["test"][0]["labels"]).all()


def test_rerun_uses_the_cache(demo_run, monkeypatch, capsys):
    argv, cache, _, export = demo_run

    def no_generate(*a, **k):
        raise AssertionError("the synthetic set was generated again")

    monkeypatch.setattr("tfds_hume.synthetic.generate", no_generate)
    assert main(argv + ["--no-build"]) == 0
    summary = json.loads((export / "summary.json").read_text())
    assert all(s["done"] == 0 and s["cached"] == 7 and s["failed"] == 2 for s in summary["extractors"].values())
    out, err = capsys.readouterr()
    assert "FAILED 99997" in out and "cached 7" in out
    # what it runs on (the demo config has no model: decoding and shipped features only)
    assert "9 clips; no model extractor (decoding and shipped features only); decoding " in err


def test_data_root_abaw5_real_config(tmp_path, capsys):
    root = generate(tmp_path / "abaw", layout="abaw5", clips_per_split=1, seed=3, progress=False)
    argv = ["--data-root", str(root), "--cache-dir", str(tmp_path / "cache"), "--data-dir", str(tmp_path / "tfds"),
            "--no-progress"]
    assert main(argv) == 0
    export = tmp_path / "cache" / "exports" / "abaw-shipped"
    m = Manifest.read(export)
    # ABAW5 ships no feature CSVs: pixels only. The builder config for real data is `shipped`.
    assert not m.synthetic and set(m.features) == {"pixels"} and len(m.clips) == 3
    assert m.notes["layout"] == "abaw5"
    assert len(tfds.data_source("hume_reaction/shipped", data_dir=str(tmp_path / "tfds"))["train"]) == 1
    # Caches never go inside the data root.
    assert main(["--data-root", str(root), "--cache-dir", str(root / "cache"), "--no-build", "--no-progress"]) == 2
    assert "inside the data root" in capsys.readouterr().err
    # A config for the other kind of data is a clear error, not a traceback.
    assert main(argv + ["--config", "demo", "--no-build"]) == 2
    assert "not for real data" in capsys.readouterr().err
    # Another data root with the same folder name never reuses these features (clip ids collide).
    other = shutil.copytree(root, tmp_path / "elsewhere" / "abaw")
    assert main(["--data-root", str(other)] + argv[2:] + ["--no-build"]) == 2
    assert "came from" in capsys.readouterr().err


def test_limit_takes_the_first_clips_of_each_split():
    from tfds_hume.records import ClipRecord

    recs = [ClipRecord(id=f"{i:02d}", split=s, labels=np.zeros(1)) for i, s in enumerate(["dev", "train"] * 4)]
    got = pipeline.select_clips(recs, limit=2)
    assert [(c.split, c.id) for c in got] == [("train", "01"), ("train", "03"), ("dev", "00"), ("dev", "02")]
