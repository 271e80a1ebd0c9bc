"""`python -m extract`: extract features from a dataset (or the built-in synthetic set) and build the TFDS dataset.

Without --data-root it generates the synthetic reaction-video set (labelled synthetic everywhere) into
the cache and uses that. Caches: --cache-dir, else $ERI_CACHE_DIR, else ~/.cache/eri_jax. TFDS output:
--data-dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets.

Config `full` runs the paper's models (see `extract.configs`). `--models real` (default) uses the
Hugging Face ids of `extract.models.registry` from the local HF cache (or the hub when online), or
the folders given with the per-model flags; `--models tiny` builds random miniature models once under
<cache-dir>/tiny-models/ and works offline (every feature is then marked random_weights).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from extract import pipeline
from extract.configs import (
    BATCH_DEFAULTS,
    CONFIGS,
    MAX_NEW_TOKENS,
    MODEL_EXTRACTORS,
    TINY_MAX_NEW_TOKENS,
    ModelOptions,
    default_config,
)
from extract.extractors.model_choice import MODES, ModelRequest
from extract.extractors.query import QUERY_PROMPT
from tfds_hume import paths
from tfds_hume.cli_errors import cli_main

LAYOUTS = ("auto", "muse", "abaw5", "csv")
SYNTHETIC_LAYOUTS = ("muse", "abaw5")
# The flag per model kind, as in `extract.models.registry` (kept here so `--help` and the offline switch
# come before torch and transformers are imported; a test checks they agree).
MODEL_FLAGS = {"vit": "--vit-model", "wavlm": "--wavlm-model", "clip": "--clip-model", "roberta": "--text-model",
               "vllava": "--vllava-model", "llava": "--llava-model", "omni": "--omni-model"}
BATCH_UNITS = {"vit": "face crops", "wavlm": "audio windows", "clip": "frames", "text": "texts (RoBERTa)",
               "vllava": "videos", "llava": "frames", "omni": "clips (Qwen2.5-Omni)"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m extract", description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=None,
                   help="dataset folder (MuSe-2022, ABAW5 or generic CSV layout); default: the synthetic set")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="dataset layout (default: detect); for the synthetic set: muse (auto) or abaw5")
    p.add_argument("--emotions", default=None, metavar="A,B,C",
                   help="the label columns the dataset must hold, in this order (default: the 7 Hume-Reaction "
                        "emotions for muse and abaw5, the header's for csv)")
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
    p.add_argument("--extractors", default=None, metavar="A,B",
                   help=f"run only these extractors of the config (model ones: {', '.join(MODEL_EXTRACTORS)}; "
                        "also pixels, shipped); the export then holds only their features")
    p.add_argument("--shard", default=None, metavar="i/N",
                   help="run shard i of N (from 0) into the shared cache, no export; afterwards run without "
                        "--shard to export and build")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="threads decoding and cropping ahead of the models (default min(4, CPUs); 0: none)")
    r = p.add_argument_group("Ray (pip install '.[ray]')")
    r.add_argument("--ray", action="store_true",
                   help="run the extractors on Ray Data: decoding as CPU tasks, each model extractor as an actor "
                        "pool; the same cache entries as a plain run. Without --ray-address: Ray embedded here")
    r.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join this Ray cluster (host:port of `ray start --head`, or auto); implies --ray")
    r.add_argument("--ray-actors", type=int, default=None, metavar="N",
                   help="actors per model extractor (default: one per GPU of the cluster; 1 without GPUs)")
    m = p.add_argument_group("models (config full)")
    m.add_argument("--models", choices=MODES, default="real",
                   help="real: the paper's checkpoints (default); tiny: random miniature models, offline")
    for kind, flag in MODEL_FLAGS.items():
        m.add_argument(flag, dest=f"model_{kind}", default=None, metavar="ID|PATH",
                       help=f"{kind} model: Hugging Face id or local folder (default: the paper's)")
    m.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                   help="where the models run (auto: cuda when available); bfloat16 on cuda, float32 on cpu")
    for key, default in BATCH_DEFAULTS.items():
        m.add_argument(f"--batch-size-{key}", type=int, default=default, metavar="N",
                       help=f"{BATCH_UNITS[key]} per {key} forward pass (default {default})")
    m.add_argument("--max-new-tokens", type=int, default=None,
                   help=f"longest Video-LLaVA / LLaVA description, in tokens (default {MAX_NEW_TOKENS}; "
                        f"{TINY_MAX_NEW_TOKENS} with --models tiny)")
    m.add_argument("--query-max-new-tokens", type=int, default=None,
                   help="longest answer to the querying prompt, in tokens (default as --max-new-tokens)")
    m.add_argument("--query-prompt", default=QUERY_PROMPT, help="the querying prompt (default: the paper's)")
    m.add_argument("--llava-prompt", default=None, help='LLaVA frame prompt (default "Describe the image.")')
    m.add_argument("--vllava-pooling", choices=("generated", "all"), default="generated",
                   help="Video-LLaVA hidden states averaged for vllava_emb_*: the answer's (default) or all")
    return p


def model_options(args: argparse.Namespace) -> ModelOptions:
    names = {kind: getattr(args, f"model_{kind}") for kind in MODEL_FLAGS if getattr(args, f"model_{kind}")}
    request = ModelRequest(mode=args.models, names=names, device=None if args.device == "auto" else args.device)
    return ModelOptions(request=request, batch={k: getattr(args, f"batch_size_{k}") for k in BATCH_DEFAULTS},
                        max_new_tokens=args.max_new_tokens, query_max_new_tokens=args.query_max_new_tokens,
                        query_prompt=args.query_prompt, llava_prompt=args.llava_prompt, pooling=args.vllava_pooling)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    if args.synthetic_clips < 1:
        raise SystemExit("--synthetic-clips must be at least 1")
    if args.workers < 0:
        raise SystemExit("--workers must be at least 0")
    if args.models == "tiny":
        os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub: nothing reaches for a hub
    try:
        models = model_options(args)
        shard = pipeline.parse_shard(args.shard) if args.shard else None
    except ValueError as e:
        raise SystemExit(str(e)) from None
    ray = None
    if args.ray or args.ray_address or args.ray_actors is not None:
        if shard is not None:
            raise SystemExit("--shard and --ray: Ray spreads the clips itself; use one or the other")
        # deferred: ray is an optional extra
        from extract.ray_pipeline import RayRunner, require_ray

        require_ray()  # a missing Ray is a usage error now, not after the models are resolved
        ray = RayRunner(address=args.ray_address, actors=args.ray_actors)
    only = [n.strip() for n in args.extractors.split(",") if n.strip()] if args.extractors else None
    emotions = [e.strip() for e in args.emotions.split(",") if e.strip()] if args.emotions is not None else None
    if emotions is not None and (not emotions or len(set(emotions)) != len(emotions)):
        print(f"error: --emotions {args.emotions!r}: give distinct emotion names, e.g. --emotions Joy,Awe",
              file=sys.stderr)
        return 2
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
        data = read_layout(root, layout, emotions=emotions)
        result = pipeline.run(
            data, config=args.config or default_config(synthetic), cache_dir=cache_dir, data_dir=data_dir,
            dataset=dataset, synthetic=synthetic, limit=args.limit, build=not args.no_build and shard is None,
            progress=progress, num_frames=args.num_frames, pixel_size=args.pixel_size, only=only, models=models,
            shard=shard, workers=args.workers, ray=ray)
    except ValueError as e:  # bad input (LayoutError, config mismatch, model not available): a message, no trace
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if ray is not None:
            ray.close()
    print(pipeline.format_summary(result.summary))
    print(f"  summary: {result.summary_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
