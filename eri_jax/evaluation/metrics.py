"""The benchmark metric: Pearson r per emotion over all clips of a split, unweighted mean over emotions.

This is the MuSe-2022 baseline's formula (its `eval.py` calls `scipy.stats.pearsonr` per emotion
column and takes `np.mean`), with two deliberate differences, both reported rather than hidden:

* rows whose label is NaN (unlabelled clips) are left out, per emotion;
* an emotion whose r is undefined (below) gives NaN and an `UndefinedPearsonWarning` naming it, and
  the mean is taken over the emotions where r is defined (MuSe's `np.mean` would turn the whole mean
  into NaN). `mean_over_defined` returns how many emotions were left out, and evaluation files record
  that count.

For a single emotion with predictions x and labels y over the n labelled clips::

    r = sum((x - mean(x)) * (y - mean(y))) / sqrt(sum((x - mean(x))**2) * sum((y - mean(y))**2))

r is undefined (NaN) when n < MIN_PEARSON_ROWS (2) or when x or y is constant, and "constant" allows
for rounding: var(v) <= CONSTANT_RTOL * mean(v**2) with CONSTANT_RTOL = 1e-12 (`is_constant`). An
exact test (max == min) would let a float32 column that is constant up to its last bits through and
report a meaningless r; a tolerance relative to the values' magnitude is scale-free.

One core computes every Pearson in the project: `pearson_from_moments` turns centred moment sums into
r with this rule, and `defined_mean` takes the mean over the defined values, in numpy or jax.numpy
(`xp`). Each caller only forms the sums its data layout needs: `pearson_per_emotion` per column,
`pearson_jax` with masks inside jit, `stats` from resample counts (bootstrap), `report.fusion` from a
covariance matrix per fusion-weight grid point.

`binned_confusion` gives the 10 x 10 binned confusion matrix of the paper's Figures 5-8.
`pearson_jax` / `mean_pearson_jax` compute the same r inside `jax.jit` (e.g. a vmapped sweep's
per-epoch dev score), with a mask for padded rows.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

# When Pearson r is undefined, one rule for the whole project (numpy, jax, bootstrap, late fusion):
MIN_PEARSON_ROWS = 2  # fewer labelled rows than this: undefined (scipy.stats.pearsonr needs 2 too)
# A column whose variance is at most this fraction of its mean square is constant (`is_constant`): a
# standard deviation below 1e-6 of the values' magnitude, about 10 float32 ulps. That is rounding noise
# of float32 model outputs (and far above the ~1e-16 cancellation noise of float64 moment sums), never a
# real spread of intensities; an r computed from it would be noise.
CONSTANT_RTOL = 1e-12


class UndefinedPearsonWarning(RuntimeWarning):
    """Pearson r of an emotion is undefined (constant input or too few labelled clips): it is NaN."""


def _check_pair(pred, labels) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != labels.shape:
        raise ValueError(
            f"predictions and labels must both be [N, E] arrays of the same shape, "
            f"got {pred.shape} and {labels.shape}"
        )
    bad = ~np.isfinite(pred)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"predictions contain {int(bad.sum())} non-finite values (first at row {row}, "
            f"emotion column {col}: {pred[row, col]}); a diverged model has no Pearson r"
        )
    if np.isinf(labels).any():
        row, col = np.argwhere(np.isinf(labels))[0]
        raise ValueError(f"labels contain an infinite value at row {row}, emotion column {col}")
    return pred, labels


def _names(emotions: Sequence[str] | None, num: int) -> list[str]:
    if emotions is None:
        return [f"emotion {i}" for i in range(num)]
    if len(emotions) != num:
        raise ValueError(f"got {len(emotions)} emotion names for {num} emotion columns")
    return [str(e) for e in emotions]


def is_constant(var, mean_sq):
    """True where a column counts as constant, so that its Pearson r is undefined.

    var: the column's variance (population, over the rows used); mean_sq: the mean of its squared
    values (not centred), over the same rows. The rule is ``var <= CONSTANT_RTOL * mean_sq``:
    scale-invariant, true for an all-zero column (0 <= 0), and elementwise on Python floats, numpy and
    jax arrays alike (only operators), so every Pearson in the project uses this one test. It is not
    shift-invariant: a column whose mean exceeds its spread a million times (1000 + 1e-4 k) counts as
    constant, which intensities in [0, 1] and model outputs never come near.
    """
    return var <= CONSTANT_RTOL * mean_sq


def pearson_from_moments(n, sxx, syy, sxy, msx, msy, xp=np):
    """Pearson r from centred moment sums, NaN where undefined: the project's one Pearson core.

    Over the n rows used (or the total weight of weighted rows), with dx, dy the deviations from the
    means over those rows::

        sxx = sum(dx**2),  syy = sum(dy**2),  sxy = sum(dx * dy),  r = sxy / (sqrt(sxx/n) * sqrt(syy/n) * n)

    clipped to [-1, 1]. msx, msy: the mean squares of the (uncentred) values, for `is_constant`.
    Undefined where n < MIN_PEARSON_ROWS or is_constant(sxx / n, msx) or is_constant(syy / n, msy).
    Elementwise over broadcastable arguments; xp is numpy or jax.numpy (works inside jit and vmap).
    Callers scale each column by a power of two to max|v| <= 1 first (exact, r unchanged), so no sum
    of squares overflows.
    """
    safe_n = xp.maximum(n, 1)
    var_x, var_y = sxx / safe_n, syy / safe_n
    defined = (n >= MIN_PEARSON_ROWS) & ~is_constant(var_x, msx) & ~is_constant(var_y, msy)
    # The two standard deviations apart: a product of variances could underflow in float32.
    denom = xp.sqrt(xp.where(defined, var_x, 1)) * xp.sqrt(xp.where(defined, var_y, 1)) * safe_n
    return xp.where(defined, xp.clip(sxy / denom, -1, 1), xp.nan)


def defined_mean(r, axis=-1, xp=np):
    """Mean over `axis` of the defined (non-NaN) values of r; NaN where none is. numpy or jax.numpy.

    The one "mean over the emotions where r is defined" (also over runs and resamples in `stats`).
    """
    defined = ~xp.isnan(r)
    count = defined.sum(axis=axis)
    total = xp.where(defined, r, 0).sum(axis=axis)
    return xp.where(count > 0, total / xp.maximum(count, 1), xp.nan)


def _scaled_centred(v: np.ndarray) -> tuple[np.ndarray, float]:
    """(v scaled and centred, mean square of the scaled v).

    v is first divided by a power of two near max|v|: exact, so r is unchanged, and the squares of
    huge values cannot overflow.
    """
    top = float(np.max(np.abs(v)))
    if top > 0:
        v = np.ldexp(v, -np.frexp(top)[1])
    return v - v.mean(), float(np.mean(v * v))


def pearson_column(x, y) -> tuple[float, str | None]:
    """(r, None) for one emotion's predictions x and labels y ([n] float64, no NaN), or (NaN, reason).

    `pearson_from_moments` of the column pair; the reason names the rule that made r undefined.
    Shared with `stats.pearson_runs` so both give identical values.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    if n < MIN_PEARSON_ROWS:
        return float("nan"), f"only {n} labelled clip(s)"
    xm, msx = _scaled_centred(x)
    ym, msy = _scaled_centred(y)
    sxx, syy = np.sum(xm * xm), np.sum(ym * ym)
    r = float(pearson_from_moments(n, sxx, syy, np.sum(xm * ym), msx, msy))
    if np.isnan(r):
        constant_x = is_constant(sxx / n, msx)
        return r, _constant_reason("predictions" if constant_x else "labels", x if constant_x else y)
    return r, None


def _constant_reason(what: str, v: np.ndarray) -> str:
    if np.ptp(v) == 0:
        return f"constant {what} ({v[0]:.6g})"
    return f"constant {what} up to rounding ({v.min():.6g} to {v.max():.6g})"


def pearson_per_emotion(pred, labels, emotions: Sequence[str] | None = None) -> np.ndarray:
    """Pearson r of each emotion column over the clips whose label is not NaN.

    pred, labels: [N, E]. emotions: E names, used in warnings. Returns float64[E]; an undefined r
    (fewer than 2 labelled clips, constant predictions or labels: `pearson_column`) is NaN, with an
    `UndefinedPearsonWarning` naming the emotion and the reason.
    """
    pred, labels = _check_pair(pred, labels)
    names = _names(emotions, pred.shape[1])
    out = np.full(pred.shape[1], np.nan, dtype=np.float64)
    for e, name in enumerate(names):
        keep = ~np.isnan(labels[:, e])
        out[e], reason = pearson_column(pred[keep, e], labels[keep, e])
        if reason is not None:
            warnings.warn(
                f"Pearson r for {name!r} is undefined: {reason}; it is NaN",
                UndefinedPearsonWarning,
                stacklevel=2,
            )
    return out


def mean_over_defined(per_emotion) -> tuple[float, int]:
    """(mean of the defined r values, number of NaN ones): `defined_mean`, NaN when none is defined."""
    r = np.asarray(per_emotion, dtype=np.float64)
    return float(defined_mean(r)), int(np.isnan(r).sum())


def mean_pearson(pred, labels, emotions: Sequence[str] | None = None) -> float:
    """Unweighted mean over emotions of `pearson_per_emotion`, over the emotions where r is defined.

    Undefined emotions are warned about by name (see `pearson_per_emotion`); use
    `mean_over_defined` on the per-emotion values to also get how many were left out.
    """
    return mean_over_defined(pearson_per_emotion(pred, labels, emotions))[0]


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    # Values within 1e-6 of a bin edge count as on the edge: a float32 label of 0.7 is
    # 0.69999999 and would otherwise fall into the bin below. The top edge (1.0) joins the last bin.
    scaled = np.round(values * bins, 6)
    return np.clip(np.floor(scaled).astype(np.int64), 0, bins - 1)


def binned_counts(labels, preds, bins: int = 10) -> np.ndarray:
    """int64[bins, bins]: clips per (label bin, prediction bin), bins of width 1/bins over [0, 1].

    labels, preds: [N] for one emotion. Rows with a NaN label are left out. Predictions are clipped
    to [0, 1]; labels outside [0, 1] are an error. Bins are [k/bins, (k+1)/bins), the last closed.
    """
    labels = np.asarray(labels, dtype=np.float64)
    preds = np.asarray(preds, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != preds.shape:
        raise ValueError(f"labels and preds must be [N] arrays of one shape, got {labels.shape}, {preds.shape}")
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    if not np.isfinite(preds).all():
        raise ValueError(f"predictions contain {int((~np.isfinite(preds)).sum())} non-finite values")
    keep = ~np.isnan(labels)
    labels, preds = labels[keep], preds[keep]
    outside = (labels < 0) | (labels > 1)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} labels lie outside [0, 1] (e.g. {labels[outside][0]}); "
            "the binned confusion matrix assumes intensities in [0, 1]"
        )
    rows = _bin_index(labels, bins)
    cols = _bin_index(np.clip(preds, 0.0, 1.0), bins)
    counts = np.zeros((bins, bins), dtype=np.int64)
    np.add.at(counts, (rows, cols), 1)
    return counts


def row_normalise(counts) -> np.ndarray:
    """Each row divided by its sum; a row without clips stays all zero."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def binned_confusion(labels, preds, bins: int = 10) -> np.ndarray:
    """float64[bins, bins] row-normalised confusion matrix: rows = label bins, columns = prediction bins.

    Row k is the distribution of predictions over the clips whose label lies in bin k; rows sum to
    1, or to 0 where no clip has a label in that bin. See `binned_counts` for the binning.
    """
    return row_normalise(binned_counts(labels, preds, bins))


def pearson_jax(pred, labels, mask=None):
    """Pearson r per emotion inside `jax.jit`: float[E], NaN where undefined.

    pred, labels: [N, E]; mask: bool[N], False for padded rows. Rows whose label is NaN are left
    out per emotion. Undefined by the same rule as `pearson_per_emotion` (fewer than 2 kept rows,
    constant predictions or labels by `is_constant`). Computed in at least float32. Never warns:
    callers inspect the NaNs.
    """
    pred = jnp.asarray(pred)
    labels = jnp.asarray(labels)
    dtype = jnp.promote_types(jnp.result_type(pred, labels), jnp.float32)
    pred, labels = pred.astype(dtype), labels.astype(dtype)
    valid = ~jnp.isnan(labels)
    if mask is not None:
        valid = valid & jnp.asarray(mask, dtype=bool)[:, None]
    n = valid.sum(axis=0)
    count = jnp.maximum(n, 1).astype(dtype)
    first = jnp.argmax(valid, axis=0)[None]  # a kept row per emotion

    def centred(v):
        v = jnp.where(valid, v, 0)
        top = jnp.abs(v).max(axis=0)
        v = v / jnp.where(top > 0, top, 1)  # r is scale-invariant; keeps the squares from overflowing
        # Shift by one kept value before centring: a constant column becomes exactly zero, whatever the
        # rounding of a float32 mean, so its variance is exactly zero too.
        d = jnp.where(valid, v - jnp.take_along_axis(v, first, axis=0), 0)
        return jnp.where(valid, d - d.sum(axis=0) / count, 0), (v * v).sum(axis=0) / count

    xm, msx = centred(pred)
    ym, msy = centred(labels)
    return pearson_from_moments(n, (xm * xm).sum(axis=0), (ym * ym).sum(axis=0), (xm * ym).sum(axis=0), msx, msy,
                                xp=jnp)


def mean_pearson_jax(pred, labels, mask=None):
    """Mean of `pearson_jax` over the emotions where r is defined (NaN when none is), inside jit."""
    return defined_mean(pearson_jax(pred, labels, mask), xp=jnp)
