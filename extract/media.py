"""Media decoding with PyAV that trusts decoded timestamps, not container headers.

Headers lie: frame counts can be wrong (a file that claims 98 frames decodes 95), rates can be
non-integer (24000/1001) or variable, and the audio track may start late or end early. So `probe`
decodes every video frame once and keeps its presentation time; sampling picks frames by those times.

Clock: every time here is in seconds since the first decoded video frame of the file (the clip's
time zero). A shipped feature CSV's timestamps and the audio track are placed on the same clock.

Sampling (`sample_times`): `num` equidistant target times from the first to the last decoded frame,
each mapped to the nearest decoded frame (ties go to the earlier frame), so the first and the last
frame are always included. A clip with fewer decoded frames than `num` still yields `num` rows: the
nearest frames repeat (`FrameSample.num_unique` < num says so, and the extractors report it).

Audio (`load_audio`, `audio_windows`): float32 resampled by libswresample (PyAV's `AudioResampler`),
then the mean of the channels (mono); `num` windows with `overlap` that exactly tile the clip's video duration. A window
is real (mask True) when at least half of it is covered by audio; the uncovered samples of any window
are zeros, so a real window carries at most half a window of padding at the audio's edge, and a window
without enough audio is flagged, never passed off as silence. No audio track -> `NoAudioError`.

Broken input (no file, zero bytes, truncated, undecodable, no video stream) raises `MediaError`,
whose message names the file and the reason.
"""
from __future__ import annotations

import dataclasses
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np
from av.video.reformatter import Interpolation

from extract.errors import MediaError, NoAudioError

__all__ = ["MediaInfo", "FrameSample", "AudioTrack", "AudioWindows", "MediaError", "NoAudioError",
           "probe", "sample_times", "sample_frames", "load_audio", "audio_windows"]

# Area averaging for downscaling (no aliasing); bit-exact so the same file gives the same pixels on
# every CPU (SIMD paths of swscale may otherwise differ in the last bit).
_SCALE_FLAGS = Interpolation.AREA | Interpolation.ACCURATE_RND | Interpolation.BITEXACT


@dataclasses.dataclass
class MediaInfo:
    """What decoding a file found (times in seconds on the clip clock, see module docstring).

    frame_times: float64[num_frames], presentation time of every decoded video frame, frame_times[0] == 0.
    duration: video duration = last frame time + that frame's duration.
    header_frames: the frame count the container claims (0 when it does not say); informational only.
    rate: the container's average frame rate (informational; sampling never uses it).
    audio_start / audio_duration: where the decoded audio starts on the clip clock and how long it
    lasts (None without audio).
    """

    path: str
    frame_times: np.ndarray
    duration: float
    width: int
    height: int
    video_codec: str
    header_frames: int
    rate: float | None
    has_audio: bool
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    audio_start: float | None = None
    audio_duration: float | None = None

    @property
    def num_frames(self) -> int:
        return int(len(self.frame_times))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["frame_times"] = [float(t) for t in self.frame_times]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "MediaInfo":
        d = dict(d)
        d["frame_times"] = np.asarray(d["frame_times"], dtype=np.float64)
        return cls(**d)


class FrameSample(NamedTuple):
    """`num` sampled frames; unpacks as (frames, times, indices)."""

    frames: np.ndarray  # uint8 [num, H, W, 3], RGB
    times: np.ndarray  # float64 [num], decoded time of each chosen frame (clip clock)
    indices: np.ndarray  # int64 [num], index of each chosen frame among the decoded frames

    @property
    def num_unique(self) -> int:
        """How many distinct decoded frames were used (< num when the clip is shorter than num frames)."""
        return int(len(np.unique(self.indices)))


@dataclasses.dataclass
class AudioTrack:
    """Decoded mono audio. `start`: time of its first sample on the clip clock (0 for a separate file)."""

    wave: np.ndarray  # float32 [n]
    sr: int
    start: float = 0.0

    @property
    def duration(self) -> float:
        return len(self.wave) / self.sr


@dataclasses.dataclass
class AudioWindows:
    """`num` overlapping windows tiling the clip. mask[i] is False where window i lacks audio."""

    windows: np.ndarray  # float32 [num, length_samples]
    mask: np.ndarray  # bool [num]
    starts: np.ndarray  # float64 [num], window start times (clip clock)
    length: float  # window length in seconds
    sr: int


def _why(e: Exception) -> str:
    """FFmpeg's reason without the file name it repeats (the MediaError names the file already)."""
    return getattr(e, "strerror", None) or str(e)


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "no such file")
    if not p.is_file():
        raise MediaError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise MediaError(p, "empty file (0 bytes)")
    try:
        return av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        hint = " (truncated, or not a media file)" if isinstance(e, av.InvalidDataError) else ""
        raise MediaError(p, f"cannot open as media: {_why(e)}{hint}") from e


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def probe(path: str | os.PathLike) -> MediaInfo:
    """Decode every video (and audio) frame of `path` once and report what is really there."""
    path = Path(path)
    times: list[float] = []
    last_duration = None
    packets = 0
    audio_first = None
    audio_samples = 0
    audio_rate = None
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError(path, "no video stream")
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        a = c.streams.audio[0] if c.streams.audio else None
        streams = (v, a) if a is not None else (v,)
        try:
            for pkt in c.demux(*streams):
                if pkt.stream is v:
                    packets += pkt.size > 0
                    for f in pkt.decode():
                        if f.time is None:
                            raise MediaError(path, f"video frame {len(times)} has no timestamp")
                        times.append(float(f.time))
                        last_duration = _seconds(f.duration, f.time_base)
                else:
                    for f in pkt.decode():
                        if audio_first is None and f.time is not None:
                            audio_first = float(f.time)
                        audio_samples += f.samples
                        audio_rate = f.sample_rate
        except av.FFmpegError as e:
            raise MediaError(path, f"undecodable after {len(times)} video frames: {_why(e)}") from e
        header_frames = int(v.frames or 0)
        if not times:
            raise MediaError(path, "no decodable video frames")
        # A cut-off MP4/MOV whose index sits at the front demuxes and decodes silently up to the cut;
        # only the packet count against the index's sample count shows it. (Decoded frames may
        # legitimately be fewer than packets, e.g. 95 of 98, so decoded frames are not compared.)
        if header_frames and packets < header_frames:
            raise MediaError(path, f"truncated: the container indexes {header_frames} video frames "
                                   f"but only {packets} are present")
        t = np.asarray(times, dtype=np.float64)
        if np.any(np.diff(t) < 0):
            i = int(np.argmax(np.diff(t) < 0)) + 1
            raise MediaError(path, f"video timestamps go backwards at decoded frame {i}")
        t0 = t[0]
        t = t - t0
        if not last_duration or last_duration <= 0:
            # No per-frame duration in the stream: the typical spacing of the decoded frames.
            last_duration = float(np.median(np.diff(t))) if len(t) > 1 else (
                1.0 / float(v.average_rate) if v.average_rate else 0.0)
        has_audio = a is not None and audio_samples > 0
        return MediaInfo(
            path=str(path), frame_times=t, duration=float(t[-1] + last_duration),
            width=int(v.codec_context.width), height=int(v.codec_context.height),
            video_codec=v.codec_context.name, header_frames=header_frames,
            rate=float(v.average_rate) if v.average_rate else None,
            has_audio=has_audio,
            audio_codec=a.codec_context.name if a is not None else None,
            audio_rate=audio_rate if has_audio else None,
            audio_channels=a.codec_context.channels if a is not None else None,
            audio_start=(audio_first - t0) if has_audio and audio_first is not None else (0.0 if has_audio else None),
            audio_duration=audio_samples / audio_rate if has_audio else None,
        )


def sample_times(frame_times: np.ndarray, num: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Indices and times of the decoded frames nearest to `num` equidistant times, first to last frame.

    Returns (indices int64[num], times float64[num]); indices are non-decreasing and repeat when the
    clip has fewer frames than `num` (or very uneven timestamps).
    """
    ft = np.asarray(frame_times, dtype=np.float64)
    if ft.ndim != 1 or len(ft) == 0:
        raise ValueError("frame_times must be a non-empty 1-d array")
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    targets = np.linspace(ft[0], ft[-1], num)
    hi = np.clip(np.searchsorted(ft, targets, side="left"), 0, len(ft) - 1)
    lo = np.clip(hi - 1, 0, len(ft) - 1)
    idx = np.where(np.abs(targets - ft[lo]) <= np.abs(ft[hi] - targets), lo, hi).astype(np.int64)
    idx[0] = 0  # exact ends, whatever rounding did (one sample: the first frame)
    if num > 1:
        idx[-1] = len(ft) - 1
    return idx, ft[idx]


def _size_hw(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    return h, w


def sample_frames(path: str | os.PathLike, num: int = 32, size: int | tuple[int, int] | None = None,
                  info: MediaInfo | None = None) -> FrameSample:
    """Decode `num` equidistant frames (see `sample_times`) as RGB uint8.

    size: None keeps the decoded size; an int or (height, width) scales with area averaging (aspect
    ratio not kept). info: a `probe` result for this file (saves the probing pass).
    """
    path = Path(path)
    info = probe(path) if info is None else info
    hw = _size_hw(size)
    idx, times = sample_times(info.frame_times, num)
    wanted = set(int(i) for i in idx)
    last = int(idx.max())
    got: dict[int, np.ndarray] = {}
    t0 = None
    with _open(path) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        i = -1
        try:
            for f in c.decode(v):
                i += 1
                t0 = float(f.time) if t0 is None else t0
                if i in wanted:
                    if abs((float(f.time) - t0) - info.frame_times[i]) > 1e-6:
                        raise MediaError(path, f"frame {i} decodes at {float(f.time) - t0:.6f} s, "
                                               f"probe said {info.frame_times[i]:.6f} s (file changed?)")
                    w, h = (None, None) if hw is None else (hw[1], hw[0])
                    got[i] = f.reformat(width=w, height=h, format="rgb24", interpolation=_SCALE_FLAGS).to_ndarray()
                if i >= last:
                    break
        except av.FFmpegError as e:
            raise MediaError(path, f"undecodable at video frame {i + 1}: {_why(e)}") from e
    if len(got) != len(wanted):
        raise MediaError(path, f"only {i + 1} frames decode now, probe found {info.num_frames} (file changed?)")
    frames = np.stack([got[int(j)] for j in idx])
    return FrameSample(frames=frames, times=times, indices=idx)


def _first_video_time(c: av.container.InputContainer) -> float | None:
    if not c.streams.video:
        return None
    for f in c.decode(c.streams.video[0]):
        return float(f.time) if f.time is not None else None
    return None


def load_audio(path: str | os.PathLike, sr: int = 16000) -> AudioTrack:
    """Decode the first audio track of `path` to mono float32 at `sr` Hz.

    The track's start is placed on the clip clock (its first decoded sample relative to the first
    decoded video frame of the same file; 0 for an audio-only file). Raises `NoAudioError` when there
    is no audio track or it holds no samples, `MediaError` for broken files.
    """
    path = Path(path)
    with _open(path) as c:
        if not c.streams.audio:
            raise NoAudioError(path, "no audio track")
        a = c.streams.audio[0]
        # Resample every channel, then average them: libswresample's own downmix to mono adds the
        # channels at -3 dB each (L + R) / sqrt(2), louder than the mean and able to clip.
        resampler = av.AudioResampler(format="fltp", rate=sr)
        chunks: list[np.ndarray] = []
        first = None
        try:
            for f in c.decode(a):
                if first is None and f.time is not None:
                    first = float(f.time)
                for out in resampler.resample(f):
                    chunks.append(out.to_ndarray().mean(axis=0))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0))
        except av.FFmpegError as e:
            raise MediaError(path, f"undecodable audio: {_why(e)}") from e
    if not chunks or sum(len(ch) for ch in chunks) == 0:
        raise NoAudioError(path, "audio track holds no decodable samples")
    with _open(path) as c:
        try:
            v0 = _first_video_time(c)
        except av.FFmpegError as e:
            raise MediaError(path, f"undecodable video: {_why(e)}") from e
    start = 0.0 if v0 is None or first is None else first - v0
    return AudioTrack(wave=np.concatenate(chunks).astype(np.float32, copy=False), sr=sr, start=start)


def audio_windows(wave: np.ndarray, sr: int, num: int = 32, overlap: float = 0.5,
                  duration: float | None = None, start: float = 0.0, min_samples: int = 0) -> AudioWindows:
    """Cut `num` windows with fractional `overlap` that exactly tile [0, duration) of the clip clock.

    wave starts at `start` seconds on that clock (see `AudioTrack.start`). With n windows and hop =
    (1 - overlap) * length: length = duration / (1 + (n - 1) * (1 - overlap)); for 32 windows at 50 %
    that is 2 * duration / 33. duration defaults to the end of the audio (start + len(wave) / sr).
    Windows shorter than `min_samples` (a model's receptive field) are widened to it around their
    centres, so they overlap more than asked; the centres stay where the tiling put them.
    mask[i] is True when at least half of window i lies on audio.
    """
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if duration is None:
        duration = start + len(wave) / sr
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    hop_frac = 1.0 - overlap
    length = duration / (1.0 + (num - 1) * hop_frac)
    n = max(1, int(round(length * sr)))
    starts = np.arange(num, dtype=np.float64) * length * hop_frac
    if n < min_samples:  # widen around the centres
        starts = starts + length / 2 - min_samples / sr / 2
        n, length = int(min_samples), min_samples / sr
    out = np.zeros((num, n), dtype=np.float32)
    covered = np.zeros(num, dtype=np.int64)
    for i, t in enumerate(starts):
        s = int(round((t - start) * sr))
        lo, hi = max(s, 0), min(s + n, len(wave))
        if hi > lo:
            out[i, lo - s:hi - s] = wave[lo:hi]
            covered[i] = hi - lo
    return AudioWindows(windows=out, mask=covered * 2 >= n, starts=starts, length=length, sr=sr)
