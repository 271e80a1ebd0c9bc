"""One rule for "Pearson r is undefined": numpy metric, jax metric, bootstrap and late fusion agree.

All of them form moment sums and hand them to one core, `metrics.pearson_from_moments` (and average with
`metrics.defined_mean`); the core is tested on its own in numpy and jax.numpy. Each implementation is
then asked for the r of one (predictions, labels) column pair; on the edge cases all give NaN,
elsewhere all match scipy.stats.pearsonr.
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

from eri_jax.evaluation import stats
from eri_jax.evaluation.metrics import (
    CONSTANT_RTOL,
    UndefinedPearsonWarning,
    defined_mean,
    is_constant,
    pearson_from_moments,
    pearson_jax,
    pearson_per_emotion,
)
from eri_jax.report.fusion import _grid_pearson, fit_fusion_weights

N = 40


def r_numpy(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedPearsonWarning)
        return float(pearson_per_emotion(x[:, None], y[:, None])[0])


def r_jax(x, y):
    return float(jax.jit(pearson_jax)(x[:, None].astype(np.float32), y[:, None].astype(np.float32))[0])


def r_stats(x, y):
    return float(stats.pearson_runs(x[:, None], y[:, None])[0, 0])


def r_bootstrap_path(x, y):
    """The resampling code path (moments and matrix products), on the full sample (every count 1)."""
    return float(stats.resampled_pearson(x[:, None], y[:, None], np.ones((1, x.size)))[0, 0, 0])


def r_fusion(x, y):
    """Fusing a method with itself: the fused prediction is x, the fitted train r is r(x, y)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(fit_fusion_weights([x[:, None], x[:, None].copy()], y[:, None], steps=4).train_r[0])


ALL = {"numpy": r_numpy, "jax": r_jax, "stats": r_stats, "bootstrap": r_bootstrap_path, "fusion": r_fusion}


def _base(seed=0):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, N)
    return 0.5 * y + rng.normal(0, 0.2, N), y, rng


def _case(name):
    x, y, rng = _base()
    if name == "constant predictions":
        x = np.full(N, 0.1)
    elif name == "constant labels":
        y = np.full(N, 0.4)
    elif name == "all-zero predictions":
        x = np.zeros(N)
    elif name == "predictions constant up to rounding":
        x = 0.1 + 1e-9 * rng.standard_normal(N)
    elif name == "labels constant up to rounding":
        y = 0.4 + 1e-9 * rng.standard_normal(N)
    elif name == "one labelled row":
        y = np.where(np.arange(N) == 3, y, np.nan)
    elif name == "all labels NaN":
        y = np.full(N, np.nan)
    elif name == "constant predictions over the labelled rows":
        y[::2] = np.nan
        x[1::2] = 0.3
    return x, y


EDGE_CASES = ["constant predictions", "constant labels", "all-zero predictions",
              "predictions constant up to rounding", "labels constant up to rounding", "one labelled row",
              "all labels NaN",
              "constant predictions over the labelled rows"]


@pytest.mark.parametrize("case", EDGE_CASES)
def test_every_implementation_calls_the_edge_case_undefined(case):
    x, y = _case(case)
    got = {name: f(x, y) for name, f in ALL.items()}
    assert all(np.isnan(v) for v in got.values()), got


def test_numpy_warning_names_constant_up_to_rounding():
    x, y = _case("predictions constant up to rounding")
    with pytest.warns(UndefinedPearsonWarning, match="Joy.*constant predictions up to rounding"):
        pearson_per_emotion(x[:, None], y[:, None], ["Joy"])


@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e30])
@pytest.mark.parametrize("n", [2, 3, N])
def test_defined_r_matches_scipy_everywhere(n, scale):
    # Tiny and huge values too: the rule and the arithmetic are scale-free (1e30 squared overflows float32).
    x, y, _ = _base(seed=n)
    x, y = x[:n] * scale, y[:n]
    ref = scipy_stats.pearsonr(x, y).statistic
    for name, f in ALL.items():
        assert f(x, y) == pytest.approx(ref, abs=2e-6 if name == "jax" else 1e-12), name


def test_spread_just_above_the_tolerance_is_defined():
    # A standard deviation of about 2e-6 of the magnitude, just above the 1e-6 the rule allows: defined.
    x, y, rng = _base(seed=3)
    x = 1.0 + 1e-5 * x
    ref = scipy_stats.pearsonr(x, y).statistic
    for name, f in ALL.items():
        if name != "jax":  # float32 holds such a spread in ~20 ulps: too coarse for a 1e-9 comparison
            assert f(x, y) == pytest.approx(ref, abs=1e-9), name


def test_is_constant_rule():
    assert CONSTANT_RTOL == 1e-12
    assert is_constant(0.0, 0.0) and is_constant(1e-14, 0.01) and not is_constant(1e-13, 0.01)
    got = is_constant(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    assert got.tolist() == [True, False]


def test_bootstrap_resample_drawing_equal_labels_is_undefined():
    # Labels 0 on half the clips, mean 0.5: a resample drawing only zero-labelled clips (with repeats)
    # must come out constant, whatever rounding the moment sums carry.
    x, _, _ = _base(seed=4)
    y = np.where(np.arange(N) % 2 == 0, 0.0, 1.0)
    counts = np.zeros((2, N))
    counts[0, [0, 2, 4, 6]] = [3, 1, 2, 4]  # only label 0 drawn
    counts[1, [0, 1, 2, 3]] = [3, 1, 2, 4]  # both labels drawn
    r = stats.resampled_pearson(x[:, None], y[:, None], counts)[:, 0, 0]
    idx = np.repeat(np.arange(N), counts[1].astype(int))
    assert np.isnan(r[0])
    assert r[1] == pytest.approx(scipy_stats.pearsonr(x[idx], y[idx]).statistic, abs=1e-12)


def test_fused_prediction_that_cancels_to_zero_is_undefined():
    x, y, _ = _base(seed=5)
    grid = np.array([[0.5, 0.5], [1.0, 0.0]])
    r = _grid_pearson(np.stack([x, -x]), y, grid)  # 0.5 x + 0.5 (-x) = 0 everywhere
    assert np.isnan(r[0]) and r[1] == pytest.approx(scipy_stats.pearsonr(x, y).statistic, abs=1e-12)


def _moments(x, y):
    """(n, sxx, syy, sxy, msx, msy) of one column pair, written out plainly."""
    dx, dy = x - x.mean(), y - y.mean()
    return x.size, dx @ dx, dy @ dy, dx @ dy, np.mean(x * x), np.mean(y * y)


def test_core_gives_the_same_r_in_numpy_and_jax():
    # The edge cases whose rows are all labelled (the core sees the rows a caller kept).
    cases = {name: _case(name) for name in EDGE_CASES[:5]}
    cases["defined"] = _base()[:2]
    cases["one row"] = (np.array([0.3]), np.array([0.7]))
    cols = np.array([_moments(x, y) for x, y in cases.values()]).T  # [6, cases]
    got_np = pearson_from_moments(*cols)
    got_jax = np.asarray(jax.jit(lambda *m: pearson_from_moments(*m, xp=jnp))(
        cols[0].astype(np.int32), *cols[1:].astype(np.float32)))
    expect_nan = [name != "defined" for name in cases]
    assert np.isnan(got_np).tolist() == expect_nan and np.isnan(got_jax).tolist() == expect_nan
    ref = scipy_stats.pearsonr(*cases["defined"]).statistic
    assert got_np[-2] == pytest.approx(ref, abs=1e-12) and got_jax[-2] == pytest.approx(ref, abs=2e-6)


def test_defined_mean_skips_nan_along_an_axis_in_numpy_and_jax():
    r = np.array([[0.2, np.nan, 0.4], [np.nan, np.nan, np.nan], [0.1, -0.3, 0.5]])
    for axis in (0, 1, -1):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an all-NaN slice is NaN, without a mean-of-empty warning
            got = defined_mean(r, axis=axis)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanmean(r, axis=axis)
        np.testing.assert_allclose(got, ref, rtol=1e-15)
        np.testing.assert_allclose(np.asarray(defined_mean(jnp.asarray(r), axis=axis, xp=jnp)), ref, rtol=1e-6)
