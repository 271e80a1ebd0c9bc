"""`python -m eri_jax.reproduce --data-root c2_muse_reaction --models tiny`: the whole paper plan on a MuSe-2022
tree in the formats as shipped (tests/eri_jax/muse_fixture.py), every step run, not a dry run; and bad
input in the tree stops it with one line naming the file and line, before anything is written."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eri_jax.reproduce import build_plan, cli
from eri_jax.reproduce.plan import DATASET, TABLE6_DIR
from tests.eri_jax.muse_fixture import FEATURE_WIDTHS, make_muse_root

CLIPS_PER_SPLIT = 6
# Feature keys the shipped folders become (tfds_hume.feature_names: FAUs -> fau, ...).
SHIPPED_KEYS = {"FAUs": "fau", "VGGFace2": "vggface2", "eGeMAPS": "egemaps", "DeepSpectrum": "deepspectrum"}
VIPER_FAU_WIDTH = 32  # ViPER's token layout pads the F block to 32 (eri_jax/inputs/token_layout.py)


@pytest.fixture(scope="module")
def muse_root(tmp_path_factory) -> Path:
    return make_muse_root(tmp_path_factory.mktemp("muse"), clips_per_split=CLIPS_PER_SPLIT)


def _argv(root: Path, out: Path) -> list[str]:
    # The smallest run the CLI accepts: 1 epoch, 2 cross-fitting folds, 3 sweep seeds (its minimum).
    return ["--data-root", str(root), "--models", "tiny", "--epochs", "1", "--sweep-epochs", "1", "--folds", "2",
            "--runs-dir", str(out / "runs"), "--workdir", str(out / "ckpt"), "--data-dir", str(out / "tfds"),
            "--cache-dir", str(out / "cache")]


def _reproduce(argv: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "eri_jax.reproduce", *argv], capture_output=True, text=True,
                          env=env, timeout=1800)


@pytest.mark.slow
def test_the_whole_plan_runs_on_a_muse_tree_as_shipped(muse_root, tmp_path):
    from eri_jax.inputs.dataset import dataset_meta

    argv = _argv(muse_root, tmp_path)
    r = _reproduce(argv)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "Traceback" not in r.stderr

    # Every step of the plan ran (none skipped: nothing was there before).
    runs = tmp_path / "runs"
    timings = json.loads((runs / "report" / "timings.json").read_text())
    plan = build_plan(cli.options(cli.parser().parse_args(argv)))
    assert [(s["name"], s["status"]) for s in timings["steps"]] == [(s.name, "ran") for s in plan]
    assert timings["options"]["data_root"] == str(muse_root.resolve()) and timings["options"]["models"] == "tiny"

    # The dataset as built: real data (not synthetic) with random-weight features, the shipped folders at
    # their real widths under their alias-table keys, test clips kept with their NaN labels.
    meta = dataset_meta(DATASET, tmp_path / "tfds")
    assert meta.dataset == "c2_muse_reaction" and not meta.synthetic and meta.random_weights
    assert meta.splits == {s: CLIPS_PER_SPLIT for s in ("train", "dev", "test")}
    for folder, key in SHIPPED_KEYS.items():
        spec = meta.features[key]
        assert (spec.dim, spec.source) == (FEATURE_WIDTHS[folder], f"shipped:{folder}"), key

    # The report names the dataset and says what its features are; it does not call it synthetic.
    report = json.loads((runs / "report" / "report.json").read_text())
    assert report["dataset"]["source"] == "c2_muse_reaction"
    assert not report["dataset"]["synthetic"] and report["dataset"]["random_weights"]
    md = (runs / "report" / "report.md").read_text()
    title = md.splitlines()[0]
    assert "c2_muse_reaction" in title and "randomly initialised" in title
    assert "synthetic" not in md.lower()

    # Every row of Tables 3, 4 and 6 is filled; every trained Table 3 row has a number (querying may be
    # undefined: the miniature chat model's answers hold no scores).
    for table in ("table3", "table4", "table6"):
        assert [row["key"] for row in report[table] if row["status"] != "ok"] == [], table
    assert all(row["mean_pearson"] is not None for row in report["table3"] if row["key"] != "videollava_querying")

    # MuSe LSTM rows read the shipped FAUs and VGGFace2 through the alias table, at their real widths.
    for stem, key in (("lstm-fau", "fau"), ("lstm-vggface2", "vggface2")):
        config = json.loads((runs / f"{stem}-s0" / "config.json").read_text())
        assert config["features"] == [key] and config["in_dim"] == meta.features[key].dim

    # ViPER-VATF runs pad the F block (20 shipped FAU columns) to 32, in Table 3 and in the Table 6 sweep.
    for stem in ("viper-VATF-clip", "viper-VATF-vllava_p1", "viper-VATF-vllava_p2", "viper-VATF-llava_frames"):
        config = json.loads((runs / f"{stem}-s0" / "config.json").read_text())
        assert config["block_widths"] == {"fau": VIPER_FAU_WIDTH}, stem
        widths = [meta.features[k].dim for k in config["features"][:3]]
        assert config["features"][3] == "fau" and config["in_dim"] == sum(widths) + VIPER_FAU_WIDTH, stem
    sweep_vatf = json.loads((runs / TABLE6_DIR / "runs" / "viper-VATF-lr0.0005-s0" / "run.json").read_text())
    assert sweep_vatf["in_dim"] == config["in_dim"]  # the last one is vllava_p2's text, the sweep's text


# ------------------------------------------------------------------------------------------- bad input


def _rewrite_cell(path: Path, line: int, column: int, value: str) -> None:
    rows = list(csv.reader(path.open(newline="")))
    rows[line - 1][column] = value
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _drop_column(path: Path, name: str) -> None:
    rows = list(csv.reader(path.open(newline="")))
    at = rows[0].index(name)
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(row[:at] + row[at + 1:] for row in rows)


@pytest.mark.parametrize("file,breakage,expected", [
    ("partition.csv", lambda p: _rewrite_cell(p, 5, 1, "validation2"), "line 5: unknown split 'validation2'"),
    ("labels.csv", lambda p: _rewrite_cell(p, 3, 4, "1.7"), "line 3:"),
    ("labels.csv", lambda p: _rewrite_cell(p, 2, 2, "abc"), "line 2:"),
    ("labels.csv", lambda p: _drop_column(p, "Fear"), "line 1: no emotion column 'Fear'"),
])
def test_bad_label_files_stop_before_anything_is_written(muse_root, tmp_path, file, breakage, expected):
    root = tmp_path / "c2_muse_reaction"
    root.mkdir()
    for name in ("labels.csv", "partition.csv"):  # the layout check reads these two and lists the folders
        shutil.copy(muse_root / name, root / name)
    breakage(root / file)
    out = tmp_path / "out"
    r = _reproduce(_argv(root, out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(f"error: {root / file}, {expected.split(':')[0]}") and expected in lines[0], lines
    assert not out.exists()  # no runs folder, checkpoints, cache or dataset


@pytest.mark.slow
def test_a_feature_folder_nobody_can_read_stops_the_run_at_extraction(muse_root, tmp_path):
    """Bad input only extraction sees (every eGeMAPS CSV with a `;`-separated header): extraction's one
    line naming the file and line, then the failed step; exit code 2; no dataset, export or run written."""
    root = shutil.copytree(muse_root, tmp_path / "c2_muse_reaction")
    for path in (root / "feats" / "eGeMAPS").glob("*.csv"):
        lines = path.read_text().split("\n")
        lines[0] = lines[0].replace("timestamp,File_ID,", "timestamp;File_ID;", 1)
        path.write_text("\n".join(lines))
    out = tmp_path / "out"
    r = _reproduce(_argv(root, out))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and len(lines) <= 3, r.stderr
    assert lines[0].startswith("error: feats/eGeMAPS/: no CSV has a readable header")
    assert f"{root / 'feats' / 'eGeMAPS'}" in lines[0] and ".csv: line 1:" in lines[0]
    assert "step 'extract' failed with exit code 2" in lines[1]
    assert not (out / "tfds").exists() and not (out / "cache" / "exports").exists()
    assert not (out / "cache" / "features").exists() and not (out / "ckpt").exists()
    timings = json.loads((out / "runs" / "report" / "timings.json").read_text())
    assert timings["failed_step"] == "extract" and [s["status"] for s in timings["steps"]] == ["failed"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["report", "reproduce_plan.json"]
