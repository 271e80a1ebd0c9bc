"""Extraction on Ray Data against the plain run, side by side in one run: clips/s and Ray's cost per batch.

    HF_HUB_OFFLINE=1 python benchmarks/extract_scaling.py                 # miniature models, CPU
    HF_HUB_OFFLINE=1 python benchmarks/extract_scaling.py --clips 8 --extractors vit,wavlm --json-out r.json

One synthetic set and the miniature random-weight models (`--models tiny`), built first and not timed.
Each path extracts the same clips into a fresh cache (`extract.pipeline.run`, no TFDS build): plain (the
local runner, `--workers` threads decoding ahead), Ray with 1 actor and with 2 actors per model
extractor, on one embedded Ray instance started once (its start-up is printed, not counted). A Ray
path's time includes starting its actors and loading their models, as a real run's does.
Ray's cost per batch is measured apart, without models: a no-op model extractor (`prepare` returns a
batch-sized uint8 array, `compute` returns one float) run by the plain `run_extractor` and by
`RayRunner.run_extractor` with one actor, at two batch counts; the slope of (Ray - plain) over the batch
count is the cost per batch (scheduling, the decoded batch through the object store, the actor call), the
intercept the fixed cost of a stage (actor start, data set-up). Payloads: a tiny one, and one the size of
a vit batch of 2 clips (64 face crops, 224 x 224 RGB: 9.6 MB).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extract import pipeline  # noqa: E402
from extract.configs import ModelOptions  # noqa: E402
from extract.extractors.base import FeatureValue, run_extractor  # noqa: E402
from extract.extractors.model_choice import TINY_DIR, ModelRequest, ensure_tiny_models  # noqa: E402
from extract.extractors.model_pool import ModelExtractor, ModelPool  # noqa: E402
from extract.ray_pipeline import RayRunner, require_ray  # noqa: E402
from tfds_hume.layouts import read_layout  # noqa: E402
from tfds_hume.manifest import FeatureSpec  # noqa: E402
from tfds_hume.records import ClipRecord  # noqa: E402
from tfds_hume.synthetic import generate  # noqa: E402

# Clips per `compute` call of each model extractor, as `extract.configs.model_extractors` sets them
# (32 frames or windows per clip): the batch size key and the units one clip takes.
UNITS = {"vit": ("vit", 32), "wavlm": ("wavlm", 32), "clip_text": ("clip", 32), "vllava": ("vllava", 1),
         "vllava_query": ("vllava", 1), "llava": ("llava", 32)}


def batch_count(names: list[str], options: ModelOptions, clips: int) -> int:
    return sum(-(-clips // max(1, options.batch[UNITS[n][0]] // UNITS[n][1])) for n in names)


def extract_once(root: Path, work: Path, name: str, tiny: Path, args, ray: RayRunner | None) -> dict:
    """One extraction into a fresh cache; its wall time, clips/s and batches."""
    cache = work / name
    cache.mkdir()
    (cache / TINY_DIR).symlink_to(tiny, target_is_directory=True)
    data = read_layout(root, "muse")
    names = args.extractors.split(",")
    models = ModelOptions(request=ModelRequest(mode="tiny", device="cpu"), max_new_tokens=args.new_tokens,
                          batch={"vit": args.batch_vit})
    t0 = time.perf_counter()
    result = pipeline.run(data, config="full", cache_dir=cache, data_dir=None, dataset="bench", synthetic=False,
                          limit=None, build=False, progress=False, only=names, models=models,
                          workers=args.workers, ray=ray)
    seconds = time.perf_counter() - t0
    s = result.summary
    clips = s["clips"]["selected"]
    assert s["clips"]["failed"] == 0, s["failed"]
    return {"path": name, "clips": clips, "batches": batch_count(names, models, clips), "seconds": seconds,
            "clips_per_s": clips / seconds,
            "compute_seconds": sum(r["compute_seconds"] for r in s["extractors"].values())}


class NullExtractor(ModelExtractor):
    """A model extractor without a model: what Ray adds per batch, with `payload` bytes per batch."""

    name = "null"
    kinds = ()

    def __init__(self, payload: int, batch: int):
        super().__init__(ModelPool({}, "cpu", remote=True))
        self.payload, self.batch_size = payload, batch

    def own_settings(self) -> dict:
        return {"payload": self.payload}

    def specs(self) -> dict[str, FeatureSpec]:
        return {"null": FeatureSpec(kind="video", dim=1, source=self.name)}

    def prepare(self, clip, media) -> np.ndarray:
        return np.zeros(self.payload // self.batch_size, np.uint8)

    def compute(self, prepared) -> list:
        return [{"null": FeatureValue(np.array([float(p.size)], np.float32))} for p in prepared]


def overhead(work: Path, payload: int, counts: tuple[int, int], clips_per_batch: int = 2) -> dict:
    """Seconds of the plain and the Ray (1 actor) runner for each batch count; slope and intercept."""
    out = {}
    for n in counts:
        clips = [ClipRecord(id=f"{i:05d}", split="train", labels=np.zeros(1, np.float32))
                 for i in range(n * clips_per_batch)]
        for path, runner in (("plain", run_extractor), ("ray", RayRunner(actors=1).run_extractor)):
            folder = work / f"null-{payload}-{n}-{path}"
            t0 = time.perf_counter()
            summary, _ = runner(NullExtractor(payload, clips_per_batch), clips, folder, progress=False)
            out[(path, n)] = time.perf_counter() - t0
            assert summary.done == len(clips)
    a, b = counts
    extra = {n: out[("ray", n)] - out[("plain", n)] for n in counts}
    per_batch = (extra[b] - extra[a]) / (b - a)
    return {"payload_bytes": payload, "batches": list(counts), "plain_s": [out[("plain", n)] for n in counts],
            "ray_s": [out[("ray", n)] for n in counts], "per_batch_s": per_batch,
            "fixed_s": extra[a] - per_batch * a}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=8, help="synthetic clips per split (3 splits; default 8)")
    p.add_argument("--extractors", default="vit,wavlm", help="model extractors to run (default vit,wavlm)")
    p.add_argument("--batch-vit", type=int, default=64, help="face crops per vit batch (default 64 = 2 clips)")
    p.add_argument("--new-tokens", type=int, default=4, help="tokens per description (MLLM extractors)")
    p.add_argument("--workers", type=int, default=2, help="plain run's decoding threads (default 2)")
    p.add_argument("--null-batches", type=int, default=80,
                   help="batches of the no-op extractor (and a quarter as many; default 80)")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    ray = require_ray()
    with tempfile.TemporaryDirectory(prefix="extract-scaling-") as tmp:
        work = Path(tmp)
        root = work / "data"
        generate(root, layout="muse", clips_per_split=args.clips, seed=3, progress=False)
        tiny = work / "tiny" / TINY_DIR
        ensure_tiny_models(work / "tiny")
        t0 = time.perf_counter()
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)
        startup = time.perf_counter() - t0
        # Interleaved, so that a change in the machine's load touches every path alike.
        rows = [extract_once(root, work, "plain", tiny, args, None),
                extract_once(root, work, "ray-1-actor", tiny, args, RayRunner(actors=1)),
                extract_once(root, work, "ray-2-actors", tiny, args, RayRunner(actors=2))]
        costs = [overhead(work, payload, (args.null_batches // 4, args.null_batches))
                 for payload in (1024, 64 * 224 * 224 * 3)]
        ray.shutdown()
    plain = rows[0]
    print(f"{plain['clips']} clips, extractors {args.extractors}, {plain['batches']} batches; tiny models on "
          f"the CPU, {os.cpu_count()} CPUs; Ray start-up {startup:.1f} s (not counted)")
    print(f"{'path':<14} {'seconds':>8} {'clips/s':>8} {'vs plain':>9} {'in compute s':>13}")
    for r in rows:
        print(f"{r['path']:<14} {r['seconds']:8.2f} {r['clips_per_s']:8.2f} "
              f"{r['clips_per_s'] / plain['clips_per_s']:8.2f}x {r['compute_seconds']:13.2f}")
    print("Ray's cost over the plain runner, no-op model extractor, 1 actor, 2 clips per batch:")
    for c in costs:
        print(f"  payload {c['payload_bytes'] / 1e6:6.3f} MB/batch: {c['per_batch_s'] * 1000:6.1f} ms per batch "
              f"+ {c['fixed_s']:.2f} s per stage (batches {c['batches']}: plain "
              f"{', '.join(f'{x:.2f}' for x in c['plain_s'])} s, ray {', '.join(f'{x:.2f}' for x in c['ray_s'])} s)")
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": rows, "ray_startup_s": startup, "overhead": costs,
                                             "cpus": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
