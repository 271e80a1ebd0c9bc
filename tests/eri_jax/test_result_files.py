"""eri_jax.result_files: atomic writes (a failed write keeps the old file), JSON null for NaN, predictions CSV."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from eri_jax import result_files
from eri_jax.report.runs import read_predictions
from eri_jax.result_files import atomic_path, json_safe, write_json, write_predictions, write_text
from eri_jax.sweep import outputs

EMOTIONS = ["Adoration", "Amusement", "Empathic-Pain"]


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def test_atomic_path_keeps_the_old_file_when_the_block_fails(tmp_path):
    target = write_text(tmp_path / "report.md", "old\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".report.md.") and tmp.suffix == ".tmp"
            tmp.write_text("half of the new")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n" and not _leftovers(tmp_path)
    with atomic_path(target) as tmp:
        tmp.write_text("new\n")
    assert target.read_text() == "new\n" and not _leftovers(tmp_path)


def test_atomic_temporary_names_differ_and_parents_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "x.json"
    with atomic_path(target) as t1, atomic_path(target) as t2:
        assert t1 != t2  # two writers of one file never share a temporary file
        t1.write_text("1")
        t2.write_text("2")
    assert target.read_text() == "1"  # the outer block finished last


def test_predictions_csv_failing_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "predictions_dev.csv"
    write_predictions(path, ["a", "b"], np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], np.float32), EMOTIONS)
    old = path.read_bytes()
    real_writer = csv.writer

    class Failing:
        def __init__(self, f):
            self.w, self.rows = real_writer(f), 0

        def writerow(self, row):
            self.rows += 1
            if self.rows == 3:  # header and one row already written to the temporary file
                raise OSError("no space left on device")
            self.w.writerow(row)

    monkeypatch.setattr(result_files.csv, "writer", Failing)
    with pytest.raises(OSError, match="no space"):
        write_predictions(path, ["c", "d", "e"], np.zeros((3, 3)), EMOTIONS)
    assert path.read_bytes() == old and not _leftovers(tmp_path)


def test_json_failing_before_writing_keeps_the_old_file(tmp_path):
    path = write_json(tmp_path / "run.json", {"ok": 1})
    with pytest.raises(TypeError, match="object value .* is not JSON-serialisable"):
        write_json(path, {"ok": 2, "bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1} and not _leftovers(tmp_path)


def test_json_nan_and_inf_become_null_and_numpy_becomes_python(tmp_path):
    obj = {"r": float("nan"), "hi": np.float32(np.inf), "lo": -math.inf, "per": np.array([0.25, np.nan]),
           "n": np.int64(3), "ok": np.bool_(True), "shape": (2, 3), "file": Path("runs") / "a",
           "nested": [{"x": np.float64(0.5)}], 7: "int key"}
    expected = {"r": None, "hi": None, "lo": None, "per": [0.25, None], "n": 3, "ok": True, "shape": [2, 3],
                "file": str(Path("runs") / "a"), "nested": [{"x": 0.5}], "7": "int key"}
    assert json_safe(obj) == expected
    path = write_json(tmp_path / "m.json", obj, indent=2)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text and '"r": null' in text
    assert text == json.dumps(expected, indent=2) + "\n"
    assert write_json(tmp_path / "d.json", [1]).read_text() == "[\n 1\n]\n"  # default indent 1, newline at end


def test_predictions_csv_round_trip_keeps_ids_and_float32_values(tmp_path):
    ids = ["00001", "[00002]", "a,b", 'say "hi"', "007"]
    rng = np.random.default_rng(0)
    pred = rng.uniform(size=(5, 3)).astype(np.float32)
    pred[0] = [0.1, 1.0 / 3.0, 0.0]
    path = write_predictions(tmp_path / "predictions_dev.csv", ids, pred, EMOTIONS)
    lines = path.read_text().splitlines()
    assert lines[0] == "File_ID," + ",".join(EMOTIONS)
    assert lines[1] == "00001,0.1,0.33333334,0.0"  # shortest text that reads back to the same float32
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows[1:]] == ids  # written exactly as given: no brackets added or removed
    back = np.array([[np.float32(v) for v in r[1:]] for r in rows[1:]])
    assert back.dtype == np.float32 and np.array_equal(back, pred)
    # The project's reader (report.runs) reads it back, emotions in any order.
    got_ids, values = read_predictions(path, list(reversed(EMOTIONS)))
    assert got_ids == ids and np.array_equal(values.astype(np.float32), pred[:, ::-1])


def test_predictions_csv_float64_and_int_values(tmp_path):
    pred64 = np.array([[0.1 + 1e-12, 2.0 / 3.0, 1e-300]])
    path = write_predictions(tmp_path / "p.csv", ["x"], pred64, EMOTIONS)
    assert np.array_equal([float(v) for v in path.read_text().splitlines()[1].split(",")[1:]], pred64[0])
    path = write_predictions(tmp_path / "q.csv", [1], [[0, 1, 0]], EMOTIONS)
    assert path.read_text().splitlines()[1] == "1,0.0,1.0,0.0"  # non-float input written as float64


def test_predictions_csv_bad_input_names_the_file_and_writes_nothing(tmp_path):
    path = tmp_path / "predictions_dev.csv"
    with pytest.raises(ValueError, match="predictions_dev.csv: predictions of shape \\(2, 3\\) for 3 clips"):
        write_predictions(path, ["a", "b", "c"], np.zeros((2, 3)), EMOTIONS)
    with pytest.raises(ValueError, match="clip ID 'a' appears twice \\(rows 0 and 2\\)"):
        write_predictions(path, ["a", "b", "a"], np.zeros((3, 3)), EMOTIONS)
    with pytest.raises(ValueError, match="distinct and not 'File_ID'"):
        write_predictions(path, ["a"], np.zeros((1, 2)), ["Fear", "Fear"])
    with pytest.raises(ValueError, match="distinct and not 'File_ID'"):
        write_predictions(path, ["a"], np.zeros((1, 1)), ["File_ID"])
    assert not any(tmp_path.iterdir())


def test_sweep_outputs_names_stay_importable():
    assert outputs.write_json is write_json and outputs.write_predictions is write_predictions
