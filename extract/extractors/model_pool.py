"""Loaded models shared by the model extractors, and the base class those extractors build on.

`ModelPool` loads each kind once, on first use, on one device (bfloat16 on CUDA, float32 on CPU, as
`extract.models.load_model` chooses), and keeps it while a later extractor still needs it (RoBERTa
serves clip_text, vllava and llava; Video-LLaVA serves vllava and vllava_query). The pipeline calls
`keep_only` after each extractor so a GPU holds only what is still to come.
"""
from __future__ import annotations

from typing import Any, Iterable

from extract.extractors.base import Extractor
from extract.extractors.model_choice import ModelChoice, ModelUnavailable, quiet_transformers
from tfds_hume.manifest import FeatureSpec


def default_device() -> str:
    import torch  # deferred: torch loads only once a model runs

    return "cuda" if torch.cuda.is_available() else "cpu"


class ModelPool:
    """Resolved models (`ModelChoice` per kind) loaded lazily onto `device` (None: CUDA when available)."""

    def __init__(self, choices: dict[str, ModelChoice], device: str | None = None, *, remote: bool = False):
        self.choices = dict(choices)
        self._device = device
        # remote: the models run elsewhere (Ray actors, `extract.ray_pipeline`), so `device` is not checked here.
        self.remote = remote
        self._loaded: dict[str, tuple[Any, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_loaded": {}}  # a copy sent to a Ray actor loads its own models

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        elif self._device.startswith("cuda") and not self.remote:
            import torch  # deferred: torch loads only once a model runs

            if not torch.cuda.is_available():
                raise ValueError(f"--device {self._device}: no CUDA device is available (use --device cpu)")
        return self._device

    @property
    def dtype_name(self) -> str:
        from extract.models import default_dtype  # deferred: extract.models imports torch and transformers

        return str(default_dtype(self.device)).removeprefix("torch.")

    def choice(self, kind: str) -> ModelChoice:
        if kind not in self.choices:
            raise KeyError(f"model kind {kind!r} was not resolved (resolved: {sorted(self.choices)})")
        return self.choices[kind]

    def get(self, kind: str) -> tuple[Any, Any]:
        """(model, processor) of `kind`, loaded on first use."""
        if kind not in self._loaded:
            from extract.models import ModelNotAvailableError, load_model  # deferred: imports torch, transformers

            c = self.choice(kind)
            quiet_transformers()
            try:
                self._loaded[kind] = load_model(kind, c.load_from, device=self.device,
                                                revision=None if c.revision is None or c.revision.startswith(
                                                    ("local:", "tiny-")) else c.revision)
            except ModelNotAvailableError as e:
                raise ModelUnavailable(str(e)) from None
        return self._loaded[kind]

    @property
    def loaded(self) -> list[str]:
        return sorted(self._loaded)

    def keep_only(self, kinds: Iterable[str]) -> None:
        """Free every loaded model whose kind is not in `kinds`."""
        keep = set(kinds)
        dropped = [k for k in self._loaded if k not in keep]
        for k in dropped:
            del self._loaded[k]
        if dropped and self._device and self._device.startswith("cuda"):
            import torch  # deferred: torch loads only once a model runs

            torch.cuda.empty_cache()

    def close(self) -> None:
        self.keep_only(())


class ModelExtractor(Extractor):
    """An extractor that runs models from a `ModelPool`.

    Subclasses set `name`, `kinds` (model kinds used, the first is the main one), `version`, and
    implement `own_settings()`; `settings()` adds the models' ids, revisions, random-weights flags
    and the compute dtype (bfloat16 vs float32 changes the numbers, so it is part of the cache key).
    """

    kinds: tuple[str, ...] = ()
    version: int = 1

    def __init__(self, pool: ModelPool):
        self.pool = pool

    def own_settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {"extractor": self.name, "version": self.version, **self.own_settings(),
                "models": {k: self.pool.choice(k).settings() for k in self.kinds},
                "dtype": self.pool.dtype_name}

    @property
    def random_weights(self) -> bool:
        return any(self.pool.choice(k).random_weights for k in self.kinds)

    def spec(self, kind: str, *, dim: int | None = None, num_frames: int | None = None,
             model: str | None = None) -> FeatureSpec:
        """A FeatureSpec of this extractor: source = its name, model = `model` (default: the main kind)."""
        c = self.pool.choice(model or self.kinds[0])
        return FeatureSpec(kind=kind, dim=dim, num_frames=num_frames, source=self.name, model_id=c.model_id,
                           revision=c.revision, random_weights=self.random_weights, params=self.settings())

    def setup(self) -> None:
        for k in self.kinds:
            self.pool.get(k)

    def model(self, kind: str) -> tuple[Any, Any]:
        return self.pool.get(kind)
