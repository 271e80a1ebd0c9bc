"""MP4 writing with PyAV (H.264 yuv420p + AAC mono), and the deliberately broken files of faults=True.

Encoder settings are fixed (libx264 preset veryfast, CRF 20, one thread, mbtree off; AAC 64 kb/s,
fast coder) so the same frames and samples give byte-identical files with the same PyAV/FFmpeg build.
mbtree must stay off: with it, libx264 (core 165) gives different bytes from run to run on frames
this small (96x96 and 64x64 differed, 112x112 and 128x128 did not), even with one thread.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tfds_hume.synthetic.audio import SAMPLE_RATE

_AAC_FRAME = 1024  # samples per AAC frame
_X264_OPTIONS = {"preset": "veryfast", "crf": "20", "x264-params": "mbtree=0"}


def write_mp4(path: Path, frames, width: int, height: int, fps: Fraction, audio: np.ndarray | None) -> None:
    """Encodes RGB frames (iterable of uint8[H, W, 3]) at `fps`, plus mono float audio unless None.

    Written to a temporary name first and renamed, so an interrupted run leaves no half file that
    would look like a planted fault.
    """
    tmp = path.with_name(path.name + ".partial")
    with av.open(str(tmp), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options=_X264_OPTIONS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.thread_count = 1
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono", options={"aac_coder": "fast"})
            sound.bit_rate = 64_000
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            samples = np.asarray(audio, dtype=np.float32)
            for start in range(0, samples.size, _AAC_FRAME):
                chunk = np.ascontiguousarray(samples[None, start : start + _AAC_FRAME])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    os.replace(tmp, path)


def truncate_in_middle(path: Path) -> None:
    """Cuts a finished MP4 to half its bytes. The moov index is written last, so the result does not open."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_empty(path: Path) -> None:
    path.write_bytes(b"")
