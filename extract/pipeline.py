"""The whole extraction run: dataset records -> extractors through the cache -> manifest -> TFDS dataset.

Folders (all under the cache root, never inside the data root):
  synthetic/<layout>-n<N>-s<seed>[-faults]/   the generated demo dataset (written once, then reused)
  features/<dataset>/<extractor>-<hash8>/     the feature cache (`extract.cache`)
  exports/<dataset>-<config>/                 manifest.json (file paths relative to this folder) and
                                              summary.json (what the run did)
The TFDS dataset goes to the data dir (`tfds_hume.paths.data_dir`).

A clip that fails any extractor (broken video, malformed CSV) is reported in the summary, recorded in
that extractor's failures.jsonl, and left out of the export; a feature that cannot exist for a clip
(no CSV, no audio track) is missing in the export, never zero-filled.

Models (config `full`): every model the selected extractors need is resolved and checked before any
work (`extract.extractors.model_choice`), loaded once into a `ModelPool` and freed as soon as no
later extractor needs it.

Shards (`shard=(i, n)`, the CLI's `--shard i/N`): the selected clips, in split-then-id order, are dealt
round-robin and shard i takes clips i, i + n, i + 2n, ... Several processes (GPUs, hosts) run their
shards into the same cache; a shard writes only its summary, `exports/<dataset>-<config>/shard-<i>-of-<n>.json`,
never the manifest or the TFDS dataset. When every shard is done, the same command without the shard
finds every clip cached and writes the export and the dataset.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from extract.cache import ProbeCache, dataset_features_dir
from extract.configs import ModelOptions, check_config, extractors_for, kinds_needed, selected_models
from extract.extractors import Extractor, run_extractor
from extract.extractors.model_choice import resolve_models
from extract.extractors.model_pool import ModelExtractor, ModelPool
from tfds_hume.manifest import ClipEntry, Manifest
from tfds_hume.records import SPLITS, ClipRecord, DatasetRecords

SUMMARY_NAME = "summary.json"


def synthetic_name(layout: str, clips: int, seed: int, faults: bool = False) -> str:
    return f"synthetic-{layout}-n{clips}-s{seed}" + ("-faults" if faults else "")


def ensure_synthetic(cache_root: str | os.PathLike, *, layout: str = "muse", clips_per_split: int = 60,
                     seed: int = 0, faults: bool = False, progress: bool = True) -> Path:
    """The synthetic dataset under `<cache>/synthetic/`, generated unless a complete copy is there.

    Generated into a temporary sibling folder and renamed when complete, so an existing folder is a
    complete one (an interrupted generation leaves only the temporary folder, replaced next time).
    """
    from tfds_hume.synthetic import generate  # only needed without --data-root

    name = f"{layout}-n{clips_per_split}-s{seed}" + ("-faults" if faults else "")
    root = Path(cache_root) / "synthetic" / name
    if root.is_dir():
        return root
    # A temporary folder of this process: shards started together may all generate; the first wins.
    tmp = root.with_name(f".{name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    generate(tmp, layout=layout, clips_per_split=clips_per_split, seed=seed, faults=faults, progress=progress)
    try:
        os.replace(tmp, root)
    except OSError:
        if not root.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def select_clips(records: Sequence[ClipRecord], limit: int | None = None) -> list[ClipRecord]:
    """Clips in split order then id order; with `limit`, the first `limit` clips of each split."""
    out = []
    for split in SPLITS:
        clips = sorted((r for r in records if r.split == split), key=lambda r: r.id)
        out.extend(clips if limit is None else clips[:limit])
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """"i/N" (0 <= i < N) -> (i, N)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/N, e.g. 0/4 (shards are numbered from 0)") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= i < N")
    return i, n


def shard_clips(clips: Sequence[ClipRecord], index: int, count: int) -> list[ClipRecord]:
    """Shard `index` of `count`: clips index, index + count, ... of the (deterministically ordered) list."""
    return list(clips[index::count])


def dataset_name(root: str | os.PathLike) -> str:
    """A folder-safe name for a real dataset: its root folder's name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(root).resolve().name).strip(".-")
    return name or "dataset"


def check_outside(root: Path, folder: Path, what: str) -> None:
    """Caches and outputs never go inside the data root (it may be read-only, and is not ours)."""
    r, f = root.resolve(), folder.resolve()
    if f == r or r in f.parents:
        raise ValueError(f"the {what} {folder} is inside the data root {root}: choose a folder outside it")


@dataclasses.dataclass
class ExtractResult:
    """What `run` did; `summary` is also written to `<export_dir>/summary.json`."""

    export_dir: Path
    manifest: Manifest | None  # None for a shard (see the module docstring)
    summary: dict[str, Any]
    dataset_dir: Path | None
    summary_path: Path | None = None


def make_manifest(data: DatasetRecords, clips: Sequence[ClipRecord], extractors: Sequence[Extractor],
                  caches: dict, export_dir: Path, *, dataset: str, synthetic: bool,
                  failed: set[str], notes: dict[str, Any]) -> Manifest:
    """Manifest of every clip that did not fail, with each feature file it has (relative to export_dir)."""
    features = {}
    for ex in extractors:
        for key, spec in ex.specs().items():
            if key in features:
                raise ValueError(f"feature key {key!r} comes from two extractors")
            features[key] = spec
    entries = []
    for clip in clips:
        if clip.id in failed:
            continue
        files = {}
        for ex in extractors:
            for key, path in caches[ex.name].files(clip.id).items():
                files[key] = os.path.relpath(path, export_dir)
        entries.append(ClipEntry(id=clip.id, split=clip.split, labels=[float(v) for v in clip.labels],
                                 files=files))
    return Manifest(dataset=dataset, synthetic=synthetic, emotions=list(data.emotions), features=features,
                    clips=entries, notes=notes)


def describe_compute(pool: ModelPool | None, ray: Any, *, workers: int, shard: tuple[int, int] | None,
                     clips: int) -> str:
    """The line saying what an extraction runs on: models' device (GPUs named) or the Ray cluster, shard."""
    if ray is not None:
        where = ray.describe()
    elif pool is None:
        where = "no model extractor (decoding and shipped features only)"
    elif pool.device.startswith("cuda"):
        import torch  # deferred: torch loads only once a model runs

        n = torch.cuda.device_count()
        where = f"models on {pool.device}: {n} GPU{'s' * (n != 1)} ({torch.cuda.get_device_name(0)}); one in use"
    else:
        where = f"models on cpu ({os.cpu_count()} cores)"
    if ray is None:
        where += f"; decoding in {workers} thread{'s' * (workers != 1)}" if workers else "; decoding inline"
    part = f"shard {shard[0]}/{shard[1]}: " if shard else ""
    return f"{part}{clips} clips; {where}"


def run(data: DatasetRecords, *, config: str, cache_dir: str | os.PathLike, data_dir: str | os.PathLike | None,
        dataset: str, synthetic: bool, limit: int | None = None, build: bool = True, progress: bool = True,
        num_frames: int = 32, pixel_size: int = 12, only: Sequence[str] | None = None,
        models: ModelOptions | None = None, shard: tuple[int, int] | None = None,
        workers: int = 0, ray: Any = None) -> ExtractResult:
    """Extract the features of `config` for `data`, write the export, and build the TFDS dataset.

    only: extractor names to run (default: all of the config); models: model choices and options for
    the model extractors; shard: (i, n) to run one shard (no export, see the module docstring);
    workers: threads decoding and cropping ahead of the model work; ray: an `extract.ray_pipeline.RayRunner`
    to run every extractor on Ray Data instead (the same cache entries).
    """
    t0 = time.perf_counter()
    cache_dir = Path(cache_dir)
    check_config(config, synthetic)
    selected = select_clips(data.records, limit)
    if not selected:
        raise ValueError(f"{data.root}: no usable clips (skipped: {len(data.skipped)})")
    clips = shard_clips(selected, *shard) if shard else selected
    models = models or ModelOptions()
    pool = None
    chosen = selected_models(config, only)
    if chosen:
        # Every model is found and checked before any work: a missing one must not surface hours later.
        device = models.request.device
        if ray is not None:  # the models run on the cluster's machines: its GPUs decide, not this one's
            ray.connect()
            device = ray.models_device(device)
        pool = ModelPool(resolve_models(kinds_needed(chosen), models.request, cache_dir), device,
                         remote=ray is not None)
        pool.device  # an unusable --device is an error now, too
    # From every selected clip, not the shard's: each shard then finds the same shipped columns.
    extractors = extractors_for(config, selected, synthetic=synthetic, only=only, pool=pool, model_options=models,
                                num_frames=num_frames, pixel_size=pixel_size)
    # The synthetic set is identified by its generator settings (all in its name), real data by its root.
    source = ({"synthetic": dataset} if synthetic else
              {"data_root": str(Path(data.root).resolve()), "layout": data.layout})
    features_dir = dataset_features_dir(cache_dir, dataset, source)
    print(describe_compute(pool, ray, workers=workers, shard=shard, clips=len(clips)), file=sys.stderr)
    probe = ProbeCache(cache_dir)
    caches, runs = {}, {}
    try:
        for i, ex in enumerate(extractors):
            summary, cache = (ray.run_extractor if ray is not None else run_extractor)(
                ex, clips, features_dir, probe=probe, progress=progress, workers=workers)
            caches[ex.name], runs[ex.name] = cache, summary
            if pool is not None:  # free models no later extractor needs (a 7B model is 14 GB of GPU memory)
                pool.keep_only(k for later in extractors[i + 1:] if isinstance(later, ModelExtractor)
                               for k in later.kinds)
    finally:
        if pool is not None:
            pool.close()
    # Unfinished clips were retried just now, so every failed clip has its reasons in this run's summaries.
    by_reason: dict[str, dict[str, list[str]]] = {}
    for name, s in runs.items():
        for f in s.failures:
            reason = f"{f['file']}: {f['reason']}" if f["file"] else f["reason"]
            by_reason.setdefault(f["id"], {}).setdefault(reason, []).append(name)
    failed = {cid: [f"{', '.join(names)}: {reason}" for reason, names in reasons.items()]
              for cid, reasons in by_reason.items()}
    export_dir = cache_dir / "exports" / f"{dataset}-{config}"
    export_dir.mkdir(parents=True, exist_ok=True)
    model_info = _model_info(pool)
    random_weights = any(s.random_weights for ex in extractors for s in ex.specs().values())
    if shard:
        summary = {
            "dataset": dataset, "synthetic": synthetic, "config": config, "layout": data.layout,
            "data_root": str(data.root), "export_dir": str(export_dir), "shard": f"{shard[0]}/{shard[1]}",
            "clips": {"selected": len(selected), "in_shard": len(clips), "failed": len(failed)},
            "extractors": {n: s.to_json() for n, s in runs.items()}, "failed": failed,
            "random_weights": random_weights, "models": model_info,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        path = _write_json(export_dir / f"shard-{shard[0]}-of-{shard[1]}.json", summary)
        return ExtractResult(export_dir=export_dir, manifest=None, summary=summary, dataset_dir=None,
                             summary_path=path)
    notes = {
        "config": config, "layout": data.layout, "data_root": str(data.root), "limit_per_split": limit,
        "num_frames": num_frames, "extractors": {n: Path(c.folder).name for n, c in caches.items()},
        "random_weights": random_weights, "models": model_info,
        "failed": {cid: r for cid, r in failed.items()},
        "skipped": [dataclasses.asdict(s) for s in data.skipped],
    }
    manifest = make_manifest(data, clips, extractors, caches, export_dir, dataset=dataset, synthetic=synthetic,
                             failed=set(failed), notes=notes)
    if not manifest.clips:
        raise ValueError(f"{data.root}: every clip failed; see {SUMMARY_NAME} and the failures.jsonl files")
    manifest.write(export_dir)
    summary: dict[str, Any] = {
        "dataset": dataset, "synthetic": synthetic, "config": config, "layout": data.layout,
        "data_root": str(data.root), "export_dir": str(export_dir),
        "clips": {"listed": len(data.records) + len(data.skipped), "selected": len(clips),
                  "exported": len(manifest.clips), "failed": len(failed), "skipped_by_reader": len(data.skipped),
                  "by_split": {s: sum(c.split == s for c in manifest.clips) for s in SPLITS}},
        "extractors": {n: s.to_json() for n, s in runs.items()},
        "failed": notes["failed"], "skipped": notes["skipped"],
        "random_weights": random_weights, "models": model_info,
        "features": {k: {"kind": s.kind, "dim": s.dim, "num_frames": s.num_frames, "source": s.source,
                         "random_weights": s.random_weights}
                     for k, s in manifest.features.items()},
    }
    dataset_dir = None
    if build:
        from tfds_hume.build import build as build_tfds  # TFDS import is slow: only when building

        if not progress:
            # deferred: tensorflow_datasets
            import tensorflow_datasets as tfds

            tfds.disable_progress_bar()

        dataset_dir = build_tfds(export_dir, config=config, data_dir=data_dir)
        summary["tfds"] = {"name": f"hume_reaction/{config}", "path": str(dataset_dir)}
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    path = _write_json(export_dir / SUMMARY_NAME, summary)
    return ExtractResult(export_dir=export_dir, manifest=manifest, summary=summary, dataset_dir=dataset_dir,
                         summary_path=path)


def _model_info(pool: ModelPool | None) -> dict[str, Any]:
    if pool is None:
        return {}
    return {k: {**c.settings(), "device": pool.device, "dtype": pool.dtype_name}
            for k, c in sorted(pool.choices.items())}


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def format_summary(summary: dict[str, Any]) -> str:
    """The human-readable end-of-run report."""
    c = summary["clips"]
    head = (f"{summary['dataset']} ({'SYNTHETIC' if summary['synthetic'] else 'real'} data, "
            f"layout {summary['layout']}, config {summary['config']})")
    if "shard" in summary:
        lines = [f"{head}, shard {summary['shard']}: {c['in_shard']} of {c['selected']} clips, {c['failed']} failed"]
    else:
        lines = [f"{head}: {c['exported']} clips exported "
                 f"({', '.join(f'{s} {n}' for s, n in c['by_split'].items())}), {c['failed']} failed, "
                 f"{c['skipped_by_reader']} skipped by the reader"]
    if summary.get("random_weights"):
        lines.append("  RANDOM WEIGHTS: randomly initialised models (e.g. --models tiny); "
                     "their features carry no meaning")
    for name, s in summary["extractors"].items():
        lines.append(f"  {name:<16} done {s['done']}, cached {s['cached']}, missing {s['missing']}, "
                     f"failed {s['failed']}  ({s['videos_per_s']:.1f} videos/s; waited {s['wait_seconds']:.1f} s "
                     f"for decoding, {s['compute_seconds']:.1f} s in models)")
    for cid, reasons in summary["failed"].items():
        lines.append(f"  FAILED {cid}: {'; '.join(reasons)}")
    for s in summary.get("skipped", []):
        lines.append(f"  SKIPPED {s['id']}: {s['reason']} ({s['path']})")
    if "shard" in summary:
        lines.append("  when every shard is done, run the same command without --shard to export and build")
        return "\n".join(lines)
    lines.append(f"  export: {summary['export_dir']}")
    if "tfds" in summary:
        lines.append(f"  TFDS:   {summary['tfds']['name']} in {summary['tfds']['path']}")
    return "\n".join(lines)
