"""Pack an extraction export into the TFDS dataset `hume_reaction/<config>` (no TensorFlow needed).

    python -m tfds_hume.build EXPORT_DIR [--config demo] [--data-dir D]

is the TF-free twin of `tfds build tfds_hume/hume_reaction --config demo --manual_dir EXPORT_DIR
--data_dir D` (the `tfds` command itself imports TensorFlow).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import tensorflow_datasets as tfds

from tfds_hume import paths
from tfds_hume.cli_errors import cli_main
from tfds_hume.hume_reaction import Builder, HumeReactionConfig
from tfds_hume.manifest import Manifest


def build(export_dir: str | os.PathLike, *, config: str | HumeReactionConfig = "demo",
          data_dir: str | os.PathLike | None = None, overwrite: bool = True) -> Path:
    """Build `hume_reaction/<config>` from `<export_dir>/manifest.json`; return the dataset's version folder.

    An existing dataset of the same config and version is replaced (`overwrite=True`), and restored if the
    build fails; with `overwrite=False` it is kept and returned as is.
    """
    export_dir = Path(export_dir)
    Manifest.read(export_dir)  # fail early with the manifest's own error, before touching data_dir
    data_dir = paths.data_dir(data_dir)
    name = config if isinstance(config, str) else config.name
    target = data_dir / Builder.name / name / str(Builder.VERSION)
    backup = None
    if target.exists():
        if not overwrite:
            return target
        backup = target.with_name(f".replaced-{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, backup)
    try:
        builder = Builder(config=config, data_dir=data_dir, manifest=export_dir)
        with tempfile.TemporaryDirectory() as scratch:  # nothing is downloaded: keep data_dir clean
            builder.download_and_prepare(
                download_dir=scratch,
                download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(export_dir)))
    except BaseException:
        if backup is not None:
            if target.exists():
                shutil.rmtree(target)
            os.replace(backup, target)
        raise
    if backup is not None:
        shutil.rmtree(backup)
    return Path(builder.data_dir)


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
