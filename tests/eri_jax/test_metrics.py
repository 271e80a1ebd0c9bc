"""The metric against scipy.stats.pearsonr and the MuSe-2022 formula; binning on hand cases; the jit version."""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from eri_jax.evaluation.metrics import (
    UndefinedPearsonWarning,
    binned_confusion,
    binned_counts,
    mean_over_defined,
    mean_pearson,
    mean_pearson_jax,
    pearson_jax,
    pearson_per_emotion,
)

EMOTIONS = ["Adoration", "Amusement", "Anxiety", "Disgust", "Empathic-Pain", "Fear", "Surprise"]


def muse_formula(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r written out with numpy: population covariance over the product of the std's."""
    cov = np.cov(x, y, bias=True)[0, 1]
    return float(cov / (np.std(x) * np.std(y)))


def correlated(rng, n, e, strength=0.5):
    labels = rng.uniform(0, 1, size=(n, e))
    pred = strength * labels + rng.normal(0, 0.3, size=(n, e))
    return pred, labels


@pytest.mark.parametrize("n,e", [(2, 1), (5, 3), (40, 7), (301, 7), (1000, 2)])
def test_matches_scipy_and_muse_formula(n, e):
    rng = np.random.default_rng(n * 10 + e)
    pred, labels = correlated(rng, n, e)
    got = pearson_per_emotion(pred, labels)
    assert got.dtype == np.float64 and got.shape == (e,)
    for k in range(e):
        np.testing.assert_allclose(got[k], stats.pearsonr(pred[:, k], labels[:, k]).statistic, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got[k], muse_formula(pred[:, k], labels[:, k]), rtol=1e-9, atol=1e-12)
    expected_mean = np.mean([stats.pearsonr(pred[:, k], labels[:, k]).statistic for k in range(e)])
    assert mean_pearson(pred, labels) == pytest.approx(expected_mean, abs=1e-12)


def test_float32_input_and_large_offset():
    rng = np.random.default_rng(0)
    pred, labels = correlated(rng, 200, 7)
    pred32 = (pred + 1000.0).astype(np.float32)  # offset: tests centring before the products
    got = pearson_per_emotion(pred32, labels.astype(np.float32))
    for k in range(7):
        ref = stats.pearsonr(pred32[:, k].astype(np.float64), labels.astype(np.float32)[:, k].astype(np.float64))
        np.testing.assert_allclose(got[k], ref.statistic, rtol=1e-10)


def test_nan_labels_are_ignored_per_emotion():
    rng = np.random.default_rng(1)
    pred, labels = correlated(rng, 120, 7)
    labels[rng.uniform(size=labels.shape) < 0.3] = np.nan
    labels[:10, 2] = np.nan  # a column with more missing rows
    got = pearson_per_emotion(pred, labels)
    for k in range(7):
        keep = ~np.isnan(labels[:, k])
        assert keep.sum() < 120
        np.testing.assert_allclose(got[k], stats.pearsonr(pred[keep, k], labels[keep, k]).statistic, rtol=1e-12)
        np.testing.assert_allclose(got[k], muse_formula(pred[keep, k], labels[keep, k]), rtol=1e-9)


def test_perfect_and_anticorrelation():
    labels = np.linspace(0, 1, 11)[:, None].repeat(2, axis=1)
    pred = np.stack([3 * labels[:, 0] + 1, -labels[:, 1]], axis=1)
    np.testing.assert_allclose(pearson_per_emotion(pred, labels), [1.0, -1.0], atol=1e-15)


def test_constant_prediction_is_nan_with_named_warning():
    rng = np.random.default_rng(2)
    pred, labels = correlated(rng, 50, 7)
    pred[:, 4] = 0.25
    with pytest.warns(UndefinedPearsonWarning, match="Empathic-Pain.*constant predictions"):
        got = pearson_per_emotion(pred, labels, EMOTIONS)
    assert np.isnan(got[4]) and np.isfinite(np.delete(got, 4)).all()
    with pytest.warns(UndefinedPearsonWarning):
        mean, n_nan = mean_over_defined(pearson_per_emotion(pred, labels, EMOTIONS))
    assert n_nan == 1
    assert mean == pytest.approx(np.mean(np.delete(got, 4)), abs=1e-15)
    with pytest.warns(UndefinedPearsonWarning):
        assert mean_pearson(pred, labels, EMOTIONS) == pytest.approx(mean, abs=1e-15)


def test_constant_labels_and_too_few_rows_are_nan():
    pred = np.array([[0.1, 0.2], [0.5, 0.3], [0.9, 0.1]])
    labels = np.array([[0.4, np.nan], [0.4, np.nan], [0.4, 0.5]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = pearson_per_emotion(pred, labels, ["Fear", "Surprise"])
    assert np.isnan(got).all()
    messages = [str(w.message) for w in caught if issubclass(w.category, UndefinedPearsonWarning)]
    assert any("'Fear'" in m and "constant labels" in m for m in messages)
    assert any("'Surprise'" in m and "only 1 labelled clip" in m for m in messages)
    mean, n_nan = mean_over_defined(got)
    assert np.isnan(mean) and n_nan == 2


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        pearson_per_emotion(np.zeros((4, 7)), np.zeros((4, 6)))
    with pytest.raises(ValueError, match="same shape"):
        pearson_per_emotion(np.zeros(4), np.zeros(4))
    pred = np.random.default_rng(3).uniform(size=(5, 2))
    pred[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite.*row 3"):
        pearson_per_emotion(pred, np.ones((5, 2)))
    with pytest.raises(ValueError, match="2 emotion names for 3"):
        pearson_per_emotion(np.ones((4, 3)), np.ones((4, 3)), ["a", "b"])


def test_binned_confusion_hand_case():
    # Labels in bins 0, 0, 0, 5, 9, 9; predictions (clipped) in bins 0, 1, 1, 5, 9, 0.
    labels = np.array([0.0, 0.05, 0.099, 0.5, 0.95, 1.0, np.nan])
    preds = np.array([-0.3, 0.1, 0.15, 0.55, 1.7, 0.02, 0.5])
    counts = binned_counts(labels, preds)
    expected = np.zeros((10, 10), dtype=int)
    expected[0, 0], expected[0, 1], expected[5, 5], expected[9, 9], expected[9, 0] = 1, 2, 1, 1, 1
    np.testing.assert_array_equal(counts, expected)
    conf = binned_confusion(labels, preds)
    assert conf.shape == (10, 10)
    np.testing.assert_allclose(conf[0], [1 / 3, 2 / 3] + [0] * 8)
    np.testing.assert_allclose(conf[9], [0.5] + [0] * 8 + [0.5])
    sums = conf.sum(axis=1)
    np.testing.assert_allclose(sums[[0, 5, 9]], 1.0)
    np.testing.assert_array_equal(sums[[1, 2, 3, 4, 6, 7, 8]], 0.0)


def test_binned_confusion_float32_edges_and_other_bin_counts():
    # A float32 0.7 is 0.69999999: it still belongs to the bin that starts at 0.7.
    labels = np.array([0.7, 0.3, 0.6], dtype=np.float32)
    counts = binned_counts(labels, labels)
    assert counts[7, 7] == 1 and counts[3, 3] == 1 and counts[6, 6] == 1
    counts4 = binned_counts(np.array([0.1, 0.3, 0.6, 1.0]), np.array([0.9, 0.3, 0.6, 0.0]), bins=4)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 3] = expected[1, 1] = expected[2, 2] = expected[3, 0] = 1
    np.testing.assert_array_equal(counts4, expected)


def test_binned_confusion_rejects_labels_outside_unit_interval():
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        binned_confusion(np.array([0.2, 1.5]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="positive int"):
        binned_confusion(np.array([0.2]), np.array([0.2]), bins=0)


def test_pearson_jax_matches_numpy_with_mask_and_nan_labels():
    rng = np.random.default_rng(4)
    pred, labels = correlated(rng, 64, 7)
    labels[rng.uniform(size=labels.shape) < 0.2] = np.nan
    mask = np.ones(64, dtype=bool)
    mask[50:] = False  # padded rows: garbage predictions and labels that must not count
    pred[50:] = 1e6
    labels[50:] = 0.0
    pred[:, 6] = np.where(mask, 0.4, pred[:, 6])  # constant over the real rows only
    got = jax.jit(pearson_jax)(pred.astype(np.float32), labels.astype(np.float32), mask)
    with pytest.warns(UndefinedPearsonWarning, match="emotion 6"):
        ref = pearson_per_emotion(pred[:50], labels[:50])
    np.testing.assert_allclose(np.asarray(got), ref, atol=2e-6)
    assert np.isnan(np.asarray(got)[6])
    mean = jax.jit(mean_pearson_jax)(pred.astype(np.float32), labels.astype(np.float32), mask)
    assert float(mean) == pytest.approx(np.nanmean(ref), abs=2e-6)


def test_pearson_jax_under_vmap_and_all_undefined():
    rng = np.random.default_rng(5)
    preds = np.stack([correlated(rng, 32, 3)[0] for _ in range(4)]).astype(np.float32)
    labels = rng.uniform(size=(32, 3)).astype(np.float32)
    got = jax.jit(jax.vmap(pearson_jax, in_axes=(0, None)))(preds, labels)
    for s in range(4):
        ref = [stats.pearsonr(preds[s, :, k].astype(np.float64), labels[:, k].astype(np.float64)).statistic
               for k in range(3)]
        np.testing.assert_allclose(np.asarray(got[s]), ref, atol=2e-6)
    # Every emotion undefined: the mean is NaN, not an error or a division warning.
    const = jnp.full((32, 3), 0.3, dtype=jnp.float32)
    assert np.isnan(float(mean_pearson_jax(const, labels)))
    assert np.isnan(np.asarray(pearson_jax(preds[0], labels, np.arange(32) < 1))).all()
