"""Few-shot querying: the seeded choice of train examples, their answers, and `--run --shots K` end to end
with the tiny Qwen2-VL on the synthetic demo set (2 clips per split)."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach for a hub

import numpy as np
import pytest

from eri_jax.query.compare import main as compare_main
from eri_jax.query.parse import parse_scores
from eri_jax.query.shots import choose_shots, shot_answer
from tests.eri_jax import test_query_run as query_run
from tfds_hume.records import HUME_EMOTIONS

DATASET = "hume_reaction/demo"


def test_choice_is_seeded_and_skips_clips_with_missing_labels():
    labels = np.random.default_rng(0).random((20, 7)).astype(np.float32)
    labels[[3, 7, 11], 2] = np.nan
    picks = choose_shots(labels, 5, seed=4)
    assert picks == choose_shots(labels, 5, seed=4) and len(set(picks)) == 5
    assert not {3, 7, 11} & set(picks)
    assert picks != choose_shots(labels, 5, seed=5)
    assert choose_shots(labels, 0, seed=4) == []
    with pytest.raises(ValueError, match="only 17 fully labelled"):
        choose_shots(labels, 18, seed=0)


def test_example_answers_parse_back_to_their_labels():
    labels = np.array([0.42, 0.0, 1.0, 0.125, 0.5, 0.07, 0.999], np.float32)
    text = shot_answer(labels, HUME_EMOTIONS)
    assert text.startswith("adoration: 0.42, amusement: 0.00") and "empathic pain: 0.50" in text
    np.testing.assert_allclose(parse_scores(text, list(HUME_EMOTIONS)), np.round(labels, 2), atol=1e-6)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return query_run.build_demo(tmp_path_factory, "qshots")


def _query(demo, *extra):
    return query_run._query(demo, "--chat-model", "qwen2vl", *extra)


def test_shots_run_with_qwen2vl_record_train_examples_and_cache_apart(demo):
    from eri_jax.inputs.dataset import load_split

    assert _query(demo) == 0 and _query(demo, "--shots", "2", "--shot-seed", "3") == 0
    zero = json.loads((demo["runs"] / "query-qwen2vl" / "query_stats_dev.json").read_text())["meta"]
    two = json.loads((demo["runs"] / "query-qwen2vl-2shot" / "query_stats_dev.json").read_text())["meta"]
    train = [str(i) for i in load_split("train", [], DATASET, demo["data"]).ids]
    dev = [str(i) for i in load_split("dev", [], DATASET, demo["data"]).ids]
    assert zero["shots"]["k"] == 0 and zero["shots"]["ids"] == []
    assert two["shots"]["k"] == 2 and two["shots"]["seed"] == 3 and sorted(two["shots"]["ids"]) == sorted(train)
    assert not set(two["shots"]["ids"]) & set(dev)
    assert two["cache_folder"] != zero["cache_folder"] and two["answered_now"] == 2
    md = (demo["runs"] / "query-qwen2vl-2shot" / "query_stats_dev.md").read_text()
    assert "few-shot: 2 train examples" in md
    assert _query(demo, "--shots", "2", "--shot-seed", "3") == 0  # rerun: every answer from the cache
    again = json.loads((demo["runs"] / "query-qwen2vl-2shot" / "query_stats_dev.json").read_text())["meta"]
    assert again["answers_cached"] == 2 and again["answered_now"] == 0

    # Side by side: K = 0 and K = 2 rows, every emotion with each run's r and degeneracy.
    out = demo["runs"] / "compare.md"
    assert compare_main([str(demo["runs"] / "query-qwen2vl"), str(demo["runs"] / "query-qwen2vl-2shot"),
                         "--out", str(out)]) == 0
    text = out.read_text()
    assert "| query-qwen2vl | qwen2vl | 0 |" in text and "| query-qwen2vl-2shot | qwen2vl | 2 |" in text
    assert all(f"| {e} | " in text for e in HUME_EMOTIONS) and "none parsed" in text


def test_compare_names_a_missing_file(tmp_path, capsys):
    assert compare_main([str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope' / 'metrics_dev.json'}: not found" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (("--chat-model", "vllava", "--shots", "1"), "takes one video per conversation; models that can take the "
                                                 "examples: qwen2vl"),
    (("--shots", "1", "--split", "train"), "cannot score train itself"),
    (("--shots", "3"), "only 2 fully labelled"),
    (("--shots", "-1"), "must be 0 or more"),
    (("--shot-seed", "1"), "only applies with --shots"),
])
def test_bad_shots_are_usage_errors(demo, capsys, extra, message):
    assert _query(demo, *extra) == 2
    assert message in capsys.readouterr().err
