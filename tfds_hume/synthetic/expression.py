"""The latent expression of one clip: what the face, the voice and the shipped features all follow.

A clip's TRUE emotion intensities y (float[E] in [0, 1]) become a continuous timeline:
  e(t)  = expressivity * envelope(t) * y             per-emotion expression, float[T, E]
  AU(t) = clip(rest + e(t) @ AU_PROTOTYPES, 0, 5)    20 Py-Feat action-unit intensities (0-5 scale)
plus non-AU channels (head jitter, blush, tear, pallor) and blinks. The envelope rises from a floor
to an apex at a random time and falls again, so every frame carries some signal but not the same
amount. Everything is a deterministic function of t, so video frames (at the clip's frame rate),
audio samples and feature rows (on their own time grid) sample one and the same expression.
"""
from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np

# Py-Feat's 20 action units, OpenFace-style intensity column names.
AU_NAMES = tuple(f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43))
_AU_INDEX = {name[:4]: i for i, name in enumerate(AU_NAMES)}

# EMFACS-style prototypes: AU intensity (0-5) at full emotion intensity.
AU_PROTOTYPES = {
    "Adoration": {"AU01": 1.0, "AU06": 1.5, "AU12": 2.5, "AU43": 1.0},
    "Amusement": {"AU06": 3.5, "AU07": 1.0, "AU12": 4.0, "AU25": 3.5, "AU26": 2.5},
    "Anxiety": {"AU01": 2.5, "AU04": 2.0, "AU14": 1.5, "AU20": 1.5, "AU24": 2.0, "AU28": 1.5},
    "Disgust": {"AU04": 1.5, "AU09": 4.0, "AU10": 3.5, "AU11": 1.0, "AU15": 1.5, "AU17": 2.0},
    "Empathic-Pain": {"AU01": 3.0, "AU04": 2.5, "AU15": 3.5, "AU17": 1.5, "AU43": 1.5},
    "Fear": {"AU01": 3.0, "AU02": 2.5, "AU04": 1.5, "AU05": 3.5, "AU20": 3.0, "AU25": 2.0, "AU26": 1.5},
    "Surprise": {"AU01": 3.5, "AU02": 4.0, "AU05": 3.0, "AU25": 3.0, "AU26": 4.0},
}

# Channels the face shows beyond AUs: head jitter (anxious/fearful restlessness), blush
# (adoration), a tear (empathic pain), pallor (a greenish skin tint for disgust), glow (a brighter
# face when amused).
CHANNELS = ("jitter", "blush", "tear", "pallor", "glow")
CHANNEL_WEIGHTS = {
    "Anxiety": {"jitter": 1.0},
    "Fear": {"jitter": 0.7},
    "Adoration": {"blush": 1.0, "glow": 0.3},
    "Amusement": {"glow": 1.0},
    "Empathic-Pain": {"tear": 1.0},
    "Disgust": {"pallor": 1.0},
}


def _name_rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(b"expression:" + name.encode("utf-8")))


def au_matrix(emotions: Sequence[str]) -> np.ndarray:
    """float64[E, 20]: AU intensity per unit of emotion. Emotions outside the table get 3 random AUs."""
    m = np.zeros((len(emotions), len(AU_NAMES)))
    for i, name in enumerate(emotions):
        if name in AU_PROTOTYPES:
            for au, w in AU_PROTOTYPES[name].items():
                m[i, _AU_INDEX[au]] = w
        else:
            rng = _name_rng(name)
            m[i, rng.choice(len(AU_NAMES), size=3, replace=False)] = rng.uniform(2.0, 4.0, size=3)
    return m


def channel_matrix(emotions: Sequence[str]) -> np.ndarray:
    """float64[E, len(CHANNELS)]: non-AU face channels per unit of emotion."""
    m = np.zeros((len(emotions), len(CHANNELS)))
    for i, name in enumerate(emotions):
        for ch, w in CHANNEL_WEIGHTS.get(name, {}).items():
            m[i, CHANNELS.index(ch)] = w
    return m


@dataclasses.dataclass(frozen=True)
class Expression:
    """One clip's expression timeline (see module docstring). Times are in seconds."""

    emotions: tuple[str, ...]
    intensities: np.ndarray  # float[E], the TRUE intensities
    duration: float
    apex: float  # time of the envelope maximum
    width: float  # envelope width (s)
    floor: float  # envelope value far from the apex
    expressivity: float  # per-person scale of all expression
    rest_au: np.ndarray  # float[20], the person's resting face
    blink_times: np.ndarray  # float[B]
    jitter_freqs: np.ndarray  # float[K, 2] Hz, for x and y
    jitter_phases: np.ndarray  # float[K, 2]

    def envelope(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return self.floor + (1.0 - self.floor) * np.exp(-(((t - self.apex) / self.width) ** 2))

    def emotion_levels(self, t: np.ndarray) -> np.ndarray:
        """float[T, E]: e(t) = expressivity * envelope(t) * y."""
        return self.expressivity * self.envelope(t)[:, None] * self.intensities[None, :]

    def action_units(self, t: np.ndarray) -> np.ndarray:
        """float[T, 20] AU intensities on the 0-5 scale (blinks excluded)."""
        au = self.rest_au[None, :] + self.emotion_levels(t) @ au_matrix(self.emotions)
        return np.clip(au, 0.0, 5.0)

    def channels(self, t: np.ndarray) -> np.ndarray:
        """float[T, len(CHANNELS)] in [0, 1]."""
        return np.clip(self.emotion_levels(t) @ channel_matrix(self.emotions), 0.0, 1.0)

    def blink(self, t: np.ndarray) -> np.ndarray:
        """float[T] in [0, 1]: 1 when the eyes are shut by a blink (~150 ms each)."""
        t = np.asarray(t, dtype=np.float64)
        if self.blink_times.size == 0:
            return np.zeros_like(t)
        d = (t[:, None] - self.blink_times[None, :]) / 0.06
        return np.exp(-(d**2)).max(axis=1)

    def head_offset(self, t: np.ndarray) -> np.ndarray:
        """float[T, 2]: head displacement as a fraction of face radius; small drift plus emotion jitter."""
        t = np.asarray(t, dtype=np.float64)
        waves = np.sin(2 * np.pi * self.jitter_freqs[None] * t[:, None, None] + self.jitter_phases[None])
        slow, fast = waves[:, 0], waves[:, 1:].mean(axis=1)
        jitter = self.channels(t)[:, CHANNELS.index("jitter")]
        return 0.04 * slow + 0.35 * jitter[:, None] * fast


def sample_expression(intensities: np.ndarray, emotions: Sequence[str], duration: float,
                      rng: np.random.Generator) -> Expression:
    """Draw one person's expression timeline for a clip with these TRUE intensities."""
    num_blinks = rng.poisson(duration / 3.0)
    # Frequencies: one slow drift (0.2-0.5 Hz) and four fast restless components (3-8 Hz).
    freqs = np.concatenate([rng.uniform(0.2, 0.5, (1, 2)), rng.uniform(3.0, 8.0, (4, 2))])
    return Expression(
        emotions=tuple(emotions),
        intensities=np.asarray(intensities, dtype=np.float64),
        duration=float(duration),
        apex=float(rng.uniform(0.3, 0.7) * duration),
        width=float(rng.uniform(0.3, 0.5) * duration),
        floor=float(rng.uniform(0.3, 0.5)),
        expressivity=float(rng.uniform(0.7, 1.1)),
        rest_au=rng.uniform(0.0, 0.5, len(AU_NAMES)),
        blink_times=np.sort(rng.uniform(0.0, duration, num_blinks)),
        jitter_freqs=freqs,
        jitter_phases=rng.uniform(0.0, 2 * np.pi, freqs.shape),
    )
