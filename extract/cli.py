"""`python -m extract`: extract features from a dataset (or the built-in synthetic set) and build the TFDS dataset.

Without --data-root it generates the synthetic reaction-video set (labelled synthetic everywhere) into
the cache and uses that. Caches: --cache-dir, else $ERI_CACHE_DIR, else ~/.cache/eri_jax. TFDS output:
--data-dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from extract import pipeline
from extract.configs import CONFIGS, default_config
from tfds_hume import paths

LAYOUTS = ("auto", "muse", "abaw5", "csv")
SYNTHETIC_LAYOUTS = ("muse", "abaw5")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m extract", description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=None,
                   help="dataset folder (MuSe-2022, ABAW5 or generic CSV layout); default: the synthetic set")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="dataset layout (default: detect); for the synthetic set: muse (auto) or abaw5")
    p.add_argument("--data-dir", type=Path, default=None, help="TFDS data dir for the built dataset")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache, synthetic set and exports")
    p.add_argument("--config", choices=sorted(CONFIGS), default=None,
                   help="feature set (default: demo for the synthetic set, shipped for real data)")
    p.add_argument("--synthetic-clips", type=int, default=60, metavar="N",
                   help="synthetic clips per split (default 60)")
    p.add_argument("--synthetic-faults", action="store_true",
                   help="add the synthetic set's broken clips (truncated, empty, no audio) to see them handled")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic set (default 0)")
    p.add_argument("--limit", type=int, default=None, metavar="K", help="use only the first K clips of each split")
    p.add_argument("--num-frames", type=int, default=32, help="sampled frames per clip (default 32, as the paper)")
    p.add_argument("--pixel-size", type=int, default=12, help="side of the pixels feature's thumbnails (default 12)")
    p.add_argument("--no-build", action="store_true", help="stop after writing the export (manifest.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    if args.synthetic_clips < 1:
        raise SystemExit("--synthetic-clips must be at least 1")
    cache_dir = paths.cache_dir(args.cache_dir)
    data_dir = paths.data_dir(args.data_dir)
    progress = not args.no_progress
    from tfds_hume.layouts import read_layout  # after argument errors: keeps `--help` fast

    if args.data_root is None:
        layout = "muse" if args.layout == "auto" else args.layout
        if layout not in SYNTHETIC_LAYOUTS:
            raise SystemExit(f"the synthetic set comes in layouts {SYNTHETIC_LAYOUTS}, not {layout!r}")
        root = pipeline.ensure_synthetic(cache_dir, layout=layout, clips_per_split=args.synthetic_clips,
                                         seed=args.seed, faults=args.synthetic_faults, progress=progress)
        synthetic = True
        dataset = pipeline.synthetic_name(layout, args.synthetic_clips, args.seed, args.synthetic_faults)
    else:
        root = args.data_root
        if not root.is_dir():
            raise SystemExit(f"--data-root {root}: no such folder")
        for folder, what in ((cache_dir, "cache dir"), (data_dir, "TFDS data dir")):
            try:
                pipeline.check_outside(root, folder, what)
            except ValueError as e:
                raise SystemExit(str(e)) from None
        layout, synthetic, dataset = args.layout, False, pipeline.dataset_name(root)
    try:
        data = read_layout(root, layout)
        result = pipeline.run(
            data, config=args.config or default_config(synthetic), cache_dir=cache_dir, data_dir=data_dir,
            dataset=dataset, synthetic=synthetic, limit=args.limit, build=not args.no_build, progress=progress,
            num_frames=args.num_frames, pixel_size=args.pixel_size)
    except ValueError as e:  # bad input (LayoutError, config mismatch, nothing usable): a message, no trace
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(pipeline.format_summary(result.summary))
    print(f"  summary: {result.export_dir / pipeline.SUMMARY_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
