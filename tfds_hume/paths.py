"""Default folders: where caches and TFDS datasets go unless the user says otherwise."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Extraction caches: `explicit`, else $ERI_CACHE_DIR, else ~/.cache/eri_jax. Never inside a data root."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("ERI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "eri_jax"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """TFDS data dir: `explicit`, else $TFDS_DATA_DIR, else TFDS's default ~/tensorflow_datasets."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("TFDS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / "tensorflow_datasets"
