"""Decoding, sampling and audio windows on the real fixture videos (see tests/data/media/PROVENANCE.md)."""
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import resample_poly

from extract.media import MediaError, NoAudioError, audio_windows, load_audio, probe, sample_frames, sample_times
from tests.extract.media_factory import frame_levels, write_video, write_wav

MEDIA = Path(__file__).resolve().parents[1] / "data" / "media"
# name: (decoded frames, frames the container claims, video codec)
EXPECTED = {
    "single_face.mp4": (72, 72, "h264"),
    "WolfgangLanger_Pexels.mp4": (472, 472, "h264"),
    "no_face.mp4": (95, 98, "h264"),
    "face_noface.mov": (169, 169, "hevc"),
}


@pytest.fixture(scope="module")
def infos():
    return {name: probe(MEDIA / name) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_probe_counts_decoded_frames(infos, name):
    info = infos[name]
    decoded, header, codec = EXPECTED[name]
    assert info.num_frames == decoded and info.header_frames == header and info.video_codec == codec
    t = info.frame_times
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    assert info.duration > t[-1]


def test_probe_rates_and_audio(infos):
    assert infos["WolfgangLanger_Pexels.mp4"].rate == pytest.approx(24000 / 1001)
    # Frame spacing follows the decoded timestamps of the NTSC-rate clip, 1001/24000 s.
    assert np.diff(infos["WolfgangLanger_Pexels.mp4"].frame_times) == pytest.approx(1001 / 24000)
    mov = infos["face_noface.mov"]
    # The QuickTime audio stream is listed first and covers only the last 3.97 s of the 6.4 s video.
    assert mov.has_audio and mov.audio_start == pytest.approx(2.43, abs=0.01)
    assert mov.audio_duration == pytest.approx(3.97, abs=0.01) and mov.duration == pytest.approx(6.40, abs=0.01)
    assert infos["single_face.mp4"].audio_start == 0.0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_32_frames_first_and_last(infos, name):
    info = infos[name]
    frames, times, idx = sample_frames(MEDIA / name, 32, size=(8, 10), info=info)
    assert frames.shape == (32, 8, 10, 3) and frames.dtype == np.uint8
    assert idx[0] == 0 and idx[-1] == info.num_frames - 1
    assert np.all(np.diff(times) > 0) and np.all(np.diff(idx) > 0)
    assert np.array_equal(times, info.frame_times[idx])


def test_sampled_frames_are_the_decoded_frames(infos):
    path = MEDIA / "single_face.mp4"
    sample = sample_frames(path, 32, info=infos["single_face.mp4"])
    with av.open(str(path)) as c:
        decoded = [f.reformat(format="rgb24").to_ndarray() for f in c.decode(video=0)]
    for k, i in enumerate(sample.indices):
        ref = decoded[i]
        assert sample.frames[k].shape == ref.shape == (360, 640, 3)
        # Same frame (up to the RGB conversion's rounding mode), and not its neighbour.
        assert np.abs(sample.frames[k].astype(int) - ref).mean() < 1.0
    j = int(sample.indices[5])
    frame = sample.frames[5].astype(int)
    assert np.abs(frame - decoded[j + 1]).mean() > np.abs(frame - decoded[j]).mean()


def test_sample_times_is_nearest_frame():
    rng = np.random.default_rng(0)
    for n in (1, 5, 31, 32, 33, 200):
        ft = np.cumsum(rng.uniform(0.01, 0.2, n)) - 0.01  # variable frame rate
        idx, t = sample_times(ft, 32)
        targets = np.linspace(ft[0], ft[-1], 32)
        brute = np.argmin(np.abs(ft[None, :] - targets[:, None]), axis=1)  # first minimum: the earlier frame
        assert np.array_equal(idx, brute) and np.array_equal(t, ft[idx])
        assert idx[0] == 0 and idx[-1] == n - 1 and np.all(np.diff(idx) >= 0)
    assert sample_times(np.array([0.0, 0.5, 1.0]), 1)[0].tolist() == [0]
    assert sample_times(np.array([0.0, 0.5, 1.0]), 3)[0].tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        sample_times(np.array([]), 32)


def test_variable_rate_timestamps_are_trusted(tmp_path):
    pts = [0, 40, 80, 200, 210, 500, 900, 1000]
    path = write_video(tmp_path / "vfr.mp4", pts_ms=pts)
    info = probe(path)
    assert np.allclose(info.frame_times, np.array(pts) / 1000)
    frames, times, idx = sample_frames(path, 5, info=info)
    # targets 0, .25, .5, .75, 1.0 s -> frames at 0.21, 0.5, 0.9 s in between
    assert list(idx) == [0, 4, 5, 6, 7]
    levels = frame_levels(len(pts)).astype(int)
    seen = np.argmin(np.abs(frames[:, 0, 0, 0].astype(int)[:, None] - levels[None, :]), axis=1)
    assert list(seen) == list(idx)


def test_short_clip_repeats_nearest_frames(tmp_path):
    path = write_video(tmp_path / "short.mp4", num_frames=10, fps=10)
    sample = sample_frames(path, 32)
    assert sample.frames.shape[0] == 32 and sample.num_unique == 10
    assert sample.indices[0] == 0 and sample.indices[-1] == 9 and np.all(np.diff(sample.indices) >= 0)
    assert set(sample.indices.tolist()) == set(range(10))
    # Repeated rows are the same decoded frame, byte for byte.
    for k in range(1, 32):
        if sample.indices[k] == sample.indices[k - 1]:
            assert np.array_equal(sample.frames[k], sample.frames[k - 1])


def test_load_audio_16k_mono(infos):
    a = load_audio(MEDIA / "single_face.mp4")  # mp3 stereo 44.1 kHz
    assert a.sr == 16000 and a.wave.dtype == np.float32 and a.wave.ndim == 1
    assert a.duration == pytest.approx(infos["single_face.mp4"].audio_duration, abs=2e-3)
    assert 0.001 < np.abs(a.wave).max() <= 1.0


def test_load_audio_matches_scipy_resampling(tmp_path):
    sr, n = 44100, 44100
    t = np.arange(n) / sr
    left, right = 0.5 * np.sin(2 * np.pi * 1000 * t), 0.3 * np.sin(2 * np.pi * 1000 * t + 0.5)
    path = write_wav(tmp_path / "tone.wav", np.stack([left, right]), sr)
    a = load_audio(path, sr=16000)
    ref = resample_poly((left + right) / 2, 160, 441)  # mono = mean of the channels
    assert len(a.wave) == len(ref) and a.start == 0.0
    assert np.abs(a.wave[100:-100] - ref[100:-100]).max() < 2e-3


def test_audio_windows_tile_the_clip():
    sr, dur = 16000, 3.3
    wave = np.arange(int(sr * dur), dtype=np.float32)
    w = audio_windows(wave, sr, num=32, overlap=0.5, duration=dur)
    assert w.windows.shape == (32, round(2 * dur / 33 * sr)) and w.mask.all()
    assert w.length == pytest.approx(2 * dur / 33)
    assert np.allclose(np.diff(w.starts), w.length / 2) and w.starts[-1] + w.length == pytest.approx(dur)
    s = round(w.starts[7] * sr)
    assert np.array_equal(w.windows[7], wave[s:s + w.windows.shape[1]])


def test_audio_windows_flag_audio_shorter_than_video():
    sr = 16000
    w = audio_windows(np.ones(sr, np.float32), sr, num=32, duration=2.0)  # 1 s of audio, 2 s of video
    half_covered = w.starts + w.length / 2 <= 1.0 + 1e-9
    assert np.array_equal(w.mask, half_covered) and 0 < w.mask.sum() < 32
    assert not w.windows[~w.mask][:, w.windows.shape[1] // 2:].any()  # past the end: nothing, and flagged


def test_audio_windows_late_audio_on_real_mov(infos):
    info = infos["face_noface.mov"]
    a = load_audio(MEDIA / "face_noface.mov")
    assert a.start == pytest.approx(info.audio_start) and a.duration == pytest.approx(info.audio_duration, abs=2e-3)
    w = audio_windows(a.wave, a.sr, num=32, duration=info.duration, start=a.start)
    expected = w.starts + w.length / 2 >= a.start - 1 / a.sr
    assert np.array_equal(w.mask, expected)
    assert not w.mask[0] and w.mask[-1] and w.mask.sum() == 20


def test_no_audio_track(tmp_path):
    path = write_video(tmp_path / "silent.mp4", num_frames=5)
    assert probe(path).has_audio is False
    with pytest.raises(NoAudioError, match="silent.mp4: no audio track"):
        load_audio(path)


def test_video_with_audio_track(tmp_path):
    path = write_video(tmp_path / "av.mp4", num_frames=10, audio_seconds=0.8)
    info = probe(path)
    a = load_audio(path)
    assert info.has_audio and info.audio_rate == 16000
    assert a.duration == pytest.approx(0.8, abs=0.07)  # AAC pads to whole frames


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    for fn in (probe, load_audio, sample_frames):
        with pytest.raises(MediaError, match=r"empty\.mp4: empty file"):
            fn(path)


@pytest.mark.parametrize("name, frac", [("single_face.mp4", 0.5), ("WolfgangLanger_Pexels.mp4", 0.5),
                                        ("WolfgangLanger_Pexels.mp4", 0.95)])
def test_truncated_file(tmp_path, name, frac):
    data = (MEDIA / name).read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(data[:int(len(data) * frac)])
    with pytest.raises(MediaError, match=f"cut_{name}") as e:
        probe(path)
    # Index at the end (single_face): cannot open; index in front (Wolfgang): the cut shows when decoding.
    assert any(w in e.value.reason for w in ("truncated", "undecodable", "cannot open"))


def test_not_media_and_missing(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(MediaError, match=r"notes\.mp4: cannot open as media"):
        probe(path)
    with pytest.raises(MediaError, match=r"nope\.mp4: no such file"):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(MediaError, match="no video stream"):
        probe(write_wav(tmp_path / "a.wav", np.zeros((1, 800)), 8000))


def test_frame_time_base_is_exact(infos):
    # no_face.mp4 has time base 1/12288 and an odd average rate 150528/6359: times are pts * time base.
    with av.open(str(MEDIA / "no_face.mp4")) as c:
        s = c.streams.video[0]
        assert s.time_base == Fraction(1, 12288)
        pts = [f.pts for f in c.decode(s)]
    assert np.array_equal(infos["no_face.mp4"].frame_times, (np.array(pts) - pts[0]) / 12288)
