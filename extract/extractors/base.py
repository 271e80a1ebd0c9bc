"""The extractor interface and the runner that drives any extractor over clips through the cache.

An extractor turns clips into named features. It declares:
  name        folder name of its cache entries (e.g. "pixels", "shipped-fau", later "vit", "wavlm")
  settings()  everything that changes its output (model id, revision, frames, prompt, code version):
              hashed into the cache folder name, stored in settings.json
  specs()     {feature key: FeatureSpec} of what it writes (one key, or several from one pass)
  batch_size  clips handed to `compute` at once (1 for CPU extractors; > 1 for models on a GPU)
  prepare(clip, media) -> anything    per-clip CPU work: decode, sample, crop. Raise a `ClipError`
                                      (MediaError, FeatureFileError, ...) to fail just this clip.
  compute(prepared list) -> list of {key: FeatureValue | Missing}   batched model work (default:
                                      `prepare` already returned the outputs); an item may be a
                                      `ClipError` instead, failing just that clip
  setup() / teardown()                load and free models; called only when some clip is not cached,
                                      so a fully cached run never loads a model

`run_extractor` skips clips the cache has finished, records failures and goes on, checks every output
against the spec (a wrong shape is a bug and stops the run), and writes each value atomically.
With `workers` > 0, `prepare` runs on that many threads, `prefetch` batches ahead of the batch in
`compute` (decoding and face detection overlap the model work; PyAV and OpenCV release the GIL), so
`prepare` must be thread-safe. Outputs are written in clip order after each batch: a killed run loses
at most the batch in flight and what was prefetched.
"""
from __future__ import annotations

import dataclasses
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from extract.cache import FeatureCache, ProbeCache
from extract.errors import ClipError
from extract.media import MediaInfo
from tfds_hume.manifest import FeatureSpec
from tfds_hume.records import ClipRecord


@dataclasses.dataclass
class FeatureValue:
    """One clip's value of one feature; `frame_mask` (bool[T]) is False on rows that are not real."""

    value: np.ndarray
    frame_mask: np.ndarray | None = None


@dataclasses.dataclass
class Missing:
    """The feature cannot exist for this clip (no audio track, no shipped CSV): marked missing, never zero."""

    reason: str


Output = dict[str, "FeatureValue | Missing"]


@dataclasses.dataclass
class Media:
    """What extractors get besides the clip: a (cached) `probe`, and a place to leave notes for the summary."""

    probe: Callable[[Any], MediaInfo]
    notes: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def note(self, clip_id: str, message: str) -> None:
        self.notes.append({"id": clip_id, "note": message})


class Extractor:
    """Base class; see the module docstring for the contract."""

    name: str = ""
    batch_size: int = 1

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def specs(self) -> dict[str, FeatureSpec]:
        raise NotImplementedError

    def prepare(self, clip: ClipRecord, media: Media) -> Any:
        raise NotImplementedError

    def compute(self, prepared: Sequence[Any]) -> list[Output | ClipError]:
        return list(prepared)

    def setup(self) -> None:
        """Load models; called once before the first clip that is not cached."""

    def teardown(self) -> None:
        """Free what `setup` loaded; called after the last clip, also when the run stops with an error."""


@dataclasses.dataclass
class RunSummary:
    """How one extractor's run went. cached: finished by an earlier run; missing: clips with a key marked missing."""

    extractor: str
    folder: str
    done: int = 0
    cached: int = 0
    missing: int = 0
    failed: int = 0
    seconds: float = 0.0
    wait_seconds: float = 0.0  # time `compute` waited for `prepare` (decoding, cropping): high = CPU-bound
    compute_seconds: float = 0.0  # time in `compute` (the model work)
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @property
    def videos_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["videos_per_s"] = round(self.videos_per_s, 3)
        return d


def check_output(name: str, clip_id: str, specs: dict[str, FeatureSpec], out: Output) -> None:
    """An output must have exactly the declared keys and shapes; anything else is a bug in the extractor."""
    if set(out) != set(specs):
        raise ValueError(f"extractor {name}: clip {clip_id} gave keys {sorted(out)}, declared {sorted(specs)}")
    for key, item in out.items():
        if isinstance(item, Missing):
            continue
        spec = specs[key]
        v = np.asarray(item.value)
        want = {"frame": (spec.num_frames, spec.dim), "video": (spec.dim,), "text": (),
                "frame_text": (spec.num_frames,)}[spec.kind]
        if v.shape != want:
            raise ValueError(f"extractor {name}: clip {clip_id} key {key} has shape {v.shape}, expected {want}")
        if spec.kind in ("frame", "video"):
            if v.dtype != np.float32:
                raise ValueError(f"extractor {name}: clip {clip_id} key {key} is {v.dtype}, expected float32")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"extractor {name}: clip {clip_id} key {key} has non-finite values")
        if item.frame_mask is not None:
            if spec.kind not in ("frame", "frame_text") or np.shape(item.frame_mask) != (spec.num_frames,):
                raise ValueError(f"extractor {name}: clip {clip_id} key {key} has a frame mask of shape "
                                 f"{np.shape(item.frame_mask)} for a {spec.kind} feature")


def _batches(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), max(1, n)):
        yield items[i:i + n]


def _fail(cache: FeatureCache, summary: RunSummary, clip: ClipRecord, e: ClipError) -> None:
    file = e.path or (str(clip.video) if clip.video else None)
    summary.failures.append(cache.record_failure(clip.id, file, e.reason))
    summary.failed += 1


def record_output(name: str, specs: dict[str, FeatureSpec], cache: FeatureCache, summary: RunSummary,
                  clip: ClipRecord, out: Output | ClipError) -> None:
    """Write one clip's output to the cache (or record its failure); the one place a run writes values."""
    if isinstance(out, ClipError):
        _fail(cache, summary, clip, out)
        return
    check_output(name, clip.id, specs, out)
    for key, item in out.items():
        if isinstance(item, Missing):
            cache.write_missing(clip.id, key, item.reason)
        else:
            cache.write_value(clip.id, key, np.asarray(item.value), item.frame_mask)
    summary.done += 1
    summary.missing += any(isinstance(i, Missing) for i in out.values())


def _try_prepare(extractor: Extractor, clip: ClipRecord, media: Media) -> Any:
    """`prepare`, with a `ClipError` returned instead of raised (anything else is a bug and propagates)."""
    try:
        return extractor.prepare(clip, media)
    except ClipError as e:
        return e


def _prepared(extractor: Extractor, batches: list[list[ClipRecord]], media: Media, workers: int,
              prefetch: int) -> Iterator[list[tuple[ClipRecord, Any]]]:
    """Each batch as [(clip, prepared or ClipError)], in order; prepared on threads `prefetch` batches ahead."""
    if workers <= 0:
        for batch in batches:
            yield [(clip, _try_prepare(extractor, clip, media)) for clip in batch]
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"prepare-{extractor.name}")
    queue: deque[list[tuple[ClipRecord, Future]]] = deque()
    upcoming = iter(batches)

    def submit() -> None:
        batch = next(upcoming, None)
        if batch is not None:
            queue.append([(clip, pool.submit(_try_prepare, extractor, clip, media)) for clip in batch])

    try:
        for _ in range(1 + max(0, prefetch)):
            submit()
        while queue:
            batch = queue.popleft()
            submit()
            yield [(clip, future.result()) for clip, future in batch]
    finally:  # also when the consumer stops early: drop what is queued, wait for what runs
        pool.shutdown(wait=True, cancel_futures=True)


def _run_pending(extractor: Extractor, specs: dict[str, FeatureSpec], pending: list[ClipRecord],
                 cache: FeatureCache, media: Media, summary: RunSummary, progress: bool, workers: int,
                 prefetch: int) -> None:
    # disable=None: tqdm draws the bar on a terminal only; a log gets the summary line instead.
    bar = tqdm(total=len(pending), desc=extractor.name, unit="video", disable=None if progress else True,
               dynamic_ncols=True)
    batches = list(_batches(pending, extractor.batch_size))
    stream = _prepared(extractor, batches, media, workers, prefetch)
    try:
        while True:
            t0 = time.perf_counter()
            items = next(stream, None)
            summary.wait_seconds += time.perf_counter() - t0
            if items is None:
                break
            ready: list[tuple[ClipRecord, Any]] = []
            for clip, prepared in items:
                if isinstance(prepared, ClipError):
                    _fail(cache, summary, clip, prepared)
                else:
                    ready.append((clip, prepared))
            if ready:
                t0 = time.perf_counter()
                outputs = extractor.compute([p for _, p in ready])
                summary.compute_seconds += time.perf_counter() - t0
                if len(outputs) != len(ready):
                    raise ValueError(f"extractor {extractor.name}: compute returned {len(outputs)} outputs "
                                     f"for {len(ready)} clips")
                for (clip, _), out in zip(ready, outputs):
                    record_output(extractor.name, specs, cache, summary, clip, out)
            bar.update(len(items))
            bar.set_postfix(failed=summary.failed, refresh=False)
    finally:
        stream.close()
        bar.close()


def open_cache(extractor: Extractor, clips: Sequence[ClipRecord], features_dir):
    """(specs, cache, summary, clips still to do) of `extractor` under `features_dir`: the cached clips are
    counted in the summary, whichever runner (plain or Ray) then does the rest."""
    specs = extractor.specs()
    cache = FeatureCache(features_dir, extractor.name, extractor.settings(), list(specs))
    summary = RunSummary(extractor=extractor.name, folder=str(cache.folder))
    pending = []
    for clip in clips:
        if cache.is_done(clip.id):
            summary.cached += 1
        else:
            pending.append(clip)
    return specs, cache, summary, pending


def run_extractor(extractor: Extractor, clips: Sequence[ClipRecord], features_dir, *,
                  probe: ProbeCache | None = None, progress: bool = True, workers: int = 0,
                  prefetch: int = 1) -> tuple[RunSummary, FeatureCache]:
    """Run `extractor` over every clip its cache under `features_dir` (one dataset's folder, see
    `extract.cache.dataset_features_dir`) has not finished; return the summary and the cache.

    workers: threads running `prepare` (0: in the calling thread); prefetch: batches prepared ahead.
    """
    specs, cache, summary, pending = open_cache(extractor, clips, features_dir)
    media = Media(probe=probe or ProbeCache(features_dir))
    start = time.perf_counter()
    if pending:
        extractor.setup()
        try:
            _run_pending(extractor, specs, pending, cache, media, summary, progress, workers, prefetch)
        finally:
            extractor.teardown()
    summary.seconds = time.perf_counter() - start
    summary.notes = media.notes
    return summary, cache
