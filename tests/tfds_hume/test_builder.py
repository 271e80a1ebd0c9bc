"""The feature schema, the TFDS builder `hume_reaction` and `tfds_hume.build`: round trips, errors, no TF."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.tfds_hume.tiny_export import EMOTIONS, SPLIT_OF, T, make_export, tiny_features
from tfds_hume import schema
from tfds_hume.build import build
from tfds_hume.build import main as build_main
from tfds_hume.manifest import FeatureSpec, Manifest, save_value

REPO = Path(__file__).resolve().parents[2]

# Installed as sitecustomize in child processes: every `import tensorflow...` fails. The finder hands out a
# spec whose loader raises (a finder that raised itself would break `importlib.util.find_spec` probes, and a
# None entry in sys.modules makes TFDS believe TF is already loaded).
_NO_TF = textwrap.dedent("""
    import importlib.abc, importlib.machinery, sys
    class _Refuse(importlib.abc.Loader):
        def create_module(self, spec):
            raise ImportError(f"{spec.name} is blocked in this test process")
        def exec_module(self, module):
            pass
    class _NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                return importlib.machinery.ModuleSpec(name, _Refuse())
            return None
    sys.meta_path.insert(0, _NoTensorFlow())
""")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("hume")
    manifest, expected = make_export(root / "export")
    out = build(root / "export", config="full", data_dir=root / "tfds")
    return root, manifest, expected, out

def _read_split(data_dir, split, name="hume_reaction/full"):
    source = tfds.data_source(name, data_dir=os.fspath(data_dir), split=split)
    return source.__getitems__(list(range(len(source))))

def test_schema_follows_the_manifest():
    feats = tiny_features()
    fd = schema.features_dict(feats, num_emotions=7)
    assert set(fd.keys()) == {"id", "split", "labels", "features", "missing", "frame_mask"}
    assert fd["labels"].shape == (7,) and fd["labels"].np_dtype == np.float32
    assert fd["features"]["pixels"].shape == (T, 6) and fd["features"]["pixels"].np_dtype == np.float32
    assert fd["features"]["vllava_emb"].shape == (5,)
    assert isinstance(fd["features"]["vllava_text"], tfds.features.Text)
    assert fd["features"]["llava_text"].shape == (T,) and fd["features"]["llava_text"].np_dtype == np.object_
    assert set(fd["missing"].keys()) == set(feats)
    # Per-frame kinds only, with the manifest's T.
    assert set(fd["frame_mask"].keys()) == {"pixels", "fau", "llava_text"}
    assert fd["frame_mask"]["fau"].shape == (T,)
    # No per-frame feature: no frame_mask group at all.
    assert "frame_mask" not in schema.features_dict({"v": FeatureSpec("video", dim=3)}, 2).keys()
    with pytest.raises(ValueError, match="a/b"):
        schema.features_dict({"a/b": FeatureSpec("video", dim=3)}, 2)

def test_round_trip_values_flags_and_order(built):
    root, manifest, expected, out = built
    assert out == root / "tfds" / "hume_reaction" / "full" / "1.0.0"
    for split in ("train", "dev", "test"):
        examples = _read_split(root / "tfds", split)
        ids = [ex["id"].decode() for ex in examples]
        assert ids == sorted(c for c, s in SPLIT_OF.items() if s == split)  # stored in id order
        for ex in examples:
            cid = ex["id"].decode()
            exp = expected[cid]
            assert ex["split"].decode() == split
            np.testing.assert_array_equal(ex["labels"], exp["labels"])  # NaN == NaN here
            assert np.isnan(ex["labels"]).all() == (split == "test")
            for key in ("pixels", "fau"):
                if key not in exp:  # clip 00001 has no fau: zeros, missing, no real frame
                    assert ex["missing"][key]
                    assert not ex["features"][key].any() and not ex["frame_mask"][key].any()
                    continue
                mask = exp.get(f"{key}/frame_mask", np.ones(T, bool))
                assert not ex["missing"][key]
                np.testing.assert_array_equal(ex["frame_mask"][key], mask)
                np.testing.assert_array_equal(ex["features"][key][mask], exp[key][mask])
                assert not ex["features"][key][~mask].any()  # masked NaN rows were zeroed
            np.testing.assert_array_equal(ex["features"]["vllava_emb"], exp["vllava_emb"])
            assert ex["features"]["vllava_text"].decode() == str(exp["vllava_text"])
            assert [b.decode() for b in ex["features"]["llava_text"]] == exp["llava_text"].tolist()
            assert ex["frame_mask"]["llava_text"].all()

def test_metadata_describes_every_feature(built):
    root, manifest, _, _ = built
    info = tfds.builder("hume_reaction/full", data_dir=os.fspath(root / "tfds")).info
    md = info.metadata
    assert md["emotions"] == EMOTIONS
    assert md["dataset"] == "synthetic-demo" and md["synthetic"] is True and md["random_weights"] is True
    assert md["config"] == "full" and md["notes"] == {"made_by": "tiny_export"}
    assert {k: FeatureSpec(**v) for k, v in md["features"].items()} == manifest.features
    assert md["features"]["vllava_emb"]["params"]["prompt"] == "Describe the video."
    assert {k: v.num_examples for k, v in info.splits.items()} == {"train": 4, "dev": 2, "test": 2}
    assert info.disable_shuffling and info.file_format.value == "array_record"

def test_config_selects_features_and_checks_synthetic(tmp_path):
    make_export(tmp_path / "export")
    out = build(tmp_path / "export", config="demo", data_dir=tmp_path / "tfds")
    info = tfds.builder_from_directory(os.fspath(out)).info
    # demo keeps pixels and shipped:* sources only.
    assert sorted(info.features["features"].keys()) == ["fau", "pixels"]
    assert sorted(info.metadata["features"]) == ["fau", "pixels"]
    with pytest.raises(ValueError, match="config 'shipped' is for real data"):
        build(tmp_path / "export", config="shipped", data_dir=tmp_path / "tfds")

def test_empty_split_is_absent_and_rebuild_replaces(tmp_path):
    manifest, _ = make_export(tmp_path / "export")
    manifest.clips = [c for c in manifest.clips if c.split != "dev"]
    manifest.write(tmp_path / "export")
    build(tmp_path / "export", config="full", data_dir=tmp_path / "tfds")
    assert set(tfds.builder("hume_reaction/full", data_dir=os.fspath(tmp_path / "tfds")).info.splits) == {
        "train", "test"}
    # A rebuild from a changed export replaces the old dataset (no stale reuse).
    for c in manifest.clips:
        if c.split == "train":
            c.labels = [0.5] * len(EMOTIONS)
    manifest.write(tmp_path / "export")
    build(tmp_path / "export", config="full", data_dir=tmp_path / "tfds")
    assert all((ex["labels"] == 0.5).all() for ex in _read_split(tmp_path / "tfds", "train"))

def test_wrong_shape_names_the_file_and_keeps_the_old_build(tmp_path):
    manifest, _ = make_export(tmp_path / "export")
    build(tmp_path / "export", config="full", data_dir=tmp_path / "tfds")
    bad = tmp_path / "export" / "features" / "fau" / "00004.npz"
    save_value(bad, np.zeros((T, 99), np.float32))
    with pytest.raises(ValueError, match=r"00004.*fau.*00004\.npz.*\(4, 99\)"):
        build(tmp_path / "export", config="full", data_dir=tmp_path / "tfds")
    # The previous dataset stays, nothing half-written is left behind: only the link and its folder.
    assert len(_read_split(tmp_path / "tfds", "train")) == 4
    live = tmp_path / "tfds" / "hume_reaction" / "full" / "1.0.0"
    assert sorted(p.name for p in live.parent.iterdir()) == sorted(["1.0.0", os.readlink(live)])

@pytest.mark.parametrize("problem", ["file_gone", "corrupt_npz", "nan_in_real_frame", "bad_labels", "bad_split",
                                     "duplicate_id", "undescribed_feature"])
def test_bad_export_is_a_clear_error(tmp_path, problem):
    manifest, _ = make_export(tmp_path / "export")
    clip = next(c for c in manifest.clips if c.id == "00004")
    if problem == "file_gone":
        (tmp_path / "export" / clip.files["pixels"]).unlink()
        err, match = FileNotFoundError, r"manifest\.json: clip '00004', feature 'pixels': .* does not exist"
    elif problem == "corrupt_npz":
        (tmp_path / "export" / clip.files["vllava_emb"]).write_bytes(b"PK\x03\x04 truncated")
        err, match = ValueError, r"clip '00004', feature 'vllava_emb': .*00004\.npz: cannot read"
    elif problem == "nan_in_real_frame":
        value = np.ones((T, 6), np.float32)
        value[2, 0] = np.nan
        save_value(tmp_path / "export" / clip.files["pixels"], value)
        err, match = ValueError, r"00004\.npz: non-finite values in unmasked frames \[2\]"
    elif problem == "bad_labels":
        clip.labels = [0.1, 0.2]
        err, match = ValueError, r"00004.*2 labels for 7 emotions"
    elif problem == "bad_split":
        clip.split = "devel"
        err, match = ValueError, r"manifest\.json: splits \['devel'\]"
    elif problem == "duplicate_id":
        manifest.clips.append(dataclasses.replace(clip, split="test"))
        err, match = ValueError, r"manifest\.json: clip ids listed more than once: \['00004'\]"
    else:
        clip.files["vit"] = clip.files["pixels"]
        err, match = ValueError, r"manifest\.json: clip '00004' lists files for features \['vit'\]"
    manifest.write(tmp_path / "export")
    with pytest.raises(err, match=match):
        build(tmp_path / "export", config="full", data_dir=tmp_path / "tfds")

def test_build_cli(tmp_path, capsys):
    make_export(tmp_path / "export")
    build_main([os.fspath(tmp_path / "export"), "--config", "demo", "--data-dir", os.fspath(tmp_path / "d")])
    assert "hume_reaction/demo/1.0.0 (train 4, dev 2, test 2)" in capsys.readouterr().out

def _run_without_tf(tmp_path, *snippets: str) -> str:
    site = tmp_path / "no_tf_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_NO_TF)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.fspath(site), os.fspath(REPO)]), JAX_PLATFORMS="cpu")
    prelude = "import sys\ntry:\n    import tensorflow\n    raise SystemExit('tensorflow imported')\n" \
              "except ImportError:\n    pass\n"
    code = prelude + "\n".join(textwrap.dedent(c) for c in snippets)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout

def test_build_and_read_without_tensorflow(tmp_path):
    """Build and read in processes where `import tensorflow` fails, with and without the builder module."""
    _, expected = make_export(tmp_path / "export")
    dev = {cid: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in exp.items()}
           for cid, exp in expected.items() if SPLIT_OF[cid] == "dev"}
    (tmp_path / "expected.json").write_text(json.dumps(dev))
    check = """
        import json, numpy as np, tensorflow_datasets as tfds
        want = json.load(open("expected.json"))
        src = tfds.data_source("hume_reaction/full", data_dir="tfds", split="dev")
        got = src.__getitems__(list(range(len(src))))
        assert [g["id"].decode() for g in got] == sorted(want)
        for g in got:
            w = want[g["id"].decode()]
            np.testing.assert_allclose(g["labels"], w["labels"], rtol=0, atol=0)
            np.testing.assert_array_equal(g["features"]["vllava_emb"], np.float32(w["vllava_emb"]))
            assert g["missing"]["fau"] == ("fau" not in w)
        assert tfds.builder("hume_reaction/full", data_dir="tfds").info.metadata["emotions"][0] == "Adoration"
        assert "tensorflow" not in sys.modules
    """
    # 1. Build (imports the builder module) and read in the same process.
    out = _run_without_tf(tmp_path, """
        from tfds_hume.build import build
        build("export", config="full", data_dir="tfds")
        import tfds_hume.hume_reaction
    """, check, """
        print(type(tfds.builder("hume_reaction/full", data_dir="tfds")).__module__)
    """)
    assert "tfds_hume.hume_reaction.hume_reaction_dataset_builder" in out
    # 2. Read only, never importing tfds_hume: TFDS reads features.json / metadata.json from the dataset.
    out = _run_without_tf(tmp_path, check, """
        assert not any(m.startswith("tfds_hume") for m in sys.modules)
        print(type(tfds.builder("hume_reaction/full", data_dir="tfds")).__name__)
    """)
    assert "ReadOnlyBuilder" in out

def test_tfds_build_cli_route(tmp_path):
    """`tfds build tfds_hume/hume_reaction --config demo --manual_dir EXPORT --data_dir D`, run through the
    `tfds build` command's own argument parser and code (its `tfds` entry point imports TensorFlow)."""
    make_export(tmp_path / "export")
    builder_dir = REPO / "tfds_hume" / "hume_reaction"
    _run_without_tf(tmp_path, f"""
        import simple_parsing
        from tensorflow_datasets.scripts.cli import build
        args = simple_parsing.parse(build.Args, args=[{os.fspath(builder_dir)!r}, "--config", "demo",
                                    "--manual_dir", "export", "--data_dir", "d"])
        args.execute()
        assert "tensorflow" not in sys.modules
    """)
    info = tfds.builder_from_directory(os.fspath(tmp_path / "d" / "hume_reaction" / "demo" / "1.0.0")).info
    assert info.file_format.value == "array_record"
    assert sorted(info.metadata["features"]) == ["fau", "pixels"]
    assert {k: v.num_examples for k, v in info.splits.items()} == {"train": 4, "dev": 2, "test": 2}

def test_manifest_object_and_dataclass_specs_round_trip():
    # The metadata stores FeatureSpec as plain dicts; every field must survive JSON.
    spec = tiny_features()["vllava_emb"]
    assert FeatureSpec(**json.loads(json.dumps(dataclasses.asdict(spec)))) == spec
    m = Manifest(dataset="x", synthetic=True, emotions=["a"], features={"v": spec}, clips=[])
    assert schema.metadata(m, m.features, "full")["features"]["v"]["revision"] == "abc123"


def test_saved_values_are_the_same_bytes_for_the_same_arrays(tmp_path):
    """A cache entry depends on its arrays only (no clock in the zip), so runs compare file for file."""
    import os
    import time

    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    mask = np.array([True, False, True])
    save_value(tmp_path / "a.npz", value, mask)
    os.utime(tmp_path / "a.npz", (0, 0))
    time.sleep(2.1)  # zip stamps have a 2 s resolution
    save_value(tmp_path / "b.npz", value, mask)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as z:
        np.testing.assert_array_equal(z["value"], value)
        np.testing.assert_array_equal(z["frame_mask"], mask)
    save_value(tmp_path / "c.npz", value + 1, mask)
    assert (tmp_path / "c.npz").read_bytes() != (tmp_path / "a.npz").read_bytes()
