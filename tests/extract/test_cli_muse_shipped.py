"""`python -m extract` on a MuSe-2022 tree as shipped (root `c2_muse_reaction/`, `feats/FAUs/`), with the
issue-11 breakages: a broken feature CSV in the first clip, a labels.csv without an emotion, --emotions."""
import json
import shutil

import pytest

from extract.cli import main
from tfds_hume.manifest import Manifest
from tfds_hume.synthetic import generate


@pytest.fixture(scope="module")
def muse_source(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("gen") / "muse", layout="muse", clips_per_split=1, seed=5,
                    duration_range=(1.0, 1.2), frame_size=(32, 32), progress=False)


def copy_tree(source, tmp_path):
    return shutil.copytree(source, tmp_path / "c2_muse_reaction")


def run(root, tmp_path, *extra):
    return main(["--data-root", str(root), "--cache-dir", str(tmp_path / "cache"), "--data-dir",
                 str(tmp_path / "tfds"), "--no-progress", *extra])


def test_bad_first_csv_fails_that_clip_only(muse_source, tmp_path, capsys):
    root = copy_tree(muse_source, tmp_path)
    first = sorted((root / "feats" / "FAUs").glob("*.csv"))[0]
    first.write_text("")
    assert run(root, tmp_path) == 0
    export = tmp_path / "cache" / "exports" / "c2_muse_reaction-shipped"
    summary = json.loads((export / "summary.json").read_text())
    assert list(summary["failed"]) == [first.stem]
    assert f"{first}: line 1: empty file" in summary["failed"][first.stem][0]
    m = Manifest.read(export)
    assert {"fau", "vggface2"} <= set(m.features) and "faus" not in m.features
    assert m.features["fau"].source == "shipped:FAUs" and m.features["fau"].dim == 20
    assert first.stem not in {c.id for c in m.clips} and len(m.clips) == 2
    failures = (tmp_path / "cache" / "features").rglob("failures.jsonl")
    rows = [json.loads(line) for f in failures for line in f.read_text().splitlines()]
    assert [(r["id"], r["file"]) for r in rows if r["file"] == str(first)] == [(first.stem, str(first))]


def test_missing_emotion_column_stops_before_any_work(muse_source, tmp_path, capsys):
    root = copy_tree(muse_source, tmp_path)
    labels = root / "labels.csv"
    lines = [line.split(",") for line in labels.read_text().splitlines()]
    at = lines[0].index("Fear")
    labels.write_text("\n".join(",".join(c[:at] + c[at + 1:]) for c in lines) + "\n")
    assert run(root, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {labels}, line 1: no emotion column 'Fear'") and len(err.splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "cache" / "exports").exists()
    assert not (tmp_path / "tfds").exists()
    # --emotions names another set explicitly; a malformed one is a usage error.
    assert run(root, tmp_path, "--emotions", "Joy,Joy") == 2
    assert "distinct emotion names" in capsys.readouterr().err
    six = [e for e in lines[0][1:] if e != "Fear"]
    assert run(root, tmp_path, "--emotions", ",".join(six), "--no-build") == 0
    m = Manifest.read(tmp_path / "cache" / "exports" / "c2_muse_reaction-shipped")
    assert m.emotions == six
