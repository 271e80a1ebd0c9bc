"""Parsing a split's answers, filling missing scores, and the degeneracy statistics, against hand-computed values."""
import math

import numpy as np
import pytest
from scipy.stats import pearsonr

from eri_jax.query.scores import answer_stats, fill_missing, most_frequent, parse_answers, train_mean_fill

EMO = ["Adoration", "Amusement", "Anxiety"]
N = float("nan")


def test_parse_answers_keeps_absent_answers_missing():
    scores = parse_answers(["Adoration: 0.2, Amusement: 0.5, Anxiety: 0.4", None, "no idea", "Anxiety: 40%"], EMO)
    assert scores.dtype == np.float32 and scores.shape == (4, 3)
    np.testing.assert_allclose(scores[0], [0.2, 0.5, 0.4], rtol=1e-6)
    assert np.isnan(scores[1]).all() and np.isnan(scores[2]).all()
    assert np.isnan(scores[3, :2]).all() and scores[3, 2] == np.float32(0.4)


def test_train_mean_fill_ignores_unlabelled_clips_and_refuses_an_emotion_without_labels():
    labels = np.array([[0.1, 0.5, N], [0.3, N, N], [N, 0.7, N]], np.float32)
    with pytest.raises(ValueError, match=r"no labels for \['Anxiety'\].*--fill 0.5"):
        train_mean_fill(labels, EMO)
    labels[0, 2] = 0.25
    np.testing.assert_allclose(train_mean_fill(labels, EMO), [0.2, 0.6, 0.25], rtol=1e-6)


def test_fill_missing_replaces_only_nan():
    scores = np.array([[0.1, N, 0.3], [N, N, 0.0]], np.float32)
    out = fill_missing(scores, np.array([0.5, 0.6, 0.7]))
    np.testing.assert_allclose(out, [[0.1, 0.6, 0.3], [0.5, 0.6, 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match="finite"):
        fill_missing(scores, np.array([0.5, N, 0.7]))
    with pytest.raises(ValueError, match="3 finite numbers"):
        fill_missing(scores, np.array([0.5, 0.6]))


def test_most_frequent_counts_and_breaks_ties_towards_the_smaller_value():
    assert most_frequent(np.array([0.4, 0.2, 0.4, N, 0.2, 0.1], np.float32)) == (0.2, 2, 3)
    assert most_frequent(np.array([0.4, 0.4, 0.2, N], np.float32)) == (0.4, 2, 2)
    assert most_frequent(np.array([N, N], np.float32)) == (None, 0, 0)


def test_answer_stats_on_a_planted_repeated_value():
    rng = np.random.default_rng(0)
    n = 20
    labels = rng.uniform(size=(n, 3))
    scores = rng.choice(np.arange(0, 11) / 10, size=(n, 3)).astype(np.float32)
    scores[:13, 2] = 0.4  # Anxiety 0.4 in 13 of 20 answers, as Video-LLaVA answered 0.4 in 2,444 of 4,657
    scores[13:, 2] = np.linspace(0.0, 0.3, 7)
    scores[[1, 2], 0] = N  # two answers without Adoration
    scores[5] = N  # an answer without any score
    answers = ["text"] * n
    answers[6] = None  # a clip without an answer (e.g. its video failed)
    scores[6] = N
    answers[5] = "  "
    stats = answer_stats(scores, answers, EMO, labels)
    anx = stats["per_emotion"]["Anxiety"]
    assert anx["most_frequent"] == 0.4 and anx["most_frequent_count"] == 11  # rows 5 and 6 lost their 0.4
    assert anx["share_of_answers"] == pytest.approx(11 / 20) and anx["share_of_parsed"] == pytest.approx(11 / 18)
    assert anx["parsed"] == 18 and anx["missing"] == 2 and anx["distinct_values"] == 8
    ado = stats["per_emotion"]["Adoration"]
    assert ado["parsed"] == 16 and ado["missing"] == 4
    rows = ~np.isnan(scores[:, 0])
    assert ado["pearson_parsed_only"] == pytest.approx(pearsonr(scores[rows, 0], labels[rows, 0])[0], abs=1e-6)
    assert ado["pearson_parsed_only_clips"] == 16
    assert (stats["answers"], stats["no_answer"], stats["empty_answers"]) == (20, 1, 1)
    assert (stats["with_all_scores"], stats["with_some_scores"], stats["with_no_score"]) == (16, 2, 1)
    assert stats["most_frequent_full_answer"]["count"] >= 1


def test_answer_stats_without_labels_or_scores():
    stats = answer_stats(np.full((2, 3), N, np.float32), ["a", "b"], EMO, None)
    s = stats["per_emotion"]["Amusement"]
    assert s["most_frequent"] is None and s["share_of_answers"] is None and s["pearson_parsed_only"] is None
    assert stats["with_no_score"] == 2 and stats["most_frequent_full_answer"] is None
    # A constant parsed column has no defined r: None, not NaN (the stats are JSON).
    const = np.array([[0.4, 0.1, 0.2], [0.4, 0.2, 0.3], [0.4, 0.3, 0.1]], np.float32)
    stats = answer_stats(const, ["a"] * 3, EMO, np.array([[0.1, 0.2, 0.3], [0.5, 0.1, 0.2], [0.3, 0.3, 0.3]]))
    assert stats["per_emotion"]["Adoration"]["pearson_parsed_only"] is None
    assert not math.isnan(stats["per_emotion"]["Amusement"]["pearson_parsed_only"])
