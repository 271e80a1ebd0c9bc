"""write_evaluation: every file is written, parses back, and holds the numbers the metrics give."""
from __future__ import annotations

import csv
import json
import struct

import numpy as np
import pytest
from scipy import stats

from eri_jax.evaluation.files import write_evaluation
from eri_jax.evaluation.metrics import UndefinedPearsonWarning, binned_confusion

EMOTIONS = ["Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def make_split(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.uniform(0, 1, size=(n, len(EMOTIONS)))
    pred = (0.4 * labels + rng.normal(0.3, 0.1, size=labels.shape)).astype(np.float32)
    ids = [f"{i:05d}" for i in range(n)]
    return ids, pred, labels


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [r[0] for r in rows[1:]], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


META = {"model": "viper-vatf", "dataset": "synthetic-demo", "synthetic": True, "random_weights": True,
        "run": "demo", "epoch": np.int64(3)}


def test_writes_every_file_with_correct_content(tmp_path):
    ids, pred, labels = make_split()
    labels[5, 1] = np.nan  # one unlabelled row for one emotion
    run_dir = tmp_path / "runs" / "demo"
    metrics = write_evaluation(run_dir, split="dev", ids=ids, predictions=pred, labels=labels,
                               emotions=EMOTIONS, meta=META)

    header, got_ids, values = read_csv(run_dir / "predictions_dev.csv")
    assert header == ["File_ID", *EMOTIONS]
    assert got_ids == ids  # as given: no brackets added
    np.testing.assert_array_equal(values.astype(np.float32), pred)  # float32 round-trips exactly

    on_disk = json.loads((run_dir / "metrics_dev.json").read_text())
    assert on_disk == metrics
    assert metrics["split"] == "dev" and metrics["n_clips"] == 60 and metrics["emotions"] == EMOTIONS
    assert metrics["n_labelled"]["Amusement"] == 59 and metrics["n_labelled"]["Fear"] == 60
    assert metrics["meta"]["epoch"] == 3 and metrics["meta"]["synthetic"] is True
    p64 = pred.astype(np.float64)
    for k, e in enumerate(EMOTIONS):
        keep = ~np.isnan(labels[:, k])
        want = stats.pearsonr(p64[keep, k], labels[keep, k]).statistic
        assert metrics["pearson"][e] == pytest.approx(want, abs=1e-12)
        rng_ = metrics["prediction_range"][e]
        assert rng_ == pytest.approx({"mean": p64[:, k].mean(), "std": p64[:, k].std(),
                                      "min": p64[:, k].min(), "max": p64[:, k].max()})
        assert metrics["label_stats"][e] == pytest.approx({"mean": labels[keep, k].mean(),
                                                           "std": labels[keep, k].std()})
        counts = np.array(metrics["confusion"]["counts"][e])
        assert counts.shape == (10, 10) and counts.sum() == keep.sum()
        np.testing.assert_allclose(counts / np.maximum(counts.sum(1, keepdims=True), 1),
                                   binned_confusion(labels[:, k], p64[:, k]))
    assert metrics["mean_pearson"] == pytest.approx(np.mean(list(metrics["pearson"].values())), abs=1e-12)
    assert metrics["n_undefined_pearson"] == 0

    md = (run_dir / "metrics_dev.md").read_text()
    assert md.splitlines()[0].startswith("# ") and "synthetic data" in md.splitlines()[0]
    assert "| Model | " + " | ".join(EMOTIONS) + " | Average |" in md
    table_row = next(line for line in md.splitlines() if line.startswith("| viper-vatf |"))
    cells = [c.strip() for c in table_row.strip("|").split("|")][1:]
    assert cells == [f"{metrics['pearson'][e]:.4f}" for e in EMOTIONS] + [f"{metrics['mean_pearson']:.4f}"]
    assert f"| Fear | {metrics['prediction_range']['Fear']['mean']:.4f} |" in md

    for e in EMOTIONS:
        png = run_dir / metrics["files"]["confusion"][e]
        assert png.name == f"confusion_dev_{e}.png"
        width, height = png_size(png)
        assert width >= 300 and height >= 300
    assert not list(run_dir.glob(".*.tmp"))  # no leftovers of the atomic writes


def test_confusion_rows_sum_to_one_or_zero(tmp_path):
    ids, pred, labels = make_split(n=40, seed=1)
    labels[:, 0] = np.where(labels[:, 0] > 0.5, 0.95, 0.05)  # only bins 0 and 9 used
    metrics = write_evaluation(tmp_path, split="dev", ids=ids, predictions=pred, labels=labels,
                               emotions=EMOTIONS, meta={})
    for e in EMOTIONS:
        counts = np.array(metrics["confusion"]["counts"][e], dtype=float)
        sums = (counts / np.maximum(counts.sum(1, keepdims=True), 1)).sum(1)
        assert np.all(np.isclose(sums, 1.0) | (sums == 0.0))
    counts0 = np.array(metrics["confusion"]["counts"]["Adoration"])
    assert counts0[1:9].sum() == 0 and counts0[0].sum() + counts0[9].sum() == 40
    assert "synthetic" not in (tmp_path / "metrics_dev.md").read_text().splitlines()[0]


def test_constant_predictions_give_nan_warning_and_still_write_everything(tmp_path):
    ids, pred, labels = make_split(n=30, seed=2)
    pred[:, 3] = 0.5
    with pytest.warns(UndefinedPearsonWarning, match="Disgust"):
        metrics = write_evaluation(tmp_path, split="dev", ids=ids, predictions=pred, labels=labels,
                                   emotions=EMOTIONS, meta={"synthetic": True})
    assert metrics["pearson"]["Disgust"] is None and metrics["n_undefined_pearson"] == 1
    defined = [metrics["pearson"][e] for e in EMOTIONS if e != "Disgust"]
    assert metrics["mean_pearson"] == pytest.approx(np.mean(defined), abs=1e-12)
    assert json.loads((tmp_path / "metrics_dev.json").read_text())["pearson"]["Disgust"] is None
    md = (tmp_path / "metrics_dev.md").read_text()
    assert "n/a" in md and "6 of 7 emotions" in md and "Disgust" in md
    assert (tmp_path / "predictions_dev.csv").exists()
    assert len(list(tmp_path.glob("confusion_dev_*.png"))) == 7
    # Constant 0.5 predictions all land in prediction bin 5.
    counts = np.array(metrics["confusion"]["counts"]["Disgust"])
    assert counts[:, 5].sum() == 30


def test_unlabelled_split_writes_predictions_and_ranges_only(tmp_path):
    ids, pred, _ = make_split(n=10, seed=3)
    ids = [f"[{i}]" for i in ids]  # bracketed IDs are kept as given
    metrics = write_evaluation(tmp_path, split="test", ids=ids, predictions=pred, labels=None,
                               emotions=EMOTIONS, meta={"run": "x"})
    assert metrics["pearson"] is None and metrics["mean_pearson"] is None and metrics["confusion"] is None
    assert metrics["prediction_range"]["Fear"]["max"] == pytest.approx(float(pred[:, 5].max()))
    _, got_ids, values = read_csv(tmp_path / "predictions_test.csv")
    assert got_ids == ids and values.shape == (10, 7)
    assert not list(tmp_path.glob("*.png"))
    assert "No labels" in (tmp_path / "metrics_test.md").read_text()


def test_bad_input_is_a_clear_error(tmp_path):
    ids, pred, labels = make_split(n=8)
    kwargs = dict(split="dev", emotions=EMOTIONS, meta={})
    with pytest.raises(ValueError, match="predictions have shape"):
        write_evaluation(tmp_path, ids=ids[:-1], predictions=pred, labels=labels, **kwargs)
    with pytest.raises(ValueError, match="labels have shape"):
        write_evaluation(tmp_path, ids=ids, predictions=pred, labels=labels[:, :6], **kwargs)
    with pytest.raises(ValueError, match="'00002' appears twice"):
        write_evaluation(tmp_path, ids=ids[:7] + ["00002"], predictions=pred, labels=labels, **kwargs)
    with pytest.raises(ValueError, match="split name"):
        write_evaluation(tmp_path, ids=ids, predictions=pred, labels=labels, split="../x",
                         emotions=EMOTIONS, meta={})
    with pytest.raises(ValueError, match="meta must be JSON-serialisable"):
        write_evaluation(tmp_path, ids=ids, predictions=pred, labels=labels, split="dev",
                         emotions=EMOTIONS, meta={"model": object()})
    assert not any(tmp_path.iterdir())  # nothing half-written on bad input
