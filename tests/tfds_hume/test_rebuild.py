"""`tfds_hume.build` rebuilds atomically: a build killed with SIGKILL at any point of the swap leaves a complete
version readable, and the next build removes what the killed one left."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.tfds_hume.tiny_export import EMOTIONS, make_export
from tfds_hume.build import PAUSE_ENV, build

REPO = Path(__file__).resolve().parents[2]
NAME = "hume_reaction/full"


def _train_labels(data_dir: Path) -> np.ndarray:
    source = tfds.data_source(NAME, data_dir=os.fspath(data_dir), split="train")
    return np.stack([ex["labels"] for ex in source.__getitems__(list(range(len(source))))])


def _relabel(export: Path, manifest, value: float) -> None:
    for c in manifest.clips:
        if c.split == "train":
            c.labels = [value] * len(EMOTIONS)
    manifest.write(export)


def _killed_build(export: Path, data_dir: Path, point: str) -> None:
    """Run `python -m tfds_hume.build` in a child that pauses at `point`, then kill -9 it there."""
    env = dict(os.environ, PYTHONPATH=os.fspath(REPO), JAX_PLATFORMS="cpu", **{PAUSE_ENV: point})
    proc = subprocess.Popen([sys.executable, "-m", "tfds_hume.build", os.fspath(export), "--config", "full",
                             "--data-dir", os.fspath(data_dir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # blocks until the child reaches `point` (or ends)
            if line.startswith("paused at"):
                break
        assert line.strip() == f"paused at {point}", proc.stderr.read()[-2000:] if proc.poll() else line
        assert not _can_lock(data_dir)  # another build would wait for this one
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
        assert _can_lock(data_dir)  # the kernel released the lock with the process
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def _can_lock(data_dir: Path) -> bool:
    fd = os.open(data_dir / "hume_reaction" / "full", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _entries(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "hume_reaction" / "full").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("point, plain, survivor", [
    ("staging", False, 0.25),      # builder made, nothing written yet
    ("built", False, 0.25),        # new version complete in the staging folder
    ("linked", False, 0.25),       # new version beside the live one, link to it not yet in place
    ("swapped", False, 0.75),      # link points at the new version, old one not yet removed
    ("linked", True, 0.25),        # the live version is a plain folder (tfds build, earlier scheme)
    ("moved-aside", True, None),   # ... moved aside: the one instant with no version, repaired next run
])
def test_killed_rebuild_leaves_a_readable_version_and_next_build_cleans_up(tmp_path, point, plain, survivor):
    export, data_dir = tmp_path / "export", tmp_path / "tfds"
    manifest, _ = make_export(export)
    _relabel(export, manifest, 0.25)
    live = build(export, config="full", data_dir=data_dir)
    if plain:  # replace the link by the folder it points at
        folder = live.resolve()
        live.unlink()
        os.replace(folder, live)
    _relabel(export, manifest, 0.75)

    _killed_build(export, data_dir, point)

    if survivor is None:
        assert not os.path.lexists(live)
    else:
        # A complete version, old or new, read the way every user reads it.
        assert (_train_labels(data_dir) == survivor).all()
    assert len(_entries(data_dir)) > (1 if plain else 2)  # the killed build left something behind

    _relabel(export, manifest, 0.5)
    assert build(export, config="full", data_dir=data_dir) == live
    assert (_train_labels(data_dir) == 0.5).all()
    # Only the link and the one folder it points at remain.
    assert live.is_symlink()
    assert _entries(data_dir) == sorted(["1.0.0", os.readlink(live)])


def test_keep_existing_finishes_an_interrupted_swap(tmp_path):
    """The pending link of a build killed between moving a plain folder aside and linking is put in place
    by the next build, even one that keeps the existing dataset."""
    export, data_dir = tmp_path / "export", tmp_path / "tfds"
    manifest, _ = make_export(export)
    _relabel(export, manifest, 0.25)
    live = build(export, config="full", data_dir=data_dir)
    folder = live.resolve()
    live.unlink()
    os.replace(folder, live)
    _relabel(export, manifest, 0.75)
    _killed_build(export, data_dir, "moved-aside")
    assert build(export, config="full", data_dir=data_dir, overwrite=False) == live
    assert (_train_labels(data_dir) == 0.75).all()
    assert _entries(data_dir) == sorted(["1.0.0", os.readlink(live)])


def test_a_version_lost_by_the_former_scheme_is_restored(tmp_path):
    """Before links, a rebuild moved the live version to `.replaced-<version>-<hex>` and a kill left it there,
    with nothing at `<version>`: the next build puts it back (and keeps it, with overwrite=False)."""
    export, data_dir = tmp_path / "export", tmp_path / "tfds"
    manifest, _ = make_export(export)
    _relabel(export, manifest, 0.25)
    live = build(export, config="full", data_dir=data_dir)
    folder = live.resolve()
    live.unlink()
    os.replace(folder, live.with_name(".replaced-1.0.0-0123abcd"))
    assert build(export, config="full", data_dir=data_dir, overwrite=False) == live
    assert (_train_labels(data_dir) == 0.25).all()
    assert _entries(data_dir) == ["1.0.0"] and not live.is_symlink()  # as the former scheme left it
