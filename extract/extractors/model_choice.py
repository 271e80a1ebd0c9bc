"""Which model each model extractor uses, resolved and checked before any extraction work starts.

`--models real` (the default) takes each kind's Hugging Face id (registry default or the kind's flag,
e.g. `--vit-model`) or a local folder; `--models tiny` builds (once) the miniature random-weight models
of `extract.models.tiny` under `<cache_dir>/tiny-models/` and uses those.

`resolve_models` runs up front for every kind the selected extractors need: it reads each config
(cheap, even for a 7B model), checks the model type and, offline, that the weights are in the local
Hugging Face cache; so a model that is not available stops the run with a message naming the id and
the flag before hours of other work, not when its extractor's turn comes.

What goes into the extractors' cache keys (`ModelChoice.settings`):
  model_id        the Hugging Face id, the resolved local folder, or `tiny:<kind>`
  revision        hub: the commit the local cache holds (or what the hub serves now); folder: `local:`
                  + a digest of its config and weight file names and sizes; tiny: `tiny-v<version>-s<seed>`
  random_weights  True for miniature (or any `RANDOM_WEIGHTS`-marked) folders
So another checkpoint, another commit or a rebuilt folder never reuses old features.

The resolver knows no model's internals: it records widths every extractor may ask for (`dims`) and the
config it read (`ModelChoice.config`), from which a kind's own extractor derives what only it needs
(e.g. `extractors.wavlm`: the x-vector width and the shortest audio window).

Imports of `extract.models` (torch, transformers), transformers and huggingface_hub stay inside the
functions that need them: `python -m extract --help` starts without them, and `--models tiny` switches
the hub off before huggingface_hub reads HF_HUB_OFFLINE.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterable

MODES = ("real", "tiny")
TINY_DIR = "tiny-models"
TINY_SEED = 0
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


class ModelUnavailable(ValueError):
    """A model cannot be used (not cached offline, no such folder, wrong kind): a clean CLI error."""


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """One resolved model: where `load_model` finds it, what the cache key records, its dims and config."""

    kind: str
    load_from: str  # a hub id or a local folder, as `extract.models.load_model` takes it
    model_id: str
    revision: str | None
    random_weights: bool
    dims: dict[str, int]  # "hidden" (encoder / chat text width)
    # The transformers config read at resolution (no weights), for what a kind's own extractor derives.
    config: Any = dataclasses.field(default=None, compare=False, repr=False)

    def settings(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "revision": self.revision, "random_weights": self.random_weights}

    def dim(self, name: str = "hidden") -> int:
        return self.dims[name]


@dataclasses.dataclass
class ModelRequest:
    """What the user asked for: `mode` real|tiny, per-kind ids or folders (real only), device (None: auto).

    `flags`: the calling command's flag per kind for its error messages (default: `python -m extract`'s).
    """

    mode: str = "real"
    names: dict[str, str] = dataclasses.field(default_factory=dict)
    device: str | None = None
    flags: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"--models must be one of {MODES}, got {self.mode!r}")
        if self.mode == "tiny" and self.names:
            from extract.models.registry import KINDS  # deferred: extract.models imports torch and transformers

            flags = ", ".join(KINDS[k].cli_flag for k in sorted(self.names))
            raise ValueError(f"{flags} name real models: use them with --models real, not --models tiny")


def ensure_tiny_models(cache_dir: str | os.PathLike, kinds: Iterable[str] | None = None,
                       seed: int = TINY_SEED) -> dict[str, Path]:
    """The miniature models under `<cache_dir>/tiny-models/<kind>`, built once (then reused).

    Each is built into a temporary folder of this process and renamed into place, so shards starting
    together never read a half-written model.
    """
    quiet_transformers()
    # deferred: extract.models imports torch and transformers
    from extract.models import build_tiny
    from extract.models.registry import KINDS

    root = Path(cache_dir) / TINY_DIR
    out = {}
    for kind in (list(KINDS) if kinds is None else list(kinds)):
        final = root / kind
        if not _tiny_is_current(final, kind, seed):
            tmp = root / f".{kind}.building-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            build_tiny(kind, tmp, seed=seed)
            if final.exists() and not _tiny_is_current(final, kind, seed):
                shutil.rmtree(final, ignore_errors=True)  # stale (older tiny version): replace it
            try:
                os.replace(tmp, final)
            except OSError:  # another process put a complete one there first
                shutil.rmtree(tmp, ignore_errors=True)
        out[kind] = final
    return out


def _tiny_marker(path: Path) -> dict | None:
    from extract.models import RANDOM_WEIGHTS_FILE  # deferred: extract.models imports torch and transformers

    try:
        return json.loads((path / RANDOM_WEIGHTS_FILE).read_text())
    except (OSError, ValueError):
        return None


def _tiny_is_current(path: Path, kind: str, seed: int) -> bool:
    from extract.models.tiny import TINY_VERSION  # deferred: extract.models imports torch and transformers

    m = _tiny_marker(path)
    return bool(m) and m.get("kind") == kind and m.get("seed") == seed and m.get("tiny_version") == TINY_VERSION


def resolve_models(kinds: Iterable[str], request: ModelRequest, cache_dir: str | os.PathLike) -> dict[str, ModelChoice]:
    """Resolve and check every kind in `kinds` (see the module docstring); `ModelUnavailable` otherwise."""
    kinds = sorted(set(kinds))
    if not kinds:
        return {}
    quiet_transformers()
    if request.mode == "tiny":
        # Nothing may reach for a hub: every tiny model is a local folder, and so are their processors.
        os.environ["HF_HUB_OFFLINE"] = "1"
        folders = ensure_tiny_models(cache_dir, kinds)
        out = {}
        for kind in kinds:
            marker = _tiny_marker(folders[kind]) or {}
            config = _read_config(kind, str(folders[kind]), None)
            out[kind] = ModelChoice(kind=kind, load_from=str(folders[kind]), model_id=f"tiny:{kind}",
                                    revision=f"tiny-v{marker.get('tiny_version')}-s{marker.get('seed')}",
                                    random_weights=True, dims=_dims(kind, config), config=config)
        return out
    unknown = sorted(set(request.names) - set(_kinds()))
    if unknown:
        raise ValueError(f"unknown model kinds {unknown}")
    return {kind: resolve_real(kind, request.names.get(kind), flag=request.flags.get(kind)) for kind in kinds}


def _kinds() -> dict:
    from extract.models.registry import KINDS  # deferred: extract.models imports torch and transformers

    return KINDS


def resolve_real(kind: str, name_or_path: str | None = None, *, flag: str | None = None) -> ModelChoice:
    """A real model: its local folder, or its hub id from the local cache (offline) or the hub.

    Offline, or when the hub does not answer a quick probe (`extract.models.hub`), only the local cache
    is read, so a missing model fails at once. `flag` names the option that takes a local folder.
    """
    # deferred: extract.models imports torch and transformers
    from extract.models import hub_offline, is_random_weights
    from extract.models.hub import why_offline
    from extract.models.registry import get_kind

    spec = get_kind(kind)
    flag = flag or spec.cli_flag
    name = name_or_path or spec.default_id
    local = Path(name).expanduser()
    if local.is_dir():
        local = local.resolve()
        weights = [f for f in _WEIGHT_FILES if (local / f).is_file()]
        if not (local / "config.json").is_file() or not weights:
            raise ModelUnavailable(f"{kind} model folder {local} lacks config.json or weights "
                                   f"({' / '.join(_WEIGHT_FILES)}); pass {flag} with a folder "
                                   f"written by save_pretrained")
        config = _read_config(kind, str(local), None, flag)
        return ModelChoice(kind=kind, load_from=str(local), model_id=str(local), revision=_folder_digest(local),
                           random_weights=is_random_weights(local), dims=_dims(kind, config), config=config)
    offline = hub_offline()
    config = _read_config(kind, name, offline, flag)
    commit = _commit(name, offline)
    if offline:
        from huggingface_hub import try_to_load_from_cache  # deferred: reads HF_HUB_OFFLINE on import

        if not any(isinstance(try_to_load_from_cache(name, f, revision=commit), str) for f in _WEIGHT_FILES):
            raise ModelUnavailable(
                f"{kind} model {name!r}: its config is in the local Hugging Face cache but its weights are "
                f"not, and {why_offline()}. Download it once where the hub is reachable, "
                f"or pass a local folder with {flag} PATH")
    return ModelChoice(kind=kind, load_from=name, model_id=name, revision=commit, random_weights=False,
                       dims=_dims(kind, config), config=config)


def _commit(repo: str, offline: bool) -> str | None:
    """The commit whose config.json we read: the name of its `snapshots/<commit>/` folder in the HF cache."""
    from huggingface_hub import hf_hub_download  # deferred: reads HF_HUB_OFFLINE on import

    path = Path(hf_hub_download(repo, "config.json", local_files_only=offline))  # just read: it is there
    return path.parent.name if path.parent.parent.name == "snapshots" else None


def _read_config(kind: str, name: str, offline: bool | None, flag: str | None = None):
    """The model's config (no weights); `ModelUnavailable` naming the id and the flag otherwise."""
    # deferred: transformers, and extract.models (torch)
    from transformers import AutoConfig

    # deferred: extract.models imports torch and transformers
    from extract.models import ModelNotAvailableError
    from extract.models.loading import _looks_like_path, _not_available
    from extract.models.registry import get_kind

    spec = get_kind(kind)
    flag = flag or spec.cli_flag
    local = Path(name).expanduser().is_dir()
    if not local and _looks_like_path(name):
        raise ModelUnavailable(f"{kind} model folder {name} does not exist; pass {flag} PATH with a "
                               f"folder written by save_pretrained")
    hub = {} if local else {"local_files_only": bool(offline)}
    try:
        config = AutoConfig.from_pretrained(name, **hub)
    except (OSError, ValueError) as e:  # missing files / no network (OSError), unreadable config (ValueError)
        err: ModelNotAvailableError = _not_available(spec, name, hub, bool(offline), e, flag)
        raise ModelUnavailable(str(err)) from None
    if not spec.accepts(config.model_type):
        where = f"folder {name}" if local else f"Hugging Face id {name!r}"
        raise ModelUnavailable(f"{where} holds a {config.model_type!r} model but {flag} needs a "
                               f"{spec.model_type!r} one")
    return config


def _dims(kind: str, config) -> dict[str, int]:
    if kind == "clip":
        return {"hidden": int(config.projection_dim)}
    config = getattr(config, "thinker_config", None) or config  # a whole Omni checkpoint: its thinker's width
    if getattr(config, "text_config", None) is not None:
        # chat models (Video-LLaVA, LLaVA, Qwen2-VL) keep the LLM's width in their text config
        return {"hidden": int(config.text_config.hidden_size)}
    return {"hidden": int(config.hidden_size)}


def _folder_digest(folder: Path) -> str:
    """`local:` + sha256 (16 hex) of config.json and the names and sizes of the weight files."""
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for p in sorted(folder.iterdir()):
        if p.suffix in (".safetensors", ".bin") or p.name.endswith(".index.json"):
            h.update(f"{p.name}:{p.stat().st_size}".encode())
    return "local:" + h.hexdigest()[:16]


def quiet_transformers() -> None:
    """No per-load reports, weight-loading bars or processor-fallback notices: the run has its own bars."""
    import transformers  # deferred: seconds to import; only once models are used

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # torch's notice about how transformers builds SDPA masks: nothing a user of this tool can act on.
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask and attn_mask",
                            category=UserWarning)
