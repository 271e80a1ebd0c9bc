"""Uncertainty for the benchmark metric: clip bootstrap, paired bootstrap test, spread over seeds (in numpy).

The statistic is the benchmark metric of `evaluation/metrics.py`: Pearson r per emotion over the labelled clips
(rows with a NaN label left out per emotion), unweighted mean over the emotions where r is defined.
Predictions may be one run, [N, E], or a stack of runs of one method (e.g. seeds), [S, N, E]; the
statistic of a stack is the mean over its runs of each run's statistic, so a seed-averaged score gets a
confidence interval for clip sampling while `seed_spread` reports the spread over seeds.

Bootstrap (`bootstrap_pearson`): draw `n_boot` resamples of the N clips with replacement (all emotions
and all runs of a stack share each resample: clips are the sampling unit), compute the statistic on each,
and take the percentile interval: lo, hi = the (1 - ci)/2 and (1 + ci)/2 quantiles of the resampled
values (numpy's linear interpolation). A resample is one row of multiplicity counts w[b, i] (how often
clip i was drawn), so every r is a weighted Pearson computed with matrix products and no [B, N, E]
gather; the sums go to the project's one Pearson core, `metrics.pearson_from_moments`:

    n = sum_i w_i,  Sxy = sum_i w_i (x_i - sx/n)(y_i - sy/n),  r = Sxy / sqrt(Sxx * Syy)

An emotion whose r is undefined in a resample (by the rule of `metrics`: fewer than 2 labelled clips, or
predictions or labels constant among the drawn clips, `metrics.is_constant`) is left out of that
resample's mean (`metrics.defined_mean`, as everywhere); resamples where the whole statistic is undefined are
ignored by the quantiles and counted.
Percentile intervals of a correlation run slightly narrow for small samples: in the coverage test
(n = 200 clips, 300 simulated datasets) the nominal 95 % interval covers the true mean r about 93 % of
the time.

Paired test (`paired_bootstrap`): both methods are scored on the same resamples, d_b = stat_a - stat_b.
Two-sided p-value for H0 "mean Pearson of a equals that of b", by inverting the percentile interval
(the smallest 1 - ci at which the interval of d excludes 0), with the +1 correction that keeps a
Monte-Carlo p-value above zero (Davison & Hinkley 1997, eq. 4.11):

    p = min(1, 2 * min((#{d_b <= 0} + 1) / (B + 1), (#{d_b >= 0} + 1) / (B + 1)))

Identical predictions give d_b = 0 for every b, hence p = 1; a method better on every resample gets
p = 2 / (B + 1), the smallest value B resamples can show.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from eri_jax.evaluation.metrics import defined_mean, pearson_column, pearson_from_moments

_CHUNK = 256  # resamples per matrix product: bounds memory at _CHUNK x N counts


@dataclasses.dataclass
class PearsonBootstrap:
    """Point estimates and percentile intervals of the mean and per-emotion Pearson r.

    mean, mean_lo, mean_hi: the benchmark statistic and its interval. per_emotion*: float[E].
    NaN where undefined. n_clips: clips in the sample; n_runs: runs averaged (1 for [N, E] input);
    n_undefined_boot: resamples where the mean was undefined (left out of the quantiles).
    """

    mean: float
    mean_lo: float
    mean_hi: float
    per_emotion: np.ndarray
    per_emotion_lo: np.ndarray
    per_emotion_hi: np.ndarray
    n_boot: int
    ci: float
    n_clips: int
    n_runs: int
    n_undefined_boot: int

    def to_json(self) -> dict:
        def num(v):
            return None if v is None or not math.isfinite(float(v)) else float(v)
        return {"mean": num(self.mean), "lo": num(self.mean_lo), "hi": num(self.mean_hi),
                "per_emotion": [num(v) for v in self.per_emotion],
                "per_emotion_lo": [num(v) for v in self.per_emotion_lo],
                "per_emotion_hi": [num(v) for v in self.per_emotion_hi],
                "n_boot": self.n_boot, "ci": self.ci, "n_clips": self.n_clips, "n_runs": self.n_runs,
                "n_undefined_boot": self.n_undefined_boot}


def _as_stack(pred, labels) -> tuple[np.ndarray, np.ndarray]:
    """pred → float64 [S, N, E]; labels → float64 [N, E]; ValueError on shapes or non-finite values."""
    pred = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if pred.ndim == 2:
        pred = pred[None]
    if pred.ndim != 3 or labels.ndim != 2 or pred.shape[1:] != labels.shape:
        raise ValueError(f"predictions must be [N, E] or [S, N, E] and labels [N, E] with the same N and E, "
                         f"got {pred.shape} and {labels.shape}")
    if not np.isfinite(pred).all():
        s, row, col = np.argwhere(~np.isfinite(pred))[0]
        raise ValueError(f"predictions contain non-finite values (first: run {s}, row {row}, emotion column "
                         f"{col}: {pred[s, row, col]})")
    if np.isinf(labels).any():
        row, col = np.argwhere(np.isinf(labels))[0]
        raise ValueError(f"labels contain an infinite value at row {row}, emotion column {col}")
    return pred, labels


def _check_ci(ci: float, n_boot: int) -> None:
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")


class _Moments:
    """Per-(run, emotion) columns prepared once, so each batch of resamples costs six matrix products."""

    def __init__(self, pred: np.ndarray, labels: np.ndarray):
        s, n, e = pred.shape
        mask = np.broadcast_to(~np.isnan(labels), (s, n, e))
        y = np.broadcast_to(np.nan_to_num(labels), (s, n, e))
        # Each column divided by a power of two near its largest value: exact, r unchanged, no overflow.
        pred = np.ldexp(pred, -np.frexp(np.abs(np.where(mask, pred, 0)).max(axis=1, keepdims=True))[1])
        y = np.ldexp(y, -np.frexp(np.abs(np.where(mask, y, 0)).max(axis=1, keepdims=True))[1])
        count = mask.sum(axis=1, keepdims=True)
        # Centre on the full-sample means so that the raw moments below do not cancel.
        mx = np.where(mask, pred, 0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        my = np.where(mask, y, 0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        x = np.where(mask, pred - mx, 0.0)
        y = np.where(mask, y - my, 0.0)

        def columns(a):  # [S, N, E] → [N, S*E]
            return np.ascontiguousarray(a.transpose(1, 0, 2).reshape(n, s * e))

        self.shape = (s, e)
        self.cols = [columns(a) for a in (mask.astype(np.float64), x, y, x * x, y * y, x * y)]
        self.mean_x = np.broadcast_to(mx, (s, 1, e)).reshape(s * e)
        self.mean_y = np.broadcast_to(my, (s, 1, e)).reshape(s * e)

    def pearson(self, w: np.ndarray) -> np.ndarray:
        """w: [B, N] clip counts → r float64 [B, S, E], NaN where undefined (`metrics.pearson_from_moments`)."""
        n, sx, sy, sxx, syy, sxy = (w @ c for c in self.cols)
        safe_n = np.maximum(n, 1.0)
        # Sums about the resample's own means (the columns are centred on the full-sample means).
        r = pearson_from_moments(n, sxx - sx * sx / safe_n, syy - sy * sy / safe_n, sxy - sx * sy / safe_n,
                                 self._mean_sq(sx, sxx, safe_n, self.mean_x),
                                 self._mean_sq(sy, syy, safe_n, self.mean_y))
        return r.reshape(w.shape[0], *self.shape)

    @staticmethod
    def _mean_sq(s1: np.ndarray, s2: np.ndarray, n: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """Mean square of the drawn values for `is_constant`, from sums s1, s2 of the centred values.

        The raw mean square is s2/n + 2*mean*s1/n + mean^2, but the variance (s2 - s1^2/n)/n carries
        rounding noise of the size of the centred mean square s2/n (e.g. drawn values all 0 while the
        full-sample mean is 0.3), so the larger of the two is used. On the full sample the larger is the
        raw one, which is exactly metrics' rule; they differ only for a resample whose drawn values are
        near zero and spread by less than 1e-6 of their distance from the full-sample mean.
        """
        centred = s2 / n
        return np.maximum(centred + 2.0 * mean * s1 / n + mean * mean, centred)


def pearson_runs(pred, labels) -> np.ndarray:
    """Pearson r per run and emotion, float64 [S, E] (pred [N, E] gives S = 1), on the full sample.

    Same values and the same undefined cases (NaN, no warning) as `metrics.pearson_per_emotion`: both
    use `metrics.pearson_column`.
    """
    pred, labels = _as_stack(pred, labels)
    s, _, e = pred.shape
    out = np.full((s, e), np.nan)
    for k in range(e):
        keep = ~np.isnan(labels[:, k])
        for j in range(s):
            out[j, k] = pearson_column(pred[j, keep, k], labels[keep, k])[0]
    return out


def _statistics(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r [..., S, E] → (mean statistic [...], per-emotion statistic [..., E]) averaged over the S runs."""
    per_run_mean = defined_mean(r, axis=-1)           # [..., S]
    mean = defined_mean(per_run_mean, axis=-1)         # [...]
    per_emotion = defined_mean(np.swapaxes(r, -1, -2), axis=-1)  # [..., E]
    return mean, per_emotion


def resample_counts(n: int, n_boot: int, seed: int | np.random.Generator) -> np.ndarray:
    """float64 [n_boot, n]: how often each of n clips is drawn in each resample (n draws with replacement).

    Equivalent to drawing `rng.integers(0, n, (n_boot, n))` indices; seeded, so the same seed gives the
    same resamples (and `paired_bootstrap` gives both methods the same ones).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (idx + (np.arange(n_boot) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def resampled_pearson(pred, labels, counts) -> np.ndarray:
    """Pearson r [B, S, E] of each resample given as clip counts [B, N] (e.g. from `resample_counts`).

    Equals `pearson_runs` of the clips drawn (clip i repeated counts[b, i] times), NaN where undefined.
    """
    pred, labels = _as_stack(pred, labels)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != labels.shape[0]:
        raise ValueError(f"counts must be [B, N] with N = {labels.shape[0]}, got {counts.shape}")
    return _Moments(pred, labels).pearson(counts)


def _bootstrap_r(moments: list[_Moments], n: int, n_boot: int, seed: int) -> list[np.ndarray]:
    """Resampled r [B, S, E] for each prepared method, all on the same resamples."""
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = [[] for _ in moments]
    for start in range(0, n_boot, _CHUNK):
        w = resample_counts(n, min(_CHUNK, n_boot - start), rng)
        for k, m in enumerate(moments):
            out[k].append(m.pearson(w))
    return [np.concatenate(parts) for parts in out]


def _interval(samples: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN resamples; NaN where every resample is NaN."""
    q = [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0]
    defined = ~np.isnan(samples)
    if defined.all():
        lo, hi = np.quantile(samples, q, axis=0)
        return lo, hi
    lo = np.full(samples.shape[1:], np.nan)
    hi = np.full(samples.shape[1:], np.nan)
    cols = defined.any(axis=0)
    if cols.any():
        lo[cols], hi[cols] = np.nanquantile(samples[:, cols], q, axis=0)
    return lo, hi


def bootstrap_pearson(pred, labels, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> PearsonBootstrap:
    """Mean and per-emotion Pearson r with percentile bootstrap intervals over clips (module docstring).

    pred: [N, E] or a stack of runs [S, N, E] (statistic averaged over runs); labels: [N, E], NaN where
    unlabelled. Deterministic given `seed`.
    """
    _check_ci(ci, n_boot)
    pred, labels = _as_stack(pred, labels)
    r_full = pearson_runs(pred, labels)
    mean, per_emotion = _statistics(r_full)
    (r_boot,) = _bootstrap_r([_Moments(pred, labels)], labels.shape[0], n_boot, seed)
    boot_mean, boot_per_emotion = _statistics(r_boot)
    lo, hi = _interval(boot_mean[:, None], ci)
    e_lo, e_hi = _interval(boot_per_emotion, ci)
    return PearsonBootstrap(
        mean=float(mean), mean_lo=float(lo[0]), mean_hi=float(hi[0]), per_emotion=per_emotion,
        per_emotion_lo=e_lo, per_emotion_hi=e_hi, n_boot=int(n_boot), ci=float(ci), n_clips=labels.shape[0],
        n_runs=pred.shape[0], n_undefined_boot=int(np.isnan(boot_mean).sum()))


def bootstrap_mean_pearson(pred, labels, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
                           ) -> tuple[float, float, float]:
    """(estimate, lo, hi): the mean Pearson r over emotions and its percentile bootstrap interval."""
    b = bootstrap_pearson(pred, labels, n_boot=n_boot, seed=seed, ci=ci)
    return b.mean, b.mean_lo, b.mean_hi


def bootstrap_per_emotion(pred, labels, n_boot: int = 1000, seed: int = 0, ci: float = 0.95
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(estimate[E], lo[E], hi[E]): Pearson r per emotion and its percentile bootstrap interval."""
    b = bootstrap_pearson(pred, labels, n_boot=n_boot, seed=seed, ci=ci)
    return b.per_emotion, b.per_emotion_lo, b.per_emotion_hi


def paired_bootstrap(pred_a, pred_b, labels, *, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> dict:
    """Paired bootstrap of the difference in mean Pearson r, a minus b, on the same resampled clips.

    pred_a, pred_b: [N, E] or stacks [S_a, N, E], [S_b, N, E] over the same N clips in the same order.
    Returns dict(diff, lo, hi, p_value, estimate_a, estimate_b, n_boot, n_clips, ci): diff = stat_a -
    stat_b on the full sample, [lo, hi] its percentile interval, p_value as in the module docstring
    (NaN when no resample has both statistics defined).
    """
    _check_ci(ci, n_boot)
    pred_a, labels_a = _as_stack(pred_a, labels)
    pred_b, _ = _as_stack(pred_b, labels_a)
    est_a = _statistics(pearson_runs(pred_a, labels_a))[0]
    est_b = _statistics(pearson_runs(pred_b, labels_a))[0]
    r_a, r_b = _bootstrap_r([_Moments(pred_a, labels_a), _Moments(pred_b, labels_a)], labels_a.shape[0],
                            n_boot, seed)
    d = _statistics(r_a)[0] - _statistics(r_b)[0]
    d = d[~np.isnan(d)]
    b = d.size
    if b:
        lo, hi = np.quantile(d, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
        p = min(1.0, 2.0 * min((np.sum(d <= 0) + 1) / (b + 1), (np.sum(d >= 0) + 1) / (b + 1)))
    else:
        lo = hi = p = math.nan
    return {"diff": float(est_a - est_b), "lo": float(lo), "hi": float(hi), "p_value": float(p),
            "estimate_a": float(est_a), "estimate_b": float(est_b), "n_boot": int(n_boot),
            "n_boot_defined": int(b), "n_clips": int(labels_a.shape[0]), "ci": float(ci)}


def seed_spread(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample std with ddof=1, n) of the defined (non-NaN) values; std is NaN when n < 2."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    n = int(v.size)
    mean = float(v.mean()) if n else math.nan
    std = float(v.std(ddof=1)) if n >= 2 else math.nan
    return mean, std, n
