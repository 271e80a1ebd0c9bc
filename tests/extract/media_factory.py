"""Tiny media files for the extract tests, written with PyAV into a test's tmp_path.

Every frame is one flat gray level (`levels[i]`), so a decoded frame tells which frame it was.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np


def frame_levels(n: int) -> np.ndarray:
    """Distinct, well separated gray levels for n frames (n <= 40)."""
    return (20 + np.arange(n) * 5).astype(np.uint8)


def write_video(path: Path, *, pts_ms: Sequence[int] | None = None, num_frames: int = 10, fps: int = 10,
                size: tuple[int, int] = (32, 32), audio_seconds: float | None = None,
                audio_rate: int = 16000, tone_hz: float = 440.0) -> Path:
    """An H.264 MP4 (lossless, flat gray frames); `pts_ms` gives each frame's time in ms (variable rate).

    With `audio_seconds`, an AAC mono track with a sine tone of that length starting at 0.
    """
    if pts_ms is None:
        pts_ms = [round(1000 * i / fps) for i in range(num_frames)]
    levels = frame_levels(len(pts_ms))
    h, w = size
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps, options={"qp": "0", "bf": "0"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.codec_context.time_base = Fraction(1, 1000)
        a = None
        if audio_seconds is not None:
            a = c.add_stream("aac", rate=audio_rate, layout="mono")
        for t, level in zip(pts_ms, levels):
            img = np.full((h, w, 3), level, dtype=np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = int(t), Fraction(1, 1000)
            for pkt in v.encode(f):
                c.mux(pkt)
        for pkt in v.encode(None):
            c.mux(pkt)
        if a is not None:
            n = int(round(audio_seconds * audio_rate))
            wave = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(n) / audio_rate)).astype(np.float32)
            hop = 1024
            for i in range(0, n, hop):
                f = av.AudioFrame.from_ndarray(wave[None, i:i + hop].copy(), format="fltp", layout="mono")
                f.sample_rate, f.pts, f.time_base = audio_rate, i, Fraction(1, audio_rate)
                for pkt in a.encode(f):
                    c.mux(pkt)
            for pkt in a.encode(None):
                c.mux(pkt)
    return path


def write_wav(path: Path, channels: np.ndarray, rate: int) -> Path:
    """A PCM s16 WAV from float channels [C, n] in [-1, 1]."""
    layout = {1: "mono", 2: "stereo"}[len(channels)]
    data = np.round(np.clip(channels, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=rate, layout=layout)
        f = av.AudioFrame.from_ndarray(data.T.reshape(1, -1).copy(), format="s16", layout=layout)
        f.sample_rate = rate
        for pkt in s.encode(f):
            c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return path
