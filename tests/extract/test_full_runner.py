"""The runner's prefetching (prepare on worker threads while compute runs) and the shard split."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from extract.errors import MediaError
from extract.extractors import Extractor, FeatureValue, PixelsExtractor, run_extractor
from extract.pipeline import parse_shard, select_clips, shard_clips
from tests.extract.media_factory import write_video
from tfds_hume.manifest import FeatureSpec, load_value
from tfds_hume.records import ClipRecord


def clips(n, video=None):
    return [ClipRecord(id=f"c{i:02d}", split="train", labels=np.zeros(1, np.float32), video=video) for i in range(n)]


class Overlap(Extractor):
    """Computing batch k waits until some clip of batch k + 1 is being prepared: only overlap can pass."""

    name = "overlap"
    batch_size = 2

    def __init__(self):
        self.started: list[str] = []
        self.lock = threading.Lock()
        self.events = {}
        self.threads = set()

    def settings(self):
        return {"extractor": self.name}

    def specs(self):
        return {"x": FeatureSpec(kind="video", dim=1, source=self.name)}

    def prepare(self, clip, media):
        with self.lock:
            self.started.append(clip.id)
            self.threads.add(threading.current_thread().name)
            self.events.setdefault(clip.id, threading.Event()).set()
        if clip.id == "c03":
            raise MediaError("c03.mp4", "broken on purpose")
        return clip.id

    def compute(self, prepared):
        following = f"c{int(prepared[-1][1:]) + 1:02d}"  # first clip of the next batch
        if following <= "c07":
            with self.lock:
                ev = self.events.setdefault(following, threading.Event())
            assert ev.wait(timeout=30), f"{following} was not being prepared while {prepared} computed"
        return [{"x": FeatureValue(np.array([float(p[1:])], np.float32))} for p in prepared]


def test_prepare_runs_ahead_on_threads_and_failures_stay_per_clip(tmp_path):
    ex = Overlap()
    summary, cache = run_extractor(ex, clips(8), tmp_path, progress=False, workers=2, prefetch=1)
    assert summary.done == 7 and summary.failed == 1 and summary.failures[0]["reason"] == "broken on purpose"
    assert all(t.startswith("prepare-overlap") for t in ex.threads)
    for i in (0, 1, 2, 4, 7):
        v, _ = load_value(cache.files(f"c{i:02d}")["x"], ex.specs()["x"])
        assert v.tolist() == [float(i)]
    assert summary.wait_seconds >= 0 and summary.compute_seconds > 0


def test_threads_give_the_same_files_as_the_calling_thread(tmp_path):
    video = write_video(tmp_path / "v.mp4", num_frames=12, fps=10)
    recs = clips(5, video) + [ClipRecord(id="gone", split="train", labels=np.zeros(1), video=tmp_path / "nope.mp4")]
    a, ca = run_extractor(PixelsExtractor(num_frames=6, size=3), recs, tmp_path / "a", progress=False)
    b, cb = run_extractor(PixelsExtractor(num_frames=6, size=3), recs, tmp_path / "b", progress=False, workers=3,
                          prefetch=2)
    assert (a.done, a.failed, b.done, b.failed) == (5, 1, 5, 1)
    spec = PixelsExtractor(num_frames=6, size=3).specs()["pixels"]
    for r in recs[:5]:
        a_value, _ = load_value(ca.files(r.id)["pixels"], spec)
        assert np.array_equal(a_value, load_value(cb.files(r.id)["pixels"], spec)[0])
    assert "no such file" in b.failures[0]["reason"]


def test_shards_partition_the_clips_deterministically():
    recs = [ClipRecord(id=f"{i:03d}", split=s, labels=np.zeros(1)) for i, s in
            enumerate(["train", "dev", "test"] * 7)]
    ordered = select_clips(recs)
    parts = [shard_clips(ordered, i, 4) for i in range(4)]
    assert sorted(c.id for p in parts for c in p) == sorted(c.id for c in recs)
    assert [len(p) for p in parts] == [6, 5, 5, 5]
    assert [c.id for c in shard_clips(select_clips(list(reversed(recs))), 1, 4)] == [c.id for c in parts[1]]
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/2", "1/0", "a/b", "2"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)
