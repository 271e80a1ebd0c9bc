"""Face crops: the main face per frame, the full frame where none is found (recorded per frame).

The detector is OpenCV's bundled Haar cascade (works offline from a maintained package). OpenCV 5
stopped shipping the cascade files, hence `opencv-python-headless<5`. The main face is the largest
detection; boxes are widened by a margin and squared so the crop keeps the whole head.
"""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


@dataclasses.dataclass
class FaceCrops:
    """crops uint8 [N, size, size, 3]; found bool [N]; boxes int [N, 4] as x0, y0, x1, y1 (-1 when none)."""

    crops: np.ndarray
    found: np.ndarray
    boxes: np.ndarray


_IMPORT_LOCK = threading.Lock()


def _opencv():
    """cv2 with its `data` submodule, imported by one thread at a time: cv2's package __init__ replaces
    itself in sys.modules while it loads, so a second decoding thread importing it at the same moment could
    get the half-loaded module (seen as "module 'cv2' has no attribute 'data'")."""
    with _IMPORT_LOCK:
        # deferred: OpenCV
        import cv2
        import cv2.data  # noqa: F401 -- the cascade files' folder

        return cv2


class FaceDetector:
    """Largest frontal face per frame with OpenCV's Haar cascade."""

    def __init__(self, min_size_frac: float = 0.08, scale_factor: float = 1.1, min_neighbors: int = 5):
        cv2 = _opencv()
        path = Path(cv2.data.haarcascades) / CASCADE
        if not path.exists():
            raise RuntimeError(f"OpenCV ships no {CASCADE} at {path}: install opencv-python-headless<5")
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(str(path))
        self.min_size_frac = min_size_frac
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face in an RGB uint8 frame as (x0, y0, x1, y1), or None."""
        gray = self._cv2.cvtColor(np.ascontiguousarray(frame), self._cv2.COLOR_RGB2GRAY)
        side = int(min(gray.shape) * self.min_size_frac)
        faces = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side))
        if len(faces) == 0:
            return None
        x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        return int(x), int(y), int(x + w), int(y + h)


def square_box(box, width: int, height: int, margin: float) -> tuple[int, int, int, int]:
    """Widen a box by `margin` of its size on each side, make it square, clip to the frame."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = min(side, width, height)
    nx0 = int(round(min(max(cx - side / 2, 0), width - side)))
    ny0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return nx0, ny0, nx0 + int(side), ny0 + int(side)


def crop_faces(frames: np.ndarray, detector: FaceDetector, size: int = 224, margin: float = 0.2) -> FaceCrops:
    """Crop the main face of every frame to size x size; the whole frame (resized) where none is found."""
    # deferred: OpenCV
    import cv2

    n, h, w = frames.shape[:3]
    crops = np.empty((n, size, size, 3), np.uint8)
    found = np.zeros(n, bool)
    boxes = np.full((n, 4), -1, np.int32)
    for i, frame in enumerate(frames):
        box = detector.detect(frame)
        if box is not None:
            x0, y0, x1, y1 = square_box(box, w, h, margin)
            region = frame[y0:y1, x0:x1]
            found[i] = True
            boxes[i] = (x0, y0, x1, y1)
        else:
            region = frame
        crops[i] = cv2.resize(np.ascontiguousarray(region), (size, size), interpolation=cv2.INTER_AREA)
    return FaceCrops(crops=crops, found=found, boxes=boxes)
