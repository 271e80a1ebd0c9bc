"""The feature cache and the extractor runner: atomic writes, reruns skip, settings change the folder, failures."""
import json

import numpy as np
import pytest

import extract.cache as cache_mod
import tfds_hume.manifest as manifest_mod
from extract.cache import FeatureCache, ProbeCache, dataset_features_dir, settings_hash
from extract.errors import MediaError
from extract.extractors import Extractor, FeatureValue, Missing, run_extractor
from tests.extract.media_factory import write_video
from tfds_hume.manifest import FeatureSpec, load_value
from tfds_hume.records import ClipRecord


class Counting(Extractor):
    """A fake extractor: frame feature = clip number, counts calls, fails or misses on request."""

    name = "counting"

    def __init__(self, scale=1.0, fail=(), missing=(), keys=("value",), bad_shape=False):
        self.scale, self.fail, self.missing, self.keys, self.bad_shape = scale, set(fail), set(missing), keys, bad_shape
        self.calls = []

    def settings(self):
        return {"extractor": self.name, "scale": self.scale}

    def specs(self):
        return {k: FeatureSpec(kind="frame", dim=3, num_frames=4, source=self.name) for k in self.keys}

    def prepare(self, clip, media):
        self.calls.append(clip.id)
        if clip.id in self.fail:
            raise MediaError(f"media/{clip.id}.mp4", "undecodable at video frame 3")
        out = {}
        for i, k in enumerate(self.keys):
            if clip.id in self.missing:
                out[k] = Missing("no audio track")
            else:
                shape = (4, 2) if self.bad_shape else (4, 3)
                out[k] = FeatureValue(np.full(shape, float(clip.id) * self.scale + i, np.float32),
                                      np.array([True, True, True, False]))
        return out


def clips(n=4):
    return [ClipRecord(id=f"{i:05d}", split="train", labels=np.zeros(7, np.float32)) for i in range(1, n + 1)]


def test_settings_hash_is_canonical():
    a = settings_hash({"model": "x", "frames": 32, "params": {"b": 1, "a": 2}})
    assert a == settings_hash({"params": {"a": 2, "b": 1}, "frames": 32, "model": "x"})
    assert a != settings_hash({"model": "x", "frames": 8, "params": {"b": 1, "a": 2}})
    assert len(a) == 8 and int(a, 16) >= 0


def test_layout_and_values(tmp_path):
    ex = Counting()
    summary, cache = run_extractor(ex, clips(3), tmp_path, progress=False)
    assert summary.done == 3 and summary.cached == 0 and summary.failed == 0
    assert cache.folder == tmp_path / f"counting-{settings_hash(ex.settings())}"
    assert json.loads((cache.folder / "settings.json").read_text()) == ex.settings()
    path = cache.folder / "00002.npz"
    value, mask = load_value(path, ex.specs()["value"])
    assert np.array_equal(value, np.full((4, 3), 2.0, np.float32)) and list(mask) == [True, True, True, False]
    assert not list(cache.folder.glob("*.tmp"))


def test_rerun_skips_finished_work(tmp_path):
    ex = Counting()
    run_extractor(ex, clips(4), tmp_path, progress=False)
    assert len(ex.calls) == 4
    again = Counting()
    summary, _ = run_extractor(again, clips(5), tmp_path, progress=False)
    assert again.calls == ["00005"] and summary.cached == 4 and summary.done == 1


def test_changed_setting_writes_a_new_folder(tmp_path):
    _, c1 = run_extractor(Counting(scale=1.0), clips(2), tmp_path, progress=False)
    ex2 = Counting(scale=2.0)
    s2, c2 = run_extractor(ex2, clips(2), tmp_path, progress=False)
    assert c1.folder != c2.folder and len(ex2.calls) == 2 and s2.cached == 0
    v1 = np.load(c1.folder / "00002.npz")["value"]
    v2 = np.load(c2.folder / "00002.npz")["value"]
    assert v1[0, 0] == 2.0 and v2[0, 0] == 4.0  # the old entries are untouched


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def crash(f, array, **kwargs):
        f.write(b"\x93NUMPY half an array")
        raise OSError("disk full")

    monkeypatch.setattr(manifest_mod.np.lib.format, "write_array", crash)
    cache = FeatureCache(tmp_path, "x", {"a": 1}, ["value"])
    with pytest.raises(OSError, match="disk full"):
        cache.write_value("00001", "value", np.zeros((4, 3), np.float32))
    assert not cache.value_path("00001", "value").exists() and not cache.is_done("00001")


def test_failures_are_recorded_and_the_run_goes_on(tmp_path):
    ex = Counting(fail={"00002"})
    summary, cache = run_extractor(ex, clips(4), tmp_path, progress=False)
    assert summary.done == 3 and summary.failed == 1 and not cache.is_done("00002")
    lines = [json.loads(line) for line in (cache.folder / "failures.jsonl").read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["id"] == "00002" and lines[0]["file"] == "media/00002.mp4"
    assert lines[0]["reason"] == "undecodable at video frame 3"
    # The next run retries only the failed clip.
    again = Counting(fail={"00002"})
    s2, _ = run_extractor(again, clips(4), tmp_path, progress=False)
    assert again.calls == ["00002"] and s2.failed == 1 and s2.cached == 3
    assert len(cache.failures()) == 2


def test_missing_is_recorded_not_zero_filled(tmp_path):
    ex = Counting(missing={"00003"})
    summary, cache = run_extractor(ex, clips(3), tmp_path, progress=False)
    assert summary.missing == 1 and cache.is_done("00003")
    assert cache.files("00003") == {} and cache.missing("00003") == {"value": "no audio track"}
    again = Counting()
    run_extractor(again, clips(3), tmp_path, progress=False)
    assert again.calls == []  # a missing feature is finished work too


def test_several_keys_live_in_subfolders(tmp_path):
    ex = Counting(keys=("text", "embedding"))
    _, cache = run_extractor(ex, clips(2), tmp_path, progress=False)
    files = cache.files("00001")
    assert files == {"text": cache.folder / "text" / "00001.npz",
                     "embedding": cache.folder / "embedding" / "00001.npz"}
    assert np.load(files["embedding"])["value"][0, 0] == 2.0


def test_wrong_shape_is_a_bug_that_stops_the_run(tmp_path):
    with pytest.raises(ValueError, match=r"key value has shape \(4, 2\), expected \(4, 3\)"):
        run_extractor(Counting(bad_shape=True), clips(2), tmp_path, progress=False)


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", ".hidden"])
def test_unsafe_clip_ids(tmp_path, bad):
    cache = FeatureCache(tmp_path, "x", {}, ["value"])
    with pytest.raises(ValueError, match="not a safe file name"):
        cache.value_path(bad, "value")


def test_same_hash_other_settings_is_refused(tmp_path):
    cache = FeatureCache(tmp_path, "x", {"a": 1}, ["value"])
    (cache.folder / "settings.json").write_text(json.dumps({"a": 2}))
    with pytest.raises(RuntimeError, match="other settings"):
        FeatureCache(tmp_path, "x", {"a": 1}, ["value"])


def test_probe_cache(tmp_path, monkeypatch):
    video = write_video(tmp_path / "v.mp4", num_frames=6)
    calls = []
    real = cache_mod.probe
    monkeypatch.setattr(cache_mod, "probe", lambda p: calls.append(p) or real(p))
    pc = ProbeCache(tmp_path / "cache")
    a, b = pc(video), pc(video)
    assert len(calls) == 1 and np.array_equal(a.frame_times, b.frame_times) and a.duration == b.duration
    write_video(video, num_frames=8)  # the file changed: probed again
    assert pc(video).num_frames == 8 and len(calls) == 2


class Batched(Counting):
    """Model-like: batches of 3, loads in setup, one clip fails inside compute."""

    name = "batched"
    batch_size = 3

    def __init__(self, **kw):
        super().__init__(**kw)
        self.batches, self.events = [], []

    def setup(self):
        self.events.append("setup")

    def teardown(self):
        self.events.append("teardown")

    def prepare(self, clip, media):
        self.calls.append(clip.id)
        return clip.id

    def compute(self, prepared):
        self.batches.append(list(prepared))
        return [MediaError(None, "generation failed") if cid == "00004" else
                {"value": FeatureValue(np.full((4, 3), float(cid), np.float32))} for cid in prepared]


def test_batched_extractor_setup_only_when_needed(tmp_path):
    ex = Batched()
    summary, cache = run_extractor(ex, clips(5), tmp_path, progress=False)
    assert ex.batches == [["00001", "00002", "00003"], ["00004", "00005"]]
    assert ex.events == ["setup", "teardown"] and summary.done == 4 and summary.failed == 1
    assert cache.failures()[0]["reason"] == "generation failed" and not cache.is_done("00004")
    cached = Batched()
    run_extractor(cached, [c for c in clips(5) if c.id != "00004"], tmp_path, progress=False)
    assert cached.events == [] and cached.batches == []  # everything cached: no model is loaded


def test_dataset_folder_is_claimed_by_its_source(tmp_path):
    a = dataset_features_dir(tmp_path, "hume", {"data_root": "/data/a", "layout": "muse"})
    assert a == tmp_path / "features" / "hume"
    assert dataset_features_dir(tmp_path, "hume", {"layout": "muse", "data_root": "/data/a"}) == a
    with pytest.raises(ValueError, match="came from .*/data/a.* this run reads .*/data/b"):
        dataset_features_dir(tmp_path, "hume", {"data_root": "/data/b", "layout": "muse"})
    with pytest.raises(ValueError, match="not a safe file name"):
        dataset_features_dir(tmp_path, "../up", {})
