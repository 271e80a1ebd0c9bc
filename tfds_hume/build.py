"""Pack an extraction export into the TFDS dataset `hume_reaction/<config>` (no TensorFlow needed).

    python -m tfds_hume.build EXPORT_DIR [--config demo] [--data-dir D]

is the TF-free twin of `tfds build tfds_hume/hume_reaction --config demo --manual_dir EXPORT_DIR
--data_dir D` (the `tfds` command itself imports TensorFlow).

Rebuilds are atomic, kill -9 included. `<data_dir>/hume_reaction/<config>/<version>` is a symbolic link to a
hidden sibling folder `.<version>-<stamp>` holding the data. A build writes into `.building-<stamp>` (TFDS
skips hidden folders), moves the finished version beside the live one and points the link at it with one
rename, so a reader finds the previous version or the new one, complete, at every instant. Builds of one
config take turns (a lock that dies with its process), and each removes what an interrupted one left.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_hume import paths
from tfds_hume.cli_errors import cli_main
from tfds_hume.hume_reaction import Builder, HumeReactionConfig
from tfds_hume.manifest import Manifest

# Hidden entries of a config folder, by what they hold. `.replaced-` is the backup of the former scheme.
_STAGING, _LINK, _TRASH, _FORMER = ".building-", ".link-", ".trash-", ".replaced-"
# Test hook: a build prints "paused at <point>" and sleeps when this names the point it reached, so that a
# test can kill -9 it exactly there.
PAUSE_ENV = "TFDS_HUME_TEST_PAUSE_AT"


def build(export_dir: str | os.PathLike, *, config: str | HumeReactionConfig = "demo",
          data_dir: str | os.PathLike | None = None, overwrite: bool = True) -> Path:
    """Build `hume_reaction/<config>` from `<export_dir>/manifest.json`; return the dataset's version path
    (`<data_dir>/hume_reaction/<config>/<version>`, a link to the folder that holds it).

    An existing dataset of the same config and version stays readable until the new one replaces it
    (`overwrite=True`) and stays as it is if the build fails; with `overwrite=False` it is kept and returned.
    """
    export_dir = Path(export_dir)
    Manifest.read(export_dir)  # fail early with the manifest's own error, before touching data_dir
    data_dir = paths.data_dir(data_dir)
    name = config if isinstance(config, str) else config.name
    config_dir = data_dir / Builder.name / name
    target = config_dir / str(Builder.VERSION)
    config_dir.mkdir(parents=True, exist_ok=True)
    with _locked(config_dir):
        _recover(target)
        if target.exists() and not overwrite:
            return target
        stamp = uuid.uuid4().hex[:8]
        staging = config_dir / f"{_STAGING}{stamp}"
        if not sys.stderr.isatty():
            # TFDS draws its bars whatever the output is (tfds.display_progress_bar); keep them out of logs,
            # as tqdm's own `disable=None` does for ours.
            tfds.disable_progress_bar()
        try:
            staging.mkdir()
            builder = Builder(config=config, data_dir=staging, manifest=export_dir)
            # TFDS would announce the staging folder ("prepared to .building-*; subsequent calls will reuse
            # this data"), wrong once the version moves; callers print where the dataset is.
            builder._log_download_bytes = builder._log_download_done = lambda: None  # pylint: disable=protected-access
            _pause("staging")
            # Nothing is downloaded; the download dir lives in the staging folder so that it goes with it.
            builder.download_and_prepare(
                download_dir=staging / "downloads",
                download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(export_dir)))
            _pause("built")
            version_dir = config_dir / f".{target.name}-{stamp}"
            os.replace(builder.data_dir, version_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _swap(target, version_dir, stamp)
    return target


def _pause(point: str) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        print(f"paused at {point}", flush=True)
        time.sleep(600)


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on `folder`. The kernel releases it when the process ends, however it ends, so
    leftovers seen while holding it belong to no running build."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _swap(target: Path, version_dir: Path, stamp: str) -> None:
    """Point the link `target` at `version_dir` with one rename, then remove the version it pointed at."""
    link = target.with_name(f"{_LINK}{stamp}")
    os.symlink(version_dir.name, link)  # relative: the data dir can be moved or copied whole
    _pause("linked")
    old = None
    if target.is_symlink():
        old = target.with_name(os.readlink(target))
    elif target.exists():
        # A plain folder (written by `tfds build` or before links were used) cannot be replaced by a link in
        # one rename: it is moved aside first. A kill between the two renames leaves no version at `target`
        # until the next build, which finishes the swap from the pending link.
        old = target.with_name(f".{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        _pause("moved-aside")
    os.replace(link, target)  # rename(2) over a link or nothing is atomic
    _pause("swapped")
    if old is not None and old != version_dir:
        _discard(old)


def _recover(target: Path) -> None:
    """Finish the swap of an interrupted build, then remove every hidden entry the live version does not use."""
    config_dir = target.parent
    if not os.path.lexists(target):
        pending = [p for p in config_dir.glob(f"{_LINK}*") if p.is_symlink() and p.exists()]
        # The former scheme moved the live version to `.replaced-*` while building and lost it when killed;
        # with no version at `target` that copy is intact (it was only ever renamed).
        former = [p for p in config_dir.glob(f"{_FORMER}{target.name}-*") if (p / "dataset_info.json").is_file()]
        if pending or former:
            os.replace((pending or former)[0], target)
    live = os.readlink(target) if target.is_symlink() else None
    for entry in config_dir.iterdir():
        if entry.name.startswith((_STAGING, _LINK, _TRASH, _FORMER, f".{target.name}-")) and entry.name != live:
            _discard(entry)


def _discard(path: Path) -> None:
    """Remove a file, link or folder; a folder is renamed to trash first so that a half-removed version never
    keeps a version's name."""
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    if not path.name.startswith((_STAGING, _TRASH)):
        trash = path.with_name(f"{_TRASH}{uuid.uuid4().hex[:8]}")
        os.replace(path, trash)
        path = trash
    shutil.rmtree(path)


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfds_hume.build", description=__doc__.splitlines()[0])
    p.add_argument("export_dir", help="folder holding manifest.json (written by `python -m extract`)")
    p.add_argument("--config", default="demo", choices=sorted(Builder.builder_configs),
                   help="builder config: which of the export's features it keeps (default demo; full keeps all)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: $TFDS_DATA_DIR or TFDS's)")
    p.add_argument("--keep-existing", action="store_true", help="do not replace an existing build")
    args = p.parse_args(argv)
    out = build(args.export_dir, config=args.config, data_dir=args.data_dir, overwrite=not args.keep_existing)
    info = tfds.builder_from_directory(os.fspath(out)).info
    counts = ", ".join(f"{k} {v.num_examples}" for k, v in info.splits.items())
    print(f"{info.full_name} ({counts}) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
