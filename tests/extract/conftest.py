"""Fixtures shared by the extract tests: the miniature random-weight models, built once per session, and
`run_once`, which makes an expensive extraction run happen once per session even under pytest-xdist
(whose workers would otherwise each build their own copy of a module-scoped fixture)."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach for a hub

import pytest


@pytest.fixture(scope="session")
def shared_tmp(tmp_path_factory, worker_id) -> Path:
    """A folder of this test session that every xdist worker sees (the session's own temp dir without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@pytest.fixture(scope="session")
def run_once(shared_tmp) -> Callable[[str, Callable[[Path], None]], Path]:
    """`run_once(name, produce)`: `produce(folder)` runs in the first worker that asks; the others wait for it
    and get the same folder. A failed `produce` leaves no mark, so the next asker fails the same way."""

    def run(name: str, produce: Callable[[Path], None]) -> Path:
        folder, done = shared_tmp / name, shared_tmp / f"{name}.done"
        with open(shared_tmp / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                produce(folder)
                done.touch()
        return folder

    return run


@pytest.fixture(scope="session")
def tiny_models(run_once) -> Path:
    """A `tiny-models/` folder holding every miniature model (what `--models tiny` builds)."""
    from extract.extractors.model_choice import TINY_DIR, ensure_tiny_models

    return run_once("tiny-cache", ensure_tiny_models) / TINY_DIR


@pytest.fixture(scope="session")
def tiny_cache(tiny_models):
    """Make a cache dir whose `tiny-models/` is the session's (so `--models tiny` builds nothing)."""
    from extract.extractors.model_choice import TINY_DIR

    def make(cache_dir: Path) -> Path:
        cache_dir.mkdir(parents=True, exist_ok=True)
        link = cache_dir / TINY_DIR
        if not link.exists():
            link.symlink_to(tiny_models, target_is_directory=True)
        return cache_dir

    return make
