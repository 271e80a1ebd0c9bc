"""The benchmark metric: Pearson r per emotion over all clips of a split, unweighted mean over emotions.

This is the MuSe-2022 baseline's formula (its `eval.py` calls `scipy.stats.pearsonr` per emotion
column and takes `np.mean`), with two deliberate differences, both reported rather than hidden:

* rows whose label is NaN (unlabelled clips) are left out, per emotion;
* an emotion whose r is undefined (constant predictions or labels, fewer than two labelled clips)
  gives NaN and an `UndefinedPearsonWarning` naming it, and the mean is taken over the emotions
  where r is defined (MuSe's `np.mean` would turn the whole mean into NaN). `mean_over_defined`
  returns how many emotions were left out, and evaluation files record that count.

For a single emotion with predictions x and labels y over the n labelled clips::

    r = sum((x - mean(x)) * (y - mean(y))) / sqrt(sum((x - mean(x))**2) * sum((y - mean(y))**2))

`binned_confusion` gives the 10 x 10 binned confusion matrix of the paper's Figures 5-8.
`pearson_jax` / `mean_pearson_jax` compute the same r inside `jax.jit` (e.g. a vmapped sweep's
per-epoch dev score), with a mask for padded rows.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np


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


def pearson_per_emotion(pred, labels, emotions: Sequence[str] | None = None) -> np.ndarray:
    """Pearson r of each emotion column over the clips whose label is not NaN.

    pred, labels: [N, E]. emotions: E names, used in warnings. Returns float64[E]; an undefined r
    (constant predictions or labels, fewer than 2 labelled clips) is NaN, with an
    `UndefinedPearsonWarning` naming the emotion.
    """
    pred, labels = _check_pair(pred, labels)
    names = _names(emotions, pred.shape[1])
    out = np.full(pred.shape[1], np.nan, dtype=np.float64)
    for e, name in enumerate(names):
        keep = ~np.isnan(labels[:, e])
        x, y = pred[keep, e], labels[keep, e]
        reason = None
        if x.size < 2:
            reason = f"only {x.size} labelled clip(s)"
        elif np.ptp(x) == 0:
            reason = f"constant predictions ({x[0]:.6g})"
        elif np.ptp(y) == 0:
            reason = f"constant labels ({y[0]:.6g})"
        else:
            xm, ym = x - x.mean(), y - y.mean()
            nx, ny = np.linalg.norm(xm), np.linalg.norm(ym)
            if nx == 0 or ny == 0:  # spread below float64 resolution
                reason = "variance underflows to zero"
            else:
                # Normalise before the dot product, as scipy does, so huge values cannot overflow.
                out[e] = np.clip(np.dot(xm / nx, ym / ny), -1.0, 1.0)
        if reason is not None:
            warnings.warn(
                f"Pearson r for {name!r} is undefined: {reason}; it is NaN",
                UndefinedPearsonWarning,
                stacklevel=2,
            )
    return out


def mean_over_defined(per_emotion) -> tuple[float, int]:
    """(mean of the defined r values, number of NaN ones). The mean is NaN when none is defined."""
    r = np.asarray(per_emotion, dtype=np.float64)
    defined = ~np.isnan(r)
    mean = float(r[defined].mean()) if defined.any() else float("nan")
    return mean, int((~defined).sum())


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
    out per emotion. Constant predictions (max == min over the kept rows, which is robust to the
    rounding of a float32 mean), constant labels, or fewer than 2 kept rows give NaN. Never warns:
    callers inspect the NaNs.
    """
    pred = jnp.asarray(pred)
    labels = jnp.asarray(labels)
    valid = ~jnp.isnan(labels)
    if mask is not None:
        valid = valid & jnp.asarray(mask, dtype=bool)[:, None]
    n = valid.sum(axis=0)
    denom = jnp.maximum(n, 1).astype(pred.dtype)
    mx = jnp.where(valid, pred, 0).sum(axis=0) / denom
    my = jnp.where(valid, labels, 0).sum(axis=0) / denom
    xm = jnp.where(valid, pred - mx, 0)
    ym = jnp.where(valid, labels - my, 0)
    sxx, syy, sxy = (xm * xm).sum(axis=0), (ym * ym).sum(axis=0), (xm * ym).sum(axis=0)

    def constant(v):
        return jnp.where(valid, v, -jnp.inf).max(axis=0) == jnp.where(valid, v, jnp.inf).min(axis=0)

    defined = (n >= 2) & ~constant(pred) & ~constant(labels) & (sxx > 0) & (syy > 0)
    scale = jnp.sqrt(jnp.where(defined, sxx, 1)) * jnp.sqrt(jnp.where(defined, syy, 1))
    return jnp.where(defined, jnp.clip(sxy / scale, -1, 1), jnp.nan)


def mean_pearson_jax(pred, labels, mask=None):
    """Mean of `pearson_jax` over the emotions where r is defined (NaN when none is), inside jit."""
    r = pearson_jax(pred, labels, mask)
    defined = ~jnp.isnan(r)
    count = defined.sum()
    total = jnp.where(defined, r, 0).sum()
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)
