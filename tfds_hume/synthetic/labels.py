"""Clip labels: correlated, bimodal emotion intensities in [0, 1], and their noisy written versions.

Each emotion's marginal is a mixture of three Beta components, "absent" Beta(0.6, 6) near 0,
"moderate" Beta(1.5, 1.5) and "strong" Beta(6, 0.6) near 1, with weights solved so that the mixture's
mean and standard deviation are the paper's Table 2 label statistics (Hume-Reaction dev split).
Every such marginal has its density peaks at 0 and at 1, like the real self-reports.

Emotions are coupled by a Gaussian copula with three shared factors (positive affect, negative
affect, arousal): z = L f + sqrt(1 - |L|^2) eps, intensity = F^-1(Phi(z)) with F the marginal's CDF.
The face and voice follow these TRUE intensities; the label files hold WRITTEN labels drawn with
copula correlation LABEL_RELIABILITY to the truth, z_w = rho z + sqrt(1 - rho^2) eps'. Written labels
therefore keep the exact Table 2 marginals, and even a perfect model of the media cannot reach
Pearson 1 against them (about 0.75 per emotion at rho = 0.8).
"""
from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence

import numpy as np
from scipy import stats

from tfds_hume.records import HUME_EMOTIONS

# Paper Table 2: label mean and standard deviation per emotion (Hume-Reaction dev split).
TABLE2_MEAN_STD = {
    "Adoration": (0.3218, 0.3612),
    "Amusement": (0.6204, 0.3669),
    "Anxiety": (0.3431, 0.3245),
    "Disgust": (0.2432, 0.2866),
    "Empathic-Pain": (0.2152, 0.3032),
    "Fear": (0.2824, 0.3363),
    "Surprise": (0.5307, 0.3219),
}
# Emotions outside Table 2 (user-chosen emotion lists) get this marginal.
DEFAULT_MEAN_STD = (0.35, 0.32)

# Copula loadings on (positive affect, negative affect, arousal).
FACTOR_LOADINGS = {
    "Adoration": (0.75, -0.10, 0.00),
    "Amusement": (0.70, -0.15, 0.35),
    "Anxiety": (-0.10, 0.70, 0.35),
    "Disgust": (-0.10, 0.60, 0.10),
    "Empathic-Pain": (0.00, 0.75, -0.10),
    "Fear": (-0.10, 0.70, 0.45),
    "Surprise": (0.15, 0.10, 0.70),
}
NUM_FACTORS = 3

# Copula-space correlation between a written label and the true intensity behind it.
LABEL_RELIABILITY = 0.8


# Mixture components (a, b) of every marginal: absent, moderate, strong.
COMPONENTS = ((0.6, 6.0), (1.5, 1.5), (6.0, 0.6))


def mixture_weights(mean: float, std: float) -> np.ndarray:
    """float64[3] component weights giving the mixture this mean and standard deviation."""
    moments = [(a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1)) + (a / (a + b)) ** 2) for a, b in COMPONENTS]
    (m0, q0), (mm, qm), (m1, q1) = moments
    lhs = np.array([[m0 - mm, m1 - mm], [q0 - qm, q1 - qm]])
    p0, p1 = np.linalg.solve(lhs, [mean - mm, std * std + mean * mean - qm])
    weights = np.array([p0, 1.0 - p0 - p1, p1])
    if np.any(weights < 0):
        raise ValueError(f"no absent/moderate/strong mixture has mean {mean} and std {std}")
    return weights


@functools.lru_cache(maxsize=64)
def _ppf_table(mean: float, std: float) -> tuple[np.ndarray, np.ndarray]:
    # CDF on a grid that is dense near 0 and 1, where the density peaks; inverted by interpolation.
    x = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, 4001))
    cdf = sum(w * stats.beta.cdf(x, a, b) for w, (a, b) in zip(mixture_weights(mean, std), COMPONENTS))
    return cdf, x


def marginal_ppf(u: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Inverse CDF of the marginal with this Table 2 mean and std, at probabilities u."""
    cdf, x = _ppf_table(float(mean), float(std))
    return np.interp(u, cdf, x)


def _name_rng(name: str) -> np.random.Generator:
    # A stable per-name stream (Python's hash() is salted per process).
    return np.random.default_rng(zlib.crc32(name.encode("utf-8")))


def loadings(emotions: Sequence[str]) -> np.ndarray:
    """float64[E, NUM_FACTORS] copula factor loadings; emotions outside the table get a random one of norm 0.5."""
    rows = []
    for name in emotions:
        if name in FACTOR_LOADINGS:
            rows.append(FACTOR_LOADINGS[name])
        else:
            v = _name_rng(name).normal(size=NUM_FACTORS)
            rows.append(0.5 * v / np.linalg.norm(v))
    return np.asarray(rows, dtype=np.float64)


def sample_intensities(n: int, rng: np.random.Generator, emotions: Sequence[str] = HUME_EMOTIONS,
                       reliability: float = LABEL_RELIABILITY) -> tuple[np.ndarray, np.ndarray]:
    """(true, written) float32[n, E] intensities in [0, 1]; the media follow `true`, the files hold `written`."""
    emotions = list(emotions)
    if len(set(emotions)) != len(emotions) or not emotions:
        raise ValueError(f"emotions must be a non-empty list of distinct names, got {emotions}")
    if not 0.0 <= reliability <= 1.0:
        raise ValueError(f"reliability must lie in [0, 1], got {reliability}")
    load = loadings(emotions)
    unique = np.sqrt(1.0 - np.sum(load**2, axis=1))
    factors = rng.standard_normal((n, NUM_FACTORS))
    z_true = factors @ load.T + rng.standard_normal((n, len(emotions))) * unique
    z_written = reliability * z_true + np.sqrt(1.0 - reliability**2) * rng.standard_normal(z_true.shape)
    marginals = [TABLE2_MEAN_STD.get(name, DEFAULT_MEAN_STD) for name in emotions]

    def to_unit(z):
        u = stats.norm.cdf(z)
        return np.stack([marginal_ppf(u[:, j], *marginals[j]) for j in range(len(emotions))], axis=1).astype(np.float32)

    return to_unit(z_true), to_unit(z_written)


def sample_labels(n: int, rng: np.random.Generator, emotions: Sequence[str] = HUME_EMOTIONS) -> np.ndarray:
    """float32[n, E] written labels in [0, 1] (Table 2 means and stds, bimodal, correlated emotions)."""
    return sample_intensities(n, rng, emotions)[1]
