"""Extraction on Ray Data (`python -m extract --ray`): the same extractors, the same cache entries as a plain run.

Per extractor, one Ray Data pipeline over the clips its cache has not finished:
  batches   the pending clips cut into the extractor's batches exactly as `run_extractor` cuts them
            (the same clips in every `compute` call, hence the same numbers), one dataset row per batch
  prepare   `Extractor.prepare` (decode, sample, crop) of a batch's clips, as CPU tasks; extractors
            without models (pixels, shipped) also finish there
  compute   model extractors: an actor pool (`map_batches`, one batch per call); each actor loads its
            models once (`setup`) and runs `compute`; `num_gpus=1` per actor when the cluster has GPUs,
            CPU actors otherwise
  write     the driver receives each batch's outputs and writes them through the same `FeatureCache`
            code as a plain run (`record_output`: same keys, files, atomic writes). Workers write
            nothing, so the cache needs no shared filesystem; they read the videos and the model files,
            which must be at the same paths on every machine.
A task or actor that dies is retried by Ray (Ray Data's actor pools: `max_restarts=-1,
max_task_retries=-1`); an output reaches the cache only when its batch came back whole, so nothing is
lost or written twice.
In the run summary, `wait_seconds` is the time the driver waited for batches to come back (decoding and
model work together) and `compute_seconds` the actors' time in `compute`.
Ray is an optional dependency (`pip install '.[ray]'`), imported only here and only when used.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
import time
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from extract.cache import FeatureCache, ProbeCache
from extract.errors import ClipError
from extract.extractors.base import Extractor, Media, RunSummary, _batches, _try_prepare, open_cache, record_output
from extract.extractors.model_pool import ModelExtractor
from extract.media import probe
from tfds_hume.records import ClipRecord

# Test hook: while the file this names exists, the first actor to finish a compute claims (deletes) it and
# kills its own process before returning the batch, so the tests can watch Ray retry a real actor death.
KILL_ONCE_ENV = "ERI_RAY_KILL_ACTOR_ONCE"


def require_ray():
    """The `ray` module with Ray Data, or a ValueError (exit 2 from the CLI) saying how to install it."""
    try:
        # deferred: ray is an optional extra
        import ray
        import ray.data  # noqa: F401  (Ray without its Data library is not enough)
    except ImportError:
        raise ValueError("--ray needs Ray Data: pip install '.[ray]'") from None
    return ray


@dataclasses.dataclass
class RayRunner:
    """Where and how the model extractors run on Ray; `run_extractor` has the contract of the plain one.

    address: None starts Ray embedded on this machine (all its CPUs and GPUs); else a cluster address
    (`auto` for one started with `ray start` on this machine). actors: actors per model extractor
    (None: one per GPU of the cluster, one on a cluster without GPUs).
    """

    address: str | None = None
    actors: int | None = None

    def __post_init__(self):
        if self.actors is not None and self.actors < 1:
            raise ValueError("--ray-actors must be at least 1")
        self._started = False

    def connect(self) -> None:
        """Start or join Ray (a session already initialised in this process, e.g. by tests, is reused)."""
        ray = require_ray()
        if not ray.is_initialized():
            # "local" starts a fresh embedded instance even if a `ray start` cluster runs on this machine.
            ray.init(address=self.address or "local", include_dashboard=False, logging_level="WARNING",
                     log_to_driver=False)
            self._started = True
        # Ray Data's execution plans, statistics and notices per extractor would bury the run's own report.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the driver's own bar counts videos, as a plain run's does

    def close(self) -> None:
        if self._started:
            require_ray().shutdown()
            self._started = False

    def describe(self) -> str:
        """E.g. `Ray (embedded): 1 node, 2 CPUs, 0 GPUs; 1 actor per model extractor`."""
        self.connect()
        ray = require_ray()
        res = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        cpus, gpus = int(res.get("CPU", 0)), int(res.get("GPU", 0))
        where = "embedded" if self.address is None else f"cluster {self.address}"
        k = self.actor_count()
        return (f"Ray ({where}): {nodes} node{'s' * (nodes != 1)}, {cpus} CPUs, {gpus} GPU{'s' * (gpus != 1)}; "
                f"{k} actor{'s' * (k != 1)} per model extractor")

    @property
    def gpus(self) -> int:
        return int(require_ray().cluster_resources().get("GPU", 0))

    def models_device(self, requested: str | None) -> str:
        """Where the model actors run: `requested` (--device), else cuda when the cluster has GPUs (the
        cluster decides, not this machine); a GPU request the cluster cannot meet is an error now, not a
        pipeline that waits for ever."""
        gpus = self.gpus
        device = requested or ("cuda" if gpus > 0 else "cpu")
        if device.startswith("cuda"):
            if gpus == 0:
                raise ValueError("--device cuda: the Ray cluster has no GPUs (use --device cpu, or join a cluster "
                                 "with GPUs with --ray-address)")
            if self.actor_count() > gpus:
                raise ValueError(f"--ray-actors {self.actor_count()}: the Ray cluster has {gpus} GPUs, one per actor")
        return device

    def actor_count(self) -> int:
        return self.actors or max(1, self.gpus)

    def actor_resources(self, device: str) -> dict[str, float]:
        if device.startswith("cuda"):
            return {"num_gpus": 1, "num_cpus": 1}
        # CPU actors hold at most half a CPU each in Ray's books (their torch threads are set apart, see
        # `_dataset`) and together at most half the cluster's, so decoding tasks always find a CPU. Holding
        # less than the decoding tasks' one CPU also keeps Ray Data from fusing decoding into the actors.
        cpus = float(require_ray().cluster_resources().get("CPU", 1))
        return {"num_gpus": 0, "num_cpus": min(0.5, cpus / 2 / self.actor_count())}

    def run_extractor(self, extractor: Extractor, clips: Sequence[ClipRecord], features_dir, *,
                      probe: ProbeCache | None = None, progress: bool = True, workers: int = 0,
                      prefetch: int = 1) -> tuple[RunSummary, FeatureCache]:
        """As `extract.extractors.run_extractor`; `probe`, `workers` and `prefetch` are the plain run's
        (workers probe the files themselves: a probe cache would be a write on their machine)."""
        del probe, workers, prefetch
        specs, cache, summary, pending = open_cache(extractor, clips, features_dir)
        start = time.perf_counter()
        if pending:
            self.connect()
            batches = list(_batches(pending, extractor.batch_size))
            notes: dict[int, list[dict[str, str]]] = {}
            bar = tqdm(total=len(pending), desc=f"{extractor.name} (ray)", unit="video",
                       disable=None if progress else True, dynamic_ncols=True)  # None: on a terminal only
            try:
                t0 = time.perf_counter()
                for row in self._dataset(extractor, batches).iter_rows():
                    summary.wait_seconds += time.perf_counter() - t0
                    i = int(row["batch"])
                    outputs, notes[i] = pickle.loads(row["outputs"])
                    summary.compute_seconds += float(row["compute_s"])
                    for clip, out in zip(batches[i], outputs):
                        record_output(extractor.name, specs, cache, summary, clip, _from_wire(out))
                    bar.update(len(batches[i]))
                    bar.set_postfix(failed=summary.failed, refresh=False)
                    t0 = time.perf_counter()
            finally:
                bar.close()
            summary.notes = [n for i in sorted(notes) for n in notes[i]]
            # Batches come back in any order: failures in clip order, as a plain run lists them (the summary
            # and the manifest's notes then read the same).
            order = {clip.id: k for k, clip in enumerate(pending)}
            summary.failures.sort(key=lambda f: order[f["id"]])
        summary.seconds = time.perf_counter() - start
        return summary, cache

    def _dataset(self, extractor: Extractor, batches: list[list[ClipRecord]]):
        # deferred: ray is an optional extra
        import ray.data

        ds = ray.data.from_items([{"batch": i} for i in range(len(batches))], override_num_blocks=len(batches))
        model = isinstance(extractor, ModelExtractor)
        ds = ds.map(_Prepare(extractor, batches, compute=not model), num_cpus=1)
        if not model:
            return ds
        device = extractor.pool.device
        threads = None
        if not device.startswith("cuda"):
            import torch  # deferred: torch loads only once a model runs

            # A CPU model's last bits depend on torch's thread count: CPU actors use this machine's (a plain
            # run's) so that their entries equal a plain run's here, bit for bit.
            threads = torch.get_num_threads()
        # Ray Data's actor pools restart a dead actor and retry its batch (max_restarts=-1, max_task_retries=-1
        # by default); tests/extract/test_ray.py kills one to hold Ray to that.
        return ds.map_batches(_Compute, fn_constructor_args=(extractor, threads), batch_size=1,
                              batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=self.actor_count()),
                              **self.actor_resources(device))


def _to_wire(item: Any) -> Any:
    # A ClipError does not survive pickling (its constructor takes two arguments): send its fields.
    return ("clip-error", item.path, item.reason) if isinstance(item, ClipError) else item


def _from_wire(item: Any) -> Any:
    if isinstance(item, tuple) and len(item) == 3 and item[0] == "clip-error":
        return ClipError(item[1], item[2])
    return item


def _compute(extractor: Extractor, prepared: list[Any]) -> tuple[list[Any], float]:
    """`compute` over the prepared items that did not fail, as `run_extractor` does; outputs in clip order."""
    ready = [p for p in prepared if not isinstance(p, ClipError)]
    t0 = time.perf_counter()
    outputs = extractor.compute(ready) if ready else []
    seconds = time.perf_counter() - t0
    if len(outputs) != len(ready):
        raise ValueError(f"extractor {extractor.name}: compute returned {len(outputs)} outputs for {len(ready)} clips")
    it = iter(outputs)
    return [p if isinstance(p, ClipError) else next(it) for p in prepared], seconds


class _Prepare:
    """CPU task: `prepare` each clip of a batch (and `compute`, for extractors without models)."""

    def __init__(self, extractor: Extractor, batches: list[list[ClipRecord]], compute: bool):
        self.extractor, self.batches, self.compute = extractor, batches, compute

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        i = int(row["batch"])
        media = Media(probe=probe)
        prepared = [_try_prepare(self.extractor, clip, media) for clip in self.batches[i]]
        seconds = 0.0
        if self.compute:
            prepared, seconds = _compute(self.extractor, prepared)
            payload = ([_to_wire(p) for p in prepared], media.notes)
            return {"batch": i, "outputs": pickle.dumps(payload), "compute_s": seconds}
        return {"batch": i, "prepared": pickle.dumps(([_to_wire(p) for p in prepared], media.notes))}


class _Compute:
    """Actor: loads the extractor's models once, then runs `compute` on one prepared batch per call."""

    def __init__(self, extractor: Extractor, threads: int | None):
        if threads is not None:
            import torch  # deferred: torch loads only once a model runs

            torch.set_num_threads(threads)
        self.extractor = extractor
        extractor.setup()

    def __call__(self, batch):
        # deferred: pandas comes with ray's extra
        import pandas as pd

        rows = []
        for i, blob in zip(batch["batch"], batch["prepared"]):
            prepared, notes = pickle.loads(blob)
            outputs, seconds = _compute(self.extractor, [_from_wire(p) for p in prepared])
            _kill_once_if_asked()
            rows.append({"batch": int(i), "outputs": pickle.dumps(([_to_wire(o) for o in outputs], notes)),
                         "compute_s": seconds})
        return pd.DataFrame(rows)


def _kill_once_if_asked() -> None:
    flag = os.environ.get(KILL_ONCE_ENV)
    if not flag:
        return
    try:
        os.rename(flag, f"{flag}.claimed-{os.getpid()}")  # atomic: exactly one actor claims it
    except FileNotFoundError:
        return
    Path(f"{flag}.killed").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
