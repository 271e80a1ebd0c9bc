"""The pixels and shipped extractors: values against references and hand-made CSVs, bad input, missing CSVs."""
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from extract.cache import ProbeCache
from extract.errors import FeatureFileError
from extract.extractors import Media, Missing, PixelsExtractor, ShippedExtractor, run_extractor
from extract.extractors.pixels import area_matrix, gray_thumbnails
from extract.extractors.shipped import read_feature_csv, resample_nearest
from extract.media import sample_frames
from tests.extract.media_factory import write_video
from tfds_hume.manifest import load_value
from tfds_hume.records import ClipRecord

DATA = Path(__file__).resolve().parents[1] / "data"
MEDIA = DATA / "media"
SHIPPED = DATA / "shipped"


def record(cid, video, **csvs):
    return ClipRecord(id=cid, split="train", labels=np.zeros(7, np.float32), video=video, feature_csvs=csvs)


def media(tmp_path):
    return Media(probe=ProbeCache(tmp_path / "cache"))


@pytest.fixture(scope="module")
def video20(tmp_path_factory):
    """20 frames at 10 fps: frames at 0.0, 0.1, ... 1.9 s."""
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", num_frames=20, fps=10)


# --- pixels ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("h, w, out_h, out_w", [(360, 640, 12, 12), (540, 960, 7, 11), (5, 3, 2, 2)])
def test_area_average_matches_opencv(h, w, out_h, out_w):
    img = np.random.default_rng(0).random((h, w)).astype(np.float32)
    ours = area_matrix(out_h, h) @ img.astype(np.float64) @ area_matrix(out_w, w).T
    ref = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)
    assert np.abs(ours - ref).max() < 1e-5
    assert np.allclose(area_matrix(out_h, h).sum(axis=1), 1.0)


def test_pixels_on_a_real_video(tmp_path):
    clip = record("single", MEDIA / "single_face.mp4")
    ex = PixelsExtractor(num_frames=32, size=12)
    out = ex.prepare(clip, media(tmp_path))["pixels"]
    assert out.value.shape == (32, 144) and out.value.dtype == np.float32 and out.frame_mask is None
    assert 0.0 <= out.value.min() and out.value.max() <= 1.0 and out.value.std() > 0.01
    # Reference: OpenCV area resize of the BT.601 luma of the same sampled frames.
    frames = sample_frames(clip.video, 32).frames
    luma = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255
    ref = np.stack([cv2.resize(g, (12, 12), interpolation=cv2.INTER_AREA) for g in luma]).reshape(32, -1)
    assert np.abs(out.value - ref).max() < 1e-5
    # Deterministic: a second extraction (fresh probe) gives the same bytes.
    again = PixelsExtractor(num_frames=32, size=12).prepare(clip, media(tmp_path / "other"))["pixels"]
    assert np.array_equal(out.value, again.value)


def test_pixels_on_a_flat_short_clip_notes_repeats(tmp_path, video20):
    m = media(tmp_path)
    out = PixelsExtractor(num_frames=32, size=4).prepare(record("c", video20), m)["pixels"]
    assert out.value.shape == (32, 16)
    assert np.allclose(out.value, out.value[:, :1], atol=1 / 255)  # flat frames stay flat
    assert len(np.unique(out.value[:, 0])) == 20 and np.all(np.diff(out.value[:, 0]) >= 0)
    assert m.notes and "20 distinct frames" in m.notes[0]["note"]
    assert gray_thumbnails(np.zeros((2, 6, 6, 3), np.uint8), 3).shape == (2, 9)


def test_pixels_settings_change_the_cache_folder(tmp_path, video20):
    clip = [record("c", video20)]
    _, c1 = run_extractor(PixelsExtractor(size=4), clip, tmp_path, progress=False)
    _, c2 = run_extractor(PixelsExtractor(size=6), clip, tmp_path, progress=False)
    assert c1.folder != c2.folder and c1.folder.name.startswith("pixels-")
    assert load_value(c2.files("c")["pixels"], PixelsExtractor(size=6).specs()["pixels"])[0].shape == (32, 36)


# --- shipped --------------------------------------------------------------------------------------

def test_read_hand_made_csv():
    times, values = read_feature_csv(SHIPPED / "fau_regular.csv")
    assert np.allclose(times, [0, .25, .5, .75, 1.0, 1.25, 2.0])
    assert values.shape == (7, 2) and values.dtype == np.float32 and values[6, 1] == 16.0


def test_shipped_resampled_to_sampled_frames(tmp_path, video20):
    ex = ShippedExtractor("FAU", ["AU01_r", "AU02_r"], num_frames=4)
    assert ex.key == "fau" and ex.name == "shipped-fau" and ex.specs()["fau"].source == "shipped:FAU"
    # Frames 0.0, 0.6, 1.3, 1.9 s; see tests/data/shipped/README.md for the expected rows.
    out = ex.prepare(record("c", video20, FAU=SHIPPED / "fau_regular.csv"), media(tmp_path))["fau"]
    assert np.array_equal(out.value, np.array([[0, 10], [2, 12], [5, 15], [6, 16]], np.float32))
    assert out.frame_mask.tolist() == [True, True, True, True]
    m = media(tmp_path)
    out = ex.prepare(record("c", video20, FAU=SHIPPED / "fau_gaps.csv"), m)["fau"]
    assert np.array_equal(out.value, np.array([[0, 10], [1, 11], [3, 13], [3, 13]], np.float32))
    assert out.frame_mask.tolist() == [True, False, True, False]
    assert "2 of 4 frames" in m.notes[0]["note"]


def test_resample_nearest_ties_go_to_the_earlier_row():
    v, mask = resample_nearest(np.array([0.0, 1.0]), np.array([[1.0], [2.0]], np.float32), np.array([0.5, 0.51]))
    assert v[:, 0].tolist() == [1.0, 2.0] and mask.all()


def test_clip_without_csv_is_missing(tmp_path, video20):
    ex = ShippedExtractor("FAU", ["AU01_r", "AU02_r"], num_frames=4)
    out = ex.prepare(record("c", video20), media(tmp_path))
    assert isinstance(out["fau"], Missing) and "no FAU CSV" in out["fau"].reason


def test_extractors_found_from_records(video20):
    recs = [record("a", video20, FAU=SHIPPED / "fau_regular.csv"),
            record("b", video20, VGGFace2=SHIPPED / "fau_gaps.csv")]
    exs = ShippedExtractor.for_records(recs, num_frames=8)
    assert [e.key for e in exs] == ["fau", "vggface2"] and exs[0].columns == ["AU01_r", "AU02_r"]


BAD = {
    "cells": ("timestamp,File_ID,a,b\n0,[x],1,2\n100,[x],1\n", r"line 3: 3 cells, the header has 4"),
    "number": ("timestamp,File_ID,a,b\n0,[x],1,2\n100,[x],1,2\n200,[x],oops,2\n",
               r"line 4: column 3 \(a\) is not a number: 'oops'"),
    "time": ("timestamp,File_ID,a\n0,[x],1\n100,[x],1\n50,[x],1\n", r"line 4: timestamp 50 ms does not increase"),
    "nan": ("timestamp,File_ID,a\n0,[x],nan\n", r"line 2: non-finite"),
    "header": ("time,File_ID,a\n0,[x],1\n", r"line 1: expected `timestamp,File_ID,<features>` \(timestamp and "
                                            r"File_ID in either order\) and at least one feature column"),
    "no_features": ("File_ID,timestamp\n[x],0\n", r"line 1: expected .* at least one feature column"),
    "no_id": ("timestamp,AU01_r,AU02_r\n0,1,2\n", r"line 1: expected `timestamp,File_ID,<features>`"),
    "one_column": ("timestamp\n0\n", r"line 1: expected"),
    "two_times": ("timestamp,timestamp,a\n0,0,1\n", r"line 1: expected"),
    "header_only": ("timestamp,File_ID,a\n", r"line 2: no data rows after the header"),
    "zero_bytes": ("", r"line 1: empty file"),
    "blank": ("\n\n", r"line 1: empty file"),
    "not_utf8": ("timestamp,File_ID,a\n0,[x],1\n1,[x],\udcff\n", r"line \d: not UTF-8 text"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_csv_names_file_and_line(tmp_path, kind):
    text, message = BAD[kind]
    path = tmp_path / f"bad_{kind}.csv"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(FeatureFileError, match=rf"bad_{kind}\.csv: {message}"):
        read_feature_csv(path)


def test_bad_csv_fails_the_clip_and_the_run_goes_on(tmp_path, video20):
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD["number"][0].replace("a,b", "AU01_r,AU02_r"))
    other = tmp_path / "other_columns.csv"
    shutil.copy(SHIPPED / "fau_regular.csv", other)
    other.write_text(other.read_text().replace("AU02_r", "AU04_r"))
    recs = [record("good", video20, FAU=SHIPPED / "fau_regular.csv"), record("bad", video20, FAU=bad),
            record("cols", video20, FAU=other), record("none", video20)]
    ex = ShippedExtractor.for_records(recs, num_frames=4)[0]
    summary, cache = run_extractor(ex, recs, tmp_path / "cache", progress=False)
    assert summary.done == 2 and summary.failed == 2 and summary.missing == 1
    fails = {f["id"]: f for f in map(json.loads, (cache.folder / "failures.jsonl").read_text().splitlines())}
    assert fails["bad"]["file"] == str(bad) and "line 4" in fails["bad"]["reason"]
    assert "feature columns differ" in fails["cols"]["reason"]
    assert set(cache.files("good")) == {"fau"} and cache.missing("none") == {"fau": "no FAU CSV for clip none"}


def test_metadata_columns_in_either_order(tmp_path):
    """MuSe's code reads features from column 2 on and does not fix the order of timestamp and File_ID."""
    swapped = tmp_path / "swapped.csv"
    lines = (SHIPPED / "fau_regular.csv").read_text().splitlines()
    swapped.write_text("\n".join(",".join([c[1], c[0], *c[2:]]) for c in (line.split(",") for line in lines)) + "\n")
    t0, v0 = read_feature_csv(SHIPPED / "fau_regular.csv")
    t1, v1 = read_feature_csv(swapped, ["AU01_r", "AU02_r"])
    assert np.array_equal(t0, t1) and np.array_equal(v0, v1)
    bad = tmp_path / "bad_time.csv"
    bad.write_text("File_ID,TimeStamp,a\n[x],0,1\n[x],soon,2\n")
    with pytest.raises(FeatureFileError, match=r"line 3: column 2 \(timestamp\) is not a number: 'soon'"):
        read_feature_csv(bad)


def test_shipped_folder_names_resolve_to_dataset_keys(video20):
    recs = [record("a", video20, FAUs=SHIPPED / "fau_regular.csv", eGeMAPS=SHIPPED / "fau_gaps.csv",
                   DeepSpectrum=SHIPPED / "fau_gaps.csv", VGGFace2=SHIPPED / "fau_gaps.csv")]
    exs = {e.key: e for e in ShippedExtractor.for_records(recs, num_frames=4)}
    assert sorted(exs) == ["deepspectrum", "egemaps", "fau", "vggface2"]
    spec = exs["fau"].specs()["fau"]
    assert exs["fau"].name == "shipped-fau" and spec.source == "shipped:FAUs" and spec.params["feature"] == "FAUs"


@pytest.mark.parametrize("first", ["zero_bytes", "header_only", "number", "wide"])
def test_a_bad_first_clip_fails_only_itself(tmp_path, video20, first):
    """The columns come from the usual header, so a broken CSV fails its own clip in any position."""
    bad = tmp_path / "first.csv"
    if first == "wide":  # a readable header with other columns, outvoted by the clips after it
        bad.write_text("timestamp,File_ID,AU01_r,AU02_r,AU04_r\n0,[x],1,2,3\n")
    else:
        bad.write_bytes(BAD[first][0].replace("a,b", "AU01_r,AU02_r").encode())
    recs = [record("first", video20, FAU=bad), record("b", video20, FAU=SHIPPED / "fau_regular.csv"),
            record("c", video20, FAU=SHIPPED / "fau_gaps.csv")]
    [ex] = ShippedExtractor.for_records(recs, num_frames=4)
    assert ex.columns == ["AU01_r", "AU02_r"]
    summary, cache = run_extractor(ex, recs, tmp_path / "cache", progress=False)
    assert summary.done == 2 and summary.failed == 1
    [fail] = map(json.loads, (cache.folder / "failures.jsonl").read_text().splitlines())
    assert fail["id"] == "first" and fail["file"] == str(bad) and re.search(r"line \d+: ", fail["reason"])


def test_no_readable_header_at_all_is_bad_input(tmp_path, video20):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"feats/FAUs/: no CSV has a readable header.*empty.csv: line 1: empty file"):
        ShippedExtractor.for_records([record("a", video20, FAUs=empty)])
