"""Face crops on the real fixture videos (counts from DESIGN.md, every 10th decoded frame)."""
from pathlib import Path

import av
import numpy as np
import pytest

from extract.faces import FaceDetector, crop_faces, square_box

MEDIA = Path(__file__).resolve().parents[1] / "data" / "media"


def every_nth_frame(path, n=10):
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.stack(frames[::n])


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.mark.parametrize("name, lo, hi", [
    ("single_face.mp4", 8, 8),       # one face throughout
    ("no_face.mp4", 0, 1),           # no face; the cascade may fire once falsely
    ("face_noface.mov", 5, 11),      # face first, then none (HEVC)
])
def test_faces_found_per_frame(detector, name, lo, hi):
    frames = every_nth_frame(MEDIA / name)
    out = crop_faces(frames, detector, size=64)
    assert out.crops.shape == (len(frames), 64, 64, 3) and out.crops.dtype == np.uint8
    assert lo <= out.found.sum() <= hi
    assert np.all((out.boxes[:, 0] >= 0) == out.found)


def test_face_then_no_face_order(detector):
    frames = every_nth_frame(MEDIA / "face_noface.mov")
    found = crop_faces(frames, detector, size=32).found
    half = len(found) // 2
    assert found[:half].mean() > found[half:].mean()


def test_no_face_gives_whole_frame(detector):
    frame = np.full((90, 120, 3), 127, np.uint8)
    frame[:, :60] = 0
    out = crop_faces(frame[None], detector, size=30)
    assert not out.found[0]
    # the whole frame, resized: left half dark, right half grey
    assert out.crops[0, :, :10].mean() < 5 and out.crops[0, :, -10:].mean() > 120


def test_square_box_stays_inside_frame():
    for box in [(0, 0, 10, 20), (90, 50, 119, 89), (40, 30, 60, 50)]:
        x0, y0, x1, y1 = square_box(box, 120, 90, margin=0.3)
        assert 0 <= x0 < x1 <= 120 and 0 <= y0 < y1 <= 90
        assert x1 - x0 == y1 - y0


RACE = """
import concurrent.futures
from extract.faces import FaceDetector
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda _: FaceDetector(), range(8)))
"""


def test_decoding_threads_build_detectors_at_once():
    """In a fresh interpreter, 8 decoding threads each build their detector (vit.py keeps one per thread):
    OpenCV's first import must not hand a half-loaded cv2 to a second thread (it did 9 times in 10 before
    `faces._opencv` took a lock: "module 'cv2' has no attribute 'data'")."""
    import subprocess
    import sys

    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", RACE], cwd=Path(__file__).resolve().parents[2],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
