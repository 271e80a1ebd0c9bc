"""The clip's voice: a 16 kHz mono signal whose sound follows the same Expression as the face.

A buzzy harmonic voice is gated into syllables. Emotion levels e(t) drive seven sound channels:
  pitch     f0 shift in octaves (up with amusement, surprise, fear; down with empathic pain, disgust)
  loudness  voice amplitude
  laugh     5 Hz amplitude pulsing (amusement)
  tremolo   9 Hz pitch wobble (anxiety)
  burst     short loud noisy onsets (surprise, fear)
  breath    breathy noise in the voice (empathic pain, adoration)
  buzz      harsher spectrum, more high harmonics (disgust)
Per-clip nuisance: the speaker's base pitch and gain, the syllable rhythm, background noise level.
"""
from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np

from tfds_hume.synthetic.expression import Expression

SAMPLE_RATE = 16_000
SOUND_CHANNELS = ("pitch", "loudness", "laugh", "tremolo", "burst", "breath", "buzz")
SOUND_WEIGHTS = {
    "Adoration": {"pitch": 0.15, "loudness": -0.1, "breath": 0.5},
    "Amusement": {"pitch": 0.4, "loudness": 0.35, "laugh": 1.0},
    "Anxiety": {"pitch": 0.2, "tremolo": 1.0},
    "Disgust": {"pitch": -0.25, "buzz": 1.0},
    "Empathic-Pain": {"pitch": -0.4, "loudness": -0.15, "breath": 1.0},
    "Fear": {"pitch": 0.5, "loudness": 0.2, "burst": 0.6, "tremolo": 0.4},
    "Surprise": {"pitch": 0.6, "loudness": 0.3, "burst": 1.0},
}
_CONTROL_RATE = 200  # Hz at which the expression is evaluated and then interpolated


def sound_matrix(emotions: Sequence[str]) -> np.ndarray:
    """float64[E, len(SOUND_CHANNELS)]; emotions outside the table get small random pitch/loudness/buzz weights."""
    m = np.zeros((len(emotions), len(SOUND_CHANNELS)))
    for i, name in enumerate(emotions):
        if name in SOUND_WEIGHTS:
            for ch, w in SOUND_WEIGHTS[name].items():
                m[i, SOUND_CHANNELS.index(ch)] = w
        else:
            rng = np.random.default_rng(zlib.crc32(b"sound:" + name.encode("utf-8")))
            m[i, [0, 1, 6]] = rng.uniform(-0.4, 0.4, 3)
    return m


@dataclasses.dataclass(frozen=True)
class Voice:
    """Per-clip speaker nuisance."""

    base_f0: float  # Hz
    gain: float
    noise_level: float
    syllable_seed: int


def sample_voice(rng: np.random.Generator) -> Voice:
    return Voice(base_f0=float(rng.uniform(110.0, 240.0)), gain=float(rng.uniform(0.5, 1.0)),
                 noise_level=float(rng.uniform(0.005, 0.03)), syllable_seed=int(rng.integers(2**31)))


def _syllable_gate(n: int, rng: np.random.Generator) -> np.ndarray:
    """float[n] in [0, 1]: voiced stretches of 0.12-0.4 s separated by 0.05-0.3 s pauses, 10 ms ramps."""
    gate = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.2) * SAMPLE_RATE)
    ramp = int(0.01 * SAMPLE_RATE)
    while pos < n:
        length = int(rng.uniform(0.12, 0.4) * SAMPLE_RATE)
        seg = np.ones(length)
        seg[:ramp] = np.linspace(0, 1, ramp)
        seg[-ramp:] = np.linspace(1, 0, ramp)
        end = min(n, pos + length)
        gate[pos:end] = seg[: end - pos]
        pos = end + int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    return gate


def render_audio(expr: Expression, voice: Voice, num_samples: int) -> np.ndarray:
    """float32[num_samples] in [-1, 1] at SAMPLE_RATE."""
    rng = np.random.default_rng(voice.syllable_seed)
    t = np.arange(num_samples) / SAMPLE_RATE
    tc = np.arange(int(np.ceil(expr.duration * _CONTROL_RATE)) + 2) / _CONTROL_RATE
    ctrl_c = expr.emotion_levels(tc) @ sound_matrix(expr.emotions)
    ctrl = {name: np.interp(t, tc, ctrl_c[:, i]) for i, name in enumerate(SOUND_CHANNELS)}

    tremolo = 0.06 * ctrl["tremolo"] * np.sin(2 * np.pi * 9.0 * t)
    f0 = voice.base_f0 * 2.0 ** (ctrl["pitch"] + tremolo)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    tilt = 1.6 - 0.9 * np.clip(ctrl["buzz"], 0, 1)  # harmonic amplitude ~ h^-tilt
    harmonics = sum(np.sin(h * phase) * h ** (-tilt) for h in range(1, 9))
    breath = np.clip(ctrl["breath"], 0, 1)
    voiced = (1 - 0.6 * breath) * harmonics / 2.0 + 0.8 * breath * rng.standard_normal(num_samples)
    laugh = 1 - 0.8 * np.clip(ctrl["laugh"], 0, 1) * (0.5 + 0.5 * np.sin(2 * np.pi * 5.0 * t))
    loud = np.clip(0.35 + ctrl["loudness"], 0.05, 1.0)
    signal = voice.gain * loud * laugh * _syllable_gate(num_samples, rng) * voiced

    # Bursts: count and height follow the burst level at the apex; 80 ms decaying noisy shouts.
    level = float(np.clip(ctrl_c[:, SOUND_CHANNELS.index("burst")].max(initial=0.0), 0, 1))
    for start in rng.uniform(0.0, max(expr.duration - 0.1, 0.0), rng.poisson(4 * level)):
        i0 = int(start * SAMPLE_RATE)
        k = np.arange(min(int(0.08 * SAMPLE_RATE), num_samples - i0))
        env = np.exp(-k / (0.02 * SAMPLE_RATE))
        burst = rng.standard_normal(k.size) + np.sin(2 * np.pi * 2 * voice.base_f0 * k / SAMPLE_RATE)
        signal[i0 : i0 + k.size] += 0.8 * level * voice.gain * env * burst

    signal = signal + voice.noise_level * rng.standard_normal(num_samples)
    peak = np.max(np.abs(signal))
    if peak > 0.95:  # keep loud clips loud relative to quiet ones; only prevent clipping
        signal = signal * (0.95 / peak)
    return signal.astype(np.float32)
