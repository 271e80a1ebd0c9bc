"""Import Hugging Face Perceiver / ViPER weights into the Flax ``Viper``.

``load_state_dict(path)`` reads a checkpoint into ``{name: numpy array}``; ``import_hf_perceiver``
copies those arrays into a new ``Viper``. Accepted files:

* ``.safetensors``;
* a torch state dict (``torch.save(model.state_dict())``, optionally wrapped as ``{"state_dict": ...}`` or
  ``{"model_state_dict": ...}``), read with ``torch.load(weights_only=True)``, which never runs code;
* a whole pickled ``nn.Module`` (how the ViPER code saves its checkpoints: ``torch.save(model)``).
  Unpickling can run arbitrary code, so it is refused unless ``trust_pickle=True`` (``--trust-pickle``).

  ViPER pickles ``transformers.PerceiverModel`` itself; a class that cannot be imported here (another
  transformers version, a training script's own subclass or wrapper) is read as plain data, with a note
  naming it, so its parameters and its ``config`` still load.

Names are those of ``PerceiverModel(config, decoder=PerceiverClassificationDecoder(...))``. The leading
wrappers ``module.`` (DataParallel/DDP), ``model.`` and ``perceiver.`` (``PerceiverFor...`` classes) are
stripped, repeatedly, from every name that has them. torch is imported only when a torch file is read.

The model's hyper-parameters come with the checkpoint (``checkpoint_config``): from a pickled module's
``config``, else from a Hugging Face ``PerceiverConfig`` JSON, else ViPER's published config, which is only
assumed where the shapes are ViPER's own (a state dict records no head counts). Shapes that contradict
the config are refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from eri_jax.models.viper import PerceiverLayer, Viper, ViperConfig

STRIPPED_PREFIXES = ("module.", "model.", "perceiver.")
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")


def strip_prefixes(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the wrapper prefixes of ``STRIPPED_PREFIXES`` from the front of every name."""
    out: dict[str, Any] = {}
    for name, value in state_dict.items():
        short = name
        while short.startswith(STRIPPED_PREFIXES):
            short = short.split(".", 1)[1]
        if short in out:
            raise ValueError(f"two parameters map to {short!r} after stripping prefixes (one is {name!r})")
        out[short] = value
    return out


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A read checkpoint: ``weights`` {name: numpy array} (prefixes stripped) and, for a pickled module,
    its ``config`` (a ``PerceiverConfig``, or a stand-in with the same attributes), else None."""

    weights: dict[str, np.ndarray]
    config: Any = None


def load_state_dict(path: str | os.PathLike, *, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    """Read a Perceiver checkpoint into ``{name: float32/int numpy array}`` (prefixes stripped)."""
    weights = read_checkpoint(path, trust_pickle=trust_pickle).weights
    _LAST_READ.clear()  # the weights go into a model now: the cache need not hold a second copy
    return weights


# One entry: a run reads its checkpoint for the config, then for the weights (ViPER's is ~1.1 GB).
_LAST_READ: dict[tuple, Checkpoint] = {}


def read_checkpoint(path: str | os.PathLike, *, trust_pickle: bool = False) -> Checkpoint:
    """Read a Perceiver checkpoint: its weights and, for a pickled module, its ``config``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, bool(trust_pickle))
    if key in _LAST_READ:
        return _LAST_READ[key]
    config = None
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # via torch: numpy has no bfloat16

        try:
            tensors = load_file(str(path))
        except Exception as err:
            raise ValueError(f"{path}: cannot be read as safetensors ({err})") from err
    else:
        tensors, config = _torch_load(path, trust_pickle)
    ckpt = Checkpoint(strip_prefixes({name: _to_numpy(t) for name, t in tensors.items()}), config)
    _LAST_READ.clear()
    _LAST_READ[key] = ckpt
    return ckpt


class _StandIn:
    """An object whose class cannot be imported here: it keeps the pickled attributes, nothing else."""

    _origin = "?"

    def __init__(self, *args, **kwargs):  # a class pickled as a call with arguments
        self._args, self._kwargs = args, kwargs

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__.update(state if isinstance(state, dict) else {"_state": state})


class _StandInUnpickler(pickle.Unpickler):
    """Maps a class that cannot be imported to a `_StandIn` subclass (recorded in `missing`)."""

    missing: list[str] = []

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            origin = f"{module}.{name}"
            if origin not in _StandInUnpickler.missing:
                _StandInUnpickler.missing.append(origin)
            return type(name, (_StandIn,), {"_origin": origin, "__module__": __name__})


# torch.load takes a pickle module: this one is `pickle` with the stand-in unpickler.
_STAND_IN_PICKLE = types.ModuleType("eri_stand_in_pickle")
_STAND_IN_PICKLE.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
_STAND_IN_PICKLE.Unpickler = _StandInUnpickler
_STAND_IN_PICKLE.load = lambda f, **kw: _StandInUnpickler(f, **kw).load()


def _module_tensors(obj: Any, prefix: str = "") -> dict[str, Any]:
    """The state dict of a module tree whose nodes may be stand-ins (their `_parameters`, `_buffers`,
    `_modules` attributes, as `nn.Module` pickles them)."""
    if hasattr(obj, "state_dict") and not isinstance(obj, _StandIn):
        return {prefix + k: v for k, v in obj.state_dict().items()}
    out = {}
    skip = set(getattr(obj, "_non_persistent_buffers_set", ()) or ())
    for group in ("_parameters", "_buffers"):
        for name, t in (getattr(obj, group, None) or {}).items():
            if t is not None and name not in skip:
                out[prefix + name] = t
    for name, child in (getattr(obj, "_modules", None) or {}).items():
        if child is not None:
            out.update(_module_tensors(child, f"{prefix}{name}."))
    return out


def _module_config(obj: Any) -> Any:
    """The Perceiver config a pickled module carries: its own ``config`` or the first submodule's."""
    queue = [obj]
    while queue:
        node = queue.pop(0)
        config = getattr(node, "config", None)
        if config is not None and hasattr(config, "d_latents"):
            return config
        queue.extend(c for c in (getattr(node, "_modules", None) or {}).values() if c is not None)
    return None


def _torch_load(path: Path, trust_pickle: bool) -> tuple[Mapping[str, Any], Any]:
    # deferred: torch
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's safe loader names an "Unsupported global" when the file pickles classes (a model);
        # anything else (a corrupt or foreign file) is not fixed by trusting it.
        if "unsupported global" not in str(err).lower():
            raise ValueError(f"{path}: cannot be read as a torch checkpoint ({err})") from err
        if not trust_pickle:
            raise ValueError(
                f"{path}: not a plain state dict (it holds pickled objects, e.g. a whole model saved with "
                "torch.save(model)). Loading it runs code from the file; pass --trust-pickle "
                "(trust_pickle=True) only if you trust the file."
            ) from err
        _StandInUnpickler.missing = []
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_STAND_IN_PICKLE)
        except Exception as err2:
            raise ValueError(f"{path}: cannot be unpickled ({err2})") from err2
        if _StandInUnpickler.missing:
            print(f"note: {path}: read without their code (not importable here): "
                  f"{', '.join(_StandInUnpickler.missing)}", file=sys.stderr)
    except Exception as err:
        raise ValueError(f"{path}: cannot be read as a torch checkpoint ({err})") from err
    config = None
    if isinstance(obj, (torch.nn.Module, _StandIn)):
        config, kind = _module_config(obj), type(obj).__name__
        obj = _module_tensors(obj)
        if not obj:
            raise ValueError(f"{path}: the pickled {kind} holds no parameters")
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")
    return obj, config


# ------------------------------------------------------------------------------ the checkpoint's config

# Hugging Face PerceiverConfig defaults, for the fields a config JSON leaves out (HF's d_model is 768).
HF_DEFAULTS = {**{f.name: f.default for f in dataclasses.fields(ViperConfig)}, "d_model": 768, "num_labels": 2,
               "hidden_act": "gelu"}
HEAD_FIELDS = ("num_self_attention_heads", "num_cross_attention_heads")
CROSS_INPUT = "encoder.cross_attention.attention.self.layernorm2.weight"  # [d_model]
VIPER_TOKEN = "ViPER's token is V 768 + A 512 + T 768 + F 27 padded to 32 = 2080 (--modalities VATF)"


def shape_facts(weights: Mapping[str, Any]) -> dict[str, float]:
    """What the parameter shapes fix (widths, counts, widening factors); heads and blocks they cannot show."""

    def rows(name: str, axis: int = 0) -> int:
        if name not in weights:
            raise ValueError(f"not a Perceiver with a classification decoder: no parameter {name!r}")
        return int(np.shape(weights[name])[axis])

    cross = "encoder.cross_attention"
    d_latents = rows("embeddings.latents", 1)
    layers = {int(m.group(1)) for k in weights if (m := re.match(r"encoder\.self_attends\.(\d+)\.", k))}
    facts = {"d_model": rows(CROSS_INPUT), "num_latents": rows("embeddings.latents"), "d_latents": d_latents,
             "num_self_attends_per_block": len(layers),
             "cross-attention q/k width": rows(f"{cross}.attention.self.query.weight"),
             "cross-attention v width": rows(f"{cross}.attention.self.value.weight"),
             "cross_attention_widening_factor": rows(f"{cross}.mlp.dense1.weight") / d_latents,
             "num_outputs": rows("decoder.decoder.final_layer.weight")}
    if layers:
        first = "encoder.self_attends.0"
        facts.update({"self-attention q/k width": rows(f"{first}.attention.self.query.weight"),
                      "self-attention v width": rows(f"{first}.attention.self.value.weight"),
                      "self_attention_widening_factor": rows(f"{first}.mlp.dense1.weight") / d_latents})
    return facts


def config_facts(config: ViperConfig) -> dict[str, float]:
    """`shape_facts` as `config` predicts them."""
    (cross_qk, cross_v), (self_qk, self_v) = config.cross_channels(), config.self_channels()
    facts = {"d_model": config.d_model, "num_latents": config.num_latents, "d_latents": config.d_latents,
             "num_self_attends_per_block": config.num_self_attends_per_block,
             "cross-attention q/k width": cross_qk, "cross-attention v width": cross_v,
             "cross_attention_widening_factor": config.cross_attention_widening_factor,
             "num_outputs": config.num_outputs}
    if config.num_self_attends_per_block:
        facts.update({"self-attention q/k width": self_qk, "self-attention v width": self_v,
                      "self_attention_widening_factor": config.self_attention_widening_factor})
    return facts


def read_perceiver_config(path: str | os.PathLike) -> types.SimpleNamespace:
    """A Hugging Face ``PerceiverConfig`` JSON (``config.json``); fields it leaves out take HF's defaults."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise FileNotFoundError(f"{path}: cannot read the Perceiver config ({err})") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: line 1: expected a JSON object (a Hugging Face PerceiverConfig)")
    if data.get("model_type", "perceiver") != "perceiver":
        raise ValueError(f"{path}: model_type is {data['model_type']!r}, not a PerceiverConfig")
    return types.SimpleNamespace(**{**HF_DEFAULTS, **data})


def checkpoint_config(path: str | os.PathLike, *, trust_pickle: bool = False,
                      perceiver_config: str | os.PathLike | None = None) -> tuple[ViperConfig, str]:
    """(the ``ViperConfig`` of a checkpoint, where it came from).

    Source, in order: ``perceiver_config`` (an HF config JSON; it must agree with a pickled module's own
    config), the pickled module's ``config``, or, for a bare state dict, ViPER's published config, which
    is assumed only where every shape is ViPER's (the state dict cannot show the head counts). A shape
    that contradicts the config is a ``ValueError``.
    """
    return resolve_config(read_checkpoint(path, trust_pickle=trust_pickle), path, perceiver_config)


def resolve_config(ckpt: Checkpoint, path: str | os.PathLike,
                   perceiver_config: str | os.PathLike | None = None) -> tuple[ViperConfig, str]:
    """`checkpoint_config` of a checkpoint already read from `path`."""
    try:
        facts = shape_facts(ckpt.weights)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    outputs = int(facts["num_outputs"])
    own = _viper_config(ckpt.config, outputs, f"{path} (its pickled config)") if ckpt.config is not None else None
    if perceiver_config is not None:
        config = _viper_config(read_perceiver_config(perceiver_config), outputs, str(perceiver_config))
        source = f"--perceiver-config {perceiver_config}"
        if own is not None and own != config:
            raise ValueError(f"{perceiver_config} contradicts the config pickled in {path}: "
                             f"{_differences(dataclasses.asdict(config), dataclasses.asdict(own), 'JSON', 'pickled')}")
    elif own is not None:
        config, source = own, "the pickled module's config"
    else:
        config = dataclasses.replace(ViperConfig(), d_model=int(facts["d_model"]), num_outputs=outputs)
        unlike = {k: v for k, v in config_facts(config).items() if facts.get(k) != v}
        if unlike:
            raise ValueError(
                f"{path}: a bare state dict records no head counts, and its shapes are not ViPER's "
                f"({_differences(facts, config_facts(config), 'here', 'ViPER')}), so ViPER's 8/8 heads cannot be "
                "assumed.\nPass --perceiver-config <its Hugging Face config.json> (num_self_attention_heads, "
                "num_cross_attention_heads, num_blocks), or the whole pickled model with --trust-pickle.")
        source = ("ViPER's published config (a bare state dict records no head counts: 8 self-/8 cross-"
                  "attention heads, 1 block assumed; --perceiver-config sets them)")
    predicted = config_facts(config)
    if predicted != {k: facts.get(k) for k in predicted}:
        raise ValueError(f"{path}: the weights contradict the config ({source}): "
                         f"{_differences(facts, predicted, 'weights', 'config')}")
    return config, source


def _viper_config(hf_like: Any, num_outputs: int, source: str) -> ViperConfig:
    try:
        return ViperConfig.from_hf(hf_like, num_outputs)
    except (AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: not a usable Perceiver config ({err})") from err


def _differences(a: Mapping[str, Any], b: Mapping[str, Any], a_name: str, b_name: str) -> str:
    keys = [k for k in b if a.get(k) != b[k]]
    return "; ".join(f"{k} {_num(a.get(k))} ({a_name}) vs {_num(b[k])} ({b_name})" for k in keys)


def _num(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() else v


def check_token_width(weights: Mapping[str, Any], d_model: int, path: str | os.PathLike) -> None:
    """ValueError when the checkpoint's cross-attention takes tokens of another width than the run's."""
    width = int(np.shape(weights[CROSS_INPUT])[0]) if CROSS_INPUT in weights else None
    if width is not None and width != d_model:
        raise ValueError(f"{path}: the checkpoint takes tokens {width} wide, this run's tokens are {d_model} "
                         f"wide.\n{VIPER_TOKEN}; pick the modalities the checkpoint was trained on.")


def _to_numpy(tensor: Any) -> np.ndarray:
    if hasattr(tensor, "detach"):  # torch tensor
        tensor = tensor.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(tensor)


def import_hf_perceiver(
    state_dict: Mapping[str, Any],
    config: Any,
    num_outputs: int | None = None,
    *,
    dropout_seed: int = 0,
    **viper_kwargs,
) -> Viper:
    """A ``Viper`` (eval mode) holding the weights of an HF ``PerceiverModel`` + classification decoder.

    ``config`` is the ``transformers.PerceiverConfig`` (or a ``ViperConfig``). ``num_outputs`` defaults to
    the rows of ``decoder.decoder.final_layer.weight``. Every name must be used and every parameter
    filled: otherwise a ``ValueError`` lists the unexpected and the missing names. ``dropout_seed``
    seeds the dropout streams; ``viper_kwargs`` (``dtype``, ``param_dtype``) go to ``Viper``.
    """
    weights = strip_prefixes(state_dict)
    if num_outputs is None:
        final = weights.get("decoder.decoder.final_layer.weight")
        num_outputs = final.shape[0] if final is not None else None
    vcfg = config if isinstance(config, ViperConfig) else ViperConfig.from_hf(config, num_outputs)
    if num_outputs is not None and vcfg.num_outputs != num_outputs:
        vcfg = dataclasses.replace(vcfg, num_outputs=num_outputs)
    # Shapes only: nothing is initialised (or compiled) just to be overwritten.
    model = nnx.eval_shape(lambda: Viper(vcfg, rngs=nnx.Rngs(0), **viper_kwargs))
    targets = hf_parameter_map(model)
    unexpected = sorted(set(weights) - set(targets))
    missing = sorted(set(targets) - set(weights))
    if unexpected or missing:
        raise ValueError(
            "state dict does not match the Perceiver config:\n"
            f"  unexpected ({len(unexpected)}): {_listing(unexpected)}\n"
            f"  missing ({len(missing)}): {_listing(missing)}"
        )
    for name, (param, transpose) in targets.items():
        value = _to_numpy(weights[name])
        value = value.T if transpose else value
        if value.shape != param.shape:
            raise ValueError(f"{name}: shape {tuple(value.shape)} does not fit the Flax parameter {param.shape}")
        param.set_value(jnp.asarray(value, dtype=param.dtype))
    _seed_rng_streams(model, dropout_seed)
    model.eval()
    return model


def _seed_rng_streams(model: nnx.Module, seed: int) -> None:
    """Give the abstract model's dropout streams real keys (one per stream) and zero counts."""
    base = jax.random.key(seed)
    rng_vars = nnx.to_flat_state(nnx.state(model, nnx.RngState))
    for i, (_, var) in enumerate(rng_vars):
        if isinstance(var, nnx.RngKey):
            var.set_value(jax.random.fold_in(base, i))
        elif isinstance(var, nnx.RngCount):
            var.set_value(jnp.zeros((), jnp.uint32))
        else:
            raise TypeError(f"unexpected rng state {type(var).__name__} in the Viper model")


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit]) or "-"
    return shown + (f", ... and {len(names) - limit} more" if len(names) > limit else "")


def hf_parameter_map(model: Viper) -> dict[str, tuple[nnx.Param, bool]]:
    """``{HF name: (Flax parameter, transposed?)}`` for every parameter of ``model``.

    ``transposed`` marks Linear weights: torch stores ``[out, in]``, Flax kernels are ``[in, out]``.
    """
    return dict(_hf_names(model))


def _hf_names(model: Viper) -> Iterator[tuple[str, tuple[nnx.Param, bool]]]:
    yield "embeddings.latents", (model.latents, False)
    yield from _layer_names("encoder.cross_attention", model.cross_attention)
    for i, layer in enumerate(model.self_attends):
        yield from _layer_names(f"encoder.self_attends.{i}", layer)
    dec = "decoder.decoder"
    yield f"{dec}.output_position_encodings.position_embeddings", (model.decoder_query, False)
    yield from _layer_names(f"{dec}.decoding_cross_attention", model.decoder_cross_attention)
    yield from _linear_names(f"{dec}.final_layer", model.final_layer)


def _layer_names(prefix: str, layer: PerceiverLayer):
    att = layer.attention
    yield from _norm_names(f"{prefix}.attention.self.layernorm1", att.layernorm1)
    if att.layernorm2 is not None:
        yield from _norm_names(f"{prefix}.attention.self.layernorm2", att.layernorm2)
    for proj in ("query", "key", "value"):
        yield from _linear_names(f"{prefix}.attention.self.{proj}", getattr(att, proj))
    yield from _linear_names(f"{prefix}.attention.output.dense", att.output)
    yield from _norm_names(f"{prefix}.layernorm", layer.layernorm)
    yield from _linear_names(f"{prefix}.mlp.dense1", layer.mlp.dense1)
    yield from _linear_names(f"{prefix}.mlp.dense2", layer.mlp.dense2)


def _linear_names(prefix: str, linear: nnx.Linear):
    yield f"{prefix}.weight", (linear.kernel, True)  # torch [out, in] vs Flax [in, out]
    yield f"{prefix}.bias", (linear.bias, False)


def _norm_names(prefix: str, norm: nnx.LayerNorm):
    yield f"{prefix}.weight", (norm.scale, False)
    yield f"{prefix}.bias", (norm.bias, False)
