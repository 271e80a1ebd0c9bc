"""`python -m eri_jax.query --run` with miniature chat models on the synthetic set built by `python -m extract`.

The random tiny models answer gibberish: every score is missing, nothing crashes, the missing counts
are reported and filled with the train mean. Answers are cached like extraction's (a rerun loads no
model), and a clip whose video breaks is reported as unanswered while the run goes on.
"""
import csv
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach for a hub

import numpy as np
import pytest

from eri_jax.query.cli import main
from tfds_hume.records import HUME_EMOTIONS

DATASET = "hume_reaction/demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo(tmp_path_factory, "qrun")


def build_demo(tmp_path_factory, name: str) -> dict:
    """The synthetic demo dataset (2 clips per split) as `python -m extract` builds it; no query_answer."""
    from extract.cli import main as extract_main

    root = tmp_path_factory.mktemp(name)
    cache, data = root / "cache", root / "tfds"
    assert extract_main(["--cache-dir", str(cache), "--data-dir", str(data), "--synthetic-clips", "2",
                         "--no-progress"]) == 0
    return {"cache": cache, "data": data, "runs": root / "runs"}


def _query(demo, *extra):
    return main(["--dataset", DATASET, "--data-dir", str(demo["data"]), "--cache-dir", str(demo["cache"]),
                 "--runs-dir", str(demo["runs"]), "--models", "tiny", "--no-progress", "--workers", "0", *extra])


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_tiny_video_llava_gibberish_is_all_missing_and_filled_with_the_train_mean(demo):
    from eri_jax.inputs.dataset import load_split

    assert _query(demo) == 0  # the demo dataset has no stored answers: --run is the default
    run = demo["runs"] / "query-vllava"
    stats = json.loads((run / "query_stats_dev.json").read_text())
    metrics = json.loads((run / "metrics_dev.json").read_text())
    train_mean = np.nanmean(load_split("train", [], DATASET, demo["data"]).labels.astype(np.float64), 0)
    assert stats["answers"] == 2 and stats["with_no_score"] == 2 and stats["no_answer"] == 0
    for k, e in enumerate(HUME_EMOTIONS):
        assert (stats["per_emotion"][e]["parsed"], stats["per_emotion"][e]["missing"]) == (0, 2)
        assert stats["fill"]["values"][e] == pytest.approx(train_mean[k], rel=1e-6)
        assert metrics["pearson"][e] is None  # constant predictions: r undefined, not a number made up
    assert metrics["mean_pearson"] is None and metrics["n_undefined_pearson"] == 7
    with open(run / "predictions_dev.csv") as f:
        preds = np.array([[float(v) for v in r[1:]] for r in list(csv.reader(f))[1:]])
    np.testing.assert_allclose(preds, np.broadcast_to(train_mean, preds.shape), rtol=1e-6)
    meta = metrics["meta"]
    assert meta["model"] == "query" and meta["answers_from"] == "model" and meta["random_weights"] is True
    assert meta["model_id"] == "tiny:vllava" and meta["answered_now"] == 2 and meta["synthetic"] is True
    # Video-LLaVA's answers live in extraction's own vllava_query cache folder, shared with `python -m extract`.
    assert os.path.basename(meta["cache_folder"]).startswith("vllava_query-")
    answers = [r["answer"] for r in _rows(run / "query_answers_dev.csv")]
    assert all(a.strip() for a in answers)

    # A rerun finds every answer in the cache and loads no model.
    import extract.extractors.model_pool as model_pool

    def no_load(self, kind):
        raise AssertionError("a model was loaded although every answer is cached")

    orig, model_pool.ModelPool.get = model_pool.ModelPool.get, no_load
    try:
        assert _query(demo, "--run", "--run-name", "rerun") == 0
    finally:
        model_pool.ModelPool.get = orig
    meta = json.loads((demo["runs"] / "rerun" / "metrics_dev.json").read_text())["meta"]
    assert (meta["answered_now"], meta["answers_cached"]) == (0, 2)
    assert [r["answer"] for r in _rows(demo["runs"] / "rerun" / "query_answers_dev.csv")] == answers


def test_tiny_qwen2vl_with_a_broken_video_goes_on(demo):
    from tfds_hume.layouts import read_layout

    root = next((demo["cache"] / "synthetic").iterdir())
    dev = sorted((r for r in read_layout(root).records if r.split == "dev"), key=lambda r: r.id)
    broken = dev[0]
    broken.video.write_bytes(broken.video.read_bytes()[:200])  # truncated: no decodable frame left
    assert _query(demo, "--run", "--chat-model", "qwen2vl", "--batch-size", "2") == 0
    run = demo["runs"] / "query-qwen2vl"
    rows = _rows(run / "query_answers_dev.csv")
    assert [r["File_ID"] for r in rows] == [r.id for r in dev]
    assert rows[0]["status"].startswith("no answer: ") and broken.video.name in rows[0]["status"]
    assert rows[1]["status"] == "answered" and rows[1]["answer"].strip()
    stats = json.loads((run / "query_stats_dev.json").read_text())
    assert stats["no_answer"] == 1 and broken.id in stats["no_answer_reasons"]
    assert all(s["missing"] == 2 for s in stats["per_emotion"].values())
    meta = stats["meta"]
    assert meta["chat_model"] == "qwen2vl" and meta["model_id"] == "tiny:qwen2vl" and meta["answered_now"] == 1


def test_run_without_videos_is_a_clear_error(demo, tmp_path, capsys):
    assert _query(demo, "--run", "--data-root", str(tmp_path / "nowhere")) == 2
    assert "is not a folder" in capsys.readouterr().err
