"""Late fusion: convex weights between methods' predictions, fit on train predictions, applied to dev.

For M methods with predictions p_1..p_M of one emotion, the fused prediction is sum_m w_m p_m with
w_m >= 0 and sum_m w_m = 1. The weights maximise the benchmark metric itself, Pearson r between the
fused prediction and the train labels (labelled rows only), found by exhaustive search over the simplex
grid of step 1 / `steps` (for two methods: w in {0, 0.01, ..., 1}). Pearson r of a weighted sum follows
from the covariance matrix C of (p_1..p_M, y), so every grid point costs O(M^2):

    r(w) = w . C[:M, y] / sqrt(w^T C[:M, :M] w * C[y, y])

Ties (within 1e-12) go to the grid point nearest the uniform weights, so identical predictions are
averaged rather than one picked arbitrarily.

Choices (documented in the README):
* per-emotion weights (default): the metric is the unweighted mean of per-emotion r, so maximising each
  emotion's r maximises the metric; 7 scalars fit on ~16k train clips cannot overfit measurably.
  `per_emotion=False` fits one weight vector maximising the mean r over emotions instead.
* what the weights are fit on: only predictions and labels of the train split ever enter
  `fit_fusion_weights`; dev predictions enter only `apply_fusion`, and dev labels never do. Out-of-fold
  (cross-fitted) train predictions are the unbiased choice; in-sample train predictions of each run
  (a model predicting the clips it was trained on) are leakage-free for dev but favour the model that
  fits train more closely. The report says which one it used.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np

from eri_jax.evaluation.metrics import MIN_PEARSON_ROWS, defined_mean, pearson_from_moments

_TIE_TOL = 1e-12


@dataclasses.dataclass
class FusionWeights:
    """weights: float[E, M], rows on the simplex; train_r: Pearson r of the fused train predictions [E]
    (NaN where undefined: those emotions get uniform weights, with a warning)."""

    weights: np.ndarray
    train_r: np.ndarray
    per_emotion: bool
    steps: int

    def to_json(self, emotions: Sequence[str], methods: Sequence[str]) -> dict:
        return {"per_emotion": self.per_emotion, "grid_step": 1.0 / self.steps, "methods": list(methods),
                "weights": {e: dict(zip(methods, map(float, w))) for e, w in zip(emotions, self.weights)},
                "train_pearson": {e: (None if math.isnan(r) else float(r)) for e, r in zip(emotions, self.train_r)}}


def simplex_grid(m: int, steps: int) -> np.ndarray:
    """float[K, m]: every weight vector with entries in {0, 1/steps, ..., 1} summing to 1, nearest the
    uniform vector first (the tie-break order)."""
    if m < 1 or steps < 1:
        raise ValueError(f"need m >= 1 methods and steps >= 1, got m={m}, steps={steps}")
    points = np.array([c for c in itertools.product(range(steps + 1), repeat=m - 1) if sum(c) <= steps],
                      dtype=np.float64).reshape(-1, m - 1)
    grid = np.concatenate([points, steps - points.sum(axis=1, keepdims=True)], axis=1) / steps
    dist = np.square(grid - 1.0 / m).sum(axis=1)
    return grid[np.argsort(dist, kind="stable")]


def _stack(preds: Sequence, what: str) -> np.ndarray:
    arrays = [np.asarray(p, dtype=np.float64) for p in preds]
    if len(arrays) < 2:
        raise ValueError(f"late fusion needs at least two methods' {what}, got {len(arrays)}")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 2:
        raise ValueError(f"{what} must all be [N, E] arrays of one shape, got {[a.shape for a in arrays]}")
    out = np.stack(arrays)  # [M, N, E]
    if not np.isfinite(out).all():
        m, row, col = np.argwhere(~np.isfinite(out))[0]
        raise ValueError(f"{what} of method {m} are not finite at row {row}, emotion column {col}")
    return out


def _grid_pearson(preds: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """r of each grid point's fused prediction for one emotion; NaN where undefined. preds [M, n], y [n].

    The moment sums of each fused prediction come from the covariance matrix; r and the project's one
    "undefined" rule (fewer than 2 rows, labels or fused prediction constant) from
    `metrics.pearson_from_moments`.
    """
    n = y.size
    if n < MIN_PEARSON_ROWS:
        return np.full(len(grid), np.nan)
    z = np.concatenate([preds, y[None]], axis=0)
    # One power of two for all methods (their relative scale is what the weights mean), one for y:
    # exact, r unchanged, and the squares cannot overflow.
    z[:-1] = np.ldexp(z[:-1], -np.frexp(np.max(np.abs(z[:-1])))[1])
    z[-1] = np.ldexp(z[-1], -np.frexp(np.max(np.abs(z[-1])))[1])
    means = z.mean(axis=1)
    z = z - means[:, None]
    cov = z @ z.T
    m = preds.shape[0]
    sxx = np.einsum("km,mn,kn->k", grid, cov[:m, :m], grid)
    var = sxx / n
    # The fused variance w^T C w / n carries rounding noise proportional to (sum_m w_m sd_m)^2, its
    # largest possible value, not to the fused values (methods p and -p fuse to exact zeros with a
    # variance of ~1e-17), so that scale joins the fused mean square. At a single-method point it is
    # that method's variance, below its mean square: the test is exactly `metrics.pearson_column`'s.
    mean_sq = np.maximum(var + (grid @ means[:m]) ** 2, (grid @ np.sqrt(np.diag(cov[:m, :m]) / n)) ** 2)
    return pearson_from_moments(n, sxx, cov[m, m], grid @ cov[:m, m], mean_sq, cov[m, m] / n + means[m] ** 2)


def _pick(scores: np.ndarray) -> int | None:
    """Index of the best score, ties (within _TIE_TOL) to the earliest; None when every score is NaN."""
    if np.isnan(scores).all():
        return None
    best = np.nanmax(scores)
    return int(np.flatnonzero(scores >= best - _TIE_TOL)[0])


def fit_fusion_weights(preds_train: Sequence, labels_train, *, per_emotion: bool = True, steps: int = 100,
                       emotions: Sequence[str] | None = None) -> FusionWeights:
    """Convex fusion weights maximising train Pearson r (module docstring).

    preds_train: M arrays [N, E], each method's predictions of the same N train clips (out-of-fold or
    in-sample); labels_train: [N, E], NaN where unlabelled. Only these are read: the weights cannot
    depend on any dev data. Returns `FusionWeights` (weights [E, M]).
    """
    p = _stack(preds_train, "train predictions")
    labels = np.asarray(labels_train, dtype=np.float64)
    if labels.shape != p.shape[1:]:
        raise ValueError(f"train labels have shape {labels.shape}, predictions {p.shape[1:]}")
    m, _, e = p.shape
    names = list(emotions) if emotions is not None else [f"emotion {k}" for k in range(e)]
    grid = simplex_grid(m, steps)
    r = np.stack([_grid_pearson(p[:, ~np.isnan(labels[:, k]), k], labels[~np.isnan(labels[:, k]), k], grid)
                  for k in range(e)], axis=1)  # [K, E]
    uniform = np.full(m, 1.0 / m)
    weights = np.tile(uniform, (e, 1))
    train_r = np.full(e, np.nan)
    if per_emotion:
        for k in range(e):
            best = _pick(r[:, k])
            if best is not None:
                weights[k], train_r[k] = grid[best], r[best, k]
    else:
        best = _pick(defined_mean(r, axis=1))
        if best is not None:
            weights[:] = grid[best]
            train_r = r[best]
    undefined = [names[k] for k in range(e) if math.isnan(train_r[k])]
    if undefined:
        warnings.warn(f"late fusion: Pearson r on train is undefined for {', '.join(undefined)} (constant "
                      "labels or predictions); those emotions get uniform weights", RuntimeWarning, stacklevel=2)
    return FusionWeights(weights=weights, train_r=train_r, per_emotion=per_emotion, steps=steps)


def apply_fusion(weights: FusionWeights | np.ndarray, preds: Sequence) -> np.ndarray:
    """Fused predictions [N, E] = sum_m weights[e, m] * preds[m][:, e] (e.g. on dev)."""
    w = weights.weights if isinstance(weights, FusionWeights) else np.asarray(weights, dtype=np.float64)
    p = _stack(preds, "predictions")
    if w.shape != (p.shape[2], p.shape[0]):
        raise ValueError(f"weights have shape {w.shape}, expected (emotions, methods) = {(p.shape[2], p.shape[0])}")
    return np.einsum("mne,em->ne", p, w)
