"""eri_jax.evaluation.stats: clip bootstrap of the mean Pearson r, paired bootstrap test, seed spread."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr

from eri_jax.evaluation import stats
from eri_jax.evaluation.metrics import mean_over_defined, pearson_per_emotion


def _correlated(rng, n, rhos):
    """Predictions and labels [n, E] whose true Pearson correlation per emotion is `rhos`."""
    rhos = np.asarray(rhos, dtype=np.float64)
    y = rng.normal(size=(n, rhos.size))
    noise = rng.normal(size=(n, rhos.size))
    x = rhos * y + np.sqrt(1.0 - rhos ** 2) * noise
    return x, y


def test_point_estimate_is_the_benchmark_metric_with_nan_labels():
    rng = np.random.default_rng(0)
    x, y = _correlated(rng, 150, [0.2, 0.5, 0.7])
    y[:7, 1] = np.nan  # unlabelled rows of one emotion
    b = stats.bootstrap_pearson(x, y, n_boot=50, seed=0)
    np.testing.assert_allclose(b.per_emotion, pearson_per_emotion(x, y), rtol=0, atol=1e-12)
    keep = ~np.isnan(y[:, 1])
    assert b.per_emotion[1] == pytest.approx(pearsonr(x[keep, 1], y[keep, 1]).statistic, abs=1e-12)
    assert b.mean == pytest.approx(mean_over_defined(pearson_per_emotion(x, y))[0], abs=1e-12)
    assert (b.n_clips, b.n_runs, b.n_boot) == (150, 1, 50)


def test_resampled_pearson_equals_pearson_of_the_drawn_clips():
    rng = np.random.default_rng(1)
    x, y = _correlated(rng, 40, [0.3, -0.4])
    y[3, 0] = np.nan
    counts = stats.resample_counts(40, 6, seed=5)
    assert counts.shape == (6, 40) and (counts.sum(axis=1) == 40).all()
    r = stats.resampled_pearson(x, y, counts)
    assert r.shape == (6, 1, 2)
    for b in range(6):
        idx = np.repeat(np.arange(40), counts[b].astype(int))
        np.testing.assert_allclose(r[b, 0], pearson_per_emotion(x[idx], y[idx]), atol=1e-12)


def test_constant_resamples_and_emotions_are_undefined_not_zero():
    # Querying-like discrete predictions: most clips say 0.4, a few differ.
    rng = np.random.default_rng(2)
    n = 30
    y = rng.uniform(size=(n, 2))
    x = np.full((n, 2), 0.4)
    x[:2, 0] = [0.9, 0.1]
    x[:, 1] = 0.4  # constant predictions: r undefined for emotion 1 everywhere
    counts = np.ones((2, n))
    counts[1] = 0
    counts[1, 5:10] = 6  # drew only clips predicting 0.4
    r = stats.resampled_pearson(x, y, counts)
    assert np.isfinite(r[0, 0, 0]) and np.isnan(r[1, 0, 0]) and np.isnan(r[:, 0, 1]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = mean_over_defined(pearson_per_emotion(x, y))[0]
    b = stats.bootstrap_pearson(x, y, n_boot=200, seed=0)
    assert b.mean == pytest.approx(expected, abs=1e-12) and math.isnan(b.per_emotion[1])
    assert math.isnan(b.per_emotion_lo[1]) and math.isnan(b.per_emotion_hi[1])
    assert b.n_undefined_boot > 0  # resamples without 0.9 or 0.1 have no defined emotion
    assert np.isfinite([b.mean_lo, b.mean_hi]).all()


def test_ci_covers_the_true_mean_correlation_about_95_percent():
    rng = np.random.default_rng(3)
    rhos = np.array([0.2, 0.45, 0.7])
    truth = rhos.mean()
    hits, hits_e = 0, np.zeros(3)
    trials = 300
    for t in range(trials):
        x, y = _correlated(rng, 200, rhos)
        b = stats.bootstrap_pearson(x, y, n_boot=300, seed=t)
        hits += b.mean_lo <= truth <= b.mean_hi
        hits_e += (b.per_emotion_lo <= rhos) & (rhos <= b.per_emotion_hi)
    coverage = hits / trials
    assert 0.90 <= coverage <= 0.985, coverage
    assert ((hits_e / trials >= 0.89) & (hits_e / trials <= 0.99)).all(), hits_e / trials


def test_ci_shrinks_with_more_clips():
    rng = np.random.default_rng(4)
    widths = []
    for n in (100, 400, 1600):
        x, y = _correlated(rng, n, [0.4, 0.4])
        b = stats.bootstrap_pearson(x, y, n_boot=400, seed=0)
        widths.append(b.mean_hi - b.mean_lo)
    assert widths[0] > widths[1] > widths[2]
    # Width scales like 1/sqrt(n): quadrupling n about halves it.
    assert 0.35 < widths[2] / widths[1] < 0.7 and 0.35 < widths[1] / widths[0] < 0.7


def test_deterministic_by_seed():
    rng = np.random.default_rng(5)
    x, y = _correlated(rng, 120, [0.3, 0.6])
    a = stats.bootstrap_mean_pearson(x, y, n_boot=300, seed=11)
    assert a == stats.bootstrap_mean_pearson(x, y, n_boot=300, seed=11)
    assert a != stats.bootstrap_mean_pearson(x, y, n_boot=300, seed=12)
    est, lo, hi = stats.bootstrap_per_emotion(x, y, n_boot=300, seed=11)
    assert est.shape == lo.shape == hi.shape == (2,) and (lo < est).all() and (est < hi).all()
    # More resamples than one chunk (256) are deterministic too.
    assert stats.bootstrap_pearson(x, y, n_boot=600, seed=3).to_json() == \
        stats.bootstrap_pearson(x, y, n_boot=600, seed=3).to_json()


def test_seed_stack_statistic_is_the_mean_over_runs():
    rng = np.random.default_rng(6)
    x, y = _correlated(rng, 90, [0.3, 0.5, 0.6])
    stack = np.stack([x + 0.3 * rng.normal(size=x.shape) for _ in range(3)])
    b = stats.bootstrap_pearson(stack, y, n_boot=100, seed=0)
    per_seed = [mean_over_defined(pearson_per_emotion(s, y))[0] for s in stack]
    assert b.mean == pytest.approx(np.mean(per_seed), abs=1e-12) and b.n_runs == 3
    np.testing.assert_allclose(b.per_emotion, np.mean([pearson_per_emotion(s, y) for s in stack], axis=0),
                               atol=1e-12)
    np.testing.assert_allclose(stats.pearson_runs(stack, y), [pearson_per_emotion(s, y) for s in stack], atol=1e-12)


def test_paired_identical_predictions_give_zero_difference_and_p_one():
    rng = np.random.default_rng(7)
    x, y = _correlated(rng, 80, [0.3, 0.5])
    res = stats.paired_bootstrap(x, x.copy(), y, n_boot=200, seed=0)
    assert res["diff"] == 0.0 and res["lo"] == 0.0 and res["hi"] == 0.0 and res["p_value"] == 1.0


def test_paired_clearly_better_method_gets_tiny_p():
    rng = np.random.default_rng(8)
    y = rng.normal(size=(300, 3))
    good = y + 0.5 * rng.normal(size=y.shape)
    bad = y + 3.0 * rng.normal(size=y.shape)
    res = stats.paired_bootstrap(good, bad, y, n_boot=999, seed=0)
    assert res["diff"] > 0.3 and res["lo"] > 0
    assert res["p_value"] == pytest.approx(2 / 1000)  # better on every resample: the smallest p B can show
    flipped = stats.paired_bootstrap(bad, good, y, n_boot=999, seed=0)
    assert flipped["diff"] == pytest.approx(-res["diff"]) and flipped["p_value"] == res["p_value"]
    assert res["estimate_a"] == pytest.approx(mean_over_defined(pearson_per_emotion(good, y))[0])


def test_paired_similar_methods_are_not_significant_and_p_matches_definition():
    rng = np.random.default_rng(9)
    y = rng.normal(size=(200, 2))
    a = y + rng.normal(size=y.shape)
    b = y + rng.normal(size=y.shape)
    res = stats.paired_bootstrap(a, b, y, n_boot=200, seed=4)
    # Recompute the p-value from its definition on the same resamples (200 < one chunk: one draw).
    w = stats.resample_counts(200, 200, seed=4)
    d = stats.resampled_pearson(a, y, w)[:, 0].mean(axis=1) - stats.resampled_pearson(b, y, w)[:, 0].mean(axis=1)
    p = min(1.0, 2 * min((np.sum(d <= 0) + 1) / 201, (np.sum(d >= 0) + 1) / 201))
    assert res["p_value"] == pytest.approx(p)
    assert res["lo"] == pytest.approx(np.quantile(d, 0.025)) and res["hi"] == pytest.approx(np.quantile(d, 0.975))


def test_paired_p_value_is_calibrated_under_the_null():
    # a and b are equally good (same true correlation): p < 0.05 in about 5 % of datasets.
    rng = np.random.default_rng(10)
    trials, rejections = 200, 0
    for t in range(trials):
        y = rng.normal(size=(150, 2))
        a = 0.5 * y + rng.normal(size=y.shape)
        b = 0.5 * y + rng.normal(size=y.shape)
        rejections += stats.paired_bootstrap(a, b, y, n_boot=200, seed=t)["p_value"] < 0.05
    assert 0.01 <= rejections / trials <= 0.10, rejections / trials


def test_seed_spread():
    mean, std, n = stats.seed_spread([0.2, 0.3, 0.4])
    assert (mean, n) == (pytest.approx(0.3), 3) and std == pytest.approx(0.1)
    mean, std, n = stats.seed_spread([0.25, float("nan")])
    assert mean == 0.25 and math.isnan(std) and n == 1
    assert all(math.isnan(v) for v in stats.seed_spread([])[:2])


def test_bad_input_is_a_clear_error():
    y = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"\[N, E\] or \[S, N, E\]"):
        stats.bootstrap_pearson(np.zeros((4, 2)), y)
    bad = np.ones((5, 2))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2, emotion column 1"):
        stats.bootstrap_pearson(bad, y)
    with pytest.raises(ValueError, match="ci must lie"):
        stats.bootstrap_pearson(np.ones((5, 2)), y, ci=95)
    with pytest.raises(ValueError, match="n_boot"):
        stats.paired_bootstrap(np.ones((5, 2)), np.ones((5, 2)), y, n_boot=0)
