"""Import Hugging Face Perceiver / ViPER weights into the Flax ``Viper``.

``load_state_dict(path)`` reads a checkpoint into ``{name: numpy array}``; ``import_hf_perceiver``
copies those arrays into a new ``Viper``. Accepted files:

* ``.safetensors``;
* a torch state dict (``torch.save(model.state_dict())``, optionally wrapped as ``{"state_dict": ...}`` or
  ``{"model_state_dict": ...}``), read with ``torch.load(weights_only=True)``, which never runs code;
* a whole pickled ``nn.Module`` (how the ViPER code saves its checkpoints: ``torch.save(model)``).
  Unpickling can run arbitrary code, so it is refused unless ``trust_pickle=True`` (``--trust-pickle``).

Names are those of ``PerceiverModel(config, decoder=PerceiverClassificationDecoder(...))``. The leading
wrappers ``module.`` (DataParallel/DDP), ``model.`` and ``perceiver.`` (``PerceiverFor...`` classes) are
stripped, repeatedly, from every name that has them. torch is imported only when a torch file is read.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
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


def load_state_dict(path: str | os.PathLike, *, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    """Read a Perceiver checkpoint into ``{name: float32/int numpy array}`` (prefixes stripped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # via torch: numpy has no bfloat16

        try:
            tensors = load_file(str(path))
        except Exception as err:
            raise ValueError(f"{path}: cannot be read as safetensors ({err})") from err
    else:
        tensors = _torch_load(path, trust_pickle)
    return strip_prefixes({name: _to_numpy(t) for name, t in tensors.items()})


def _torch_load(path: Path, trust_pickle: bool) -> Mapping[str, Any]:
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
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err2:
            raise ValueError(f"{path}: cannot be unpickled ({err2})") from err2
    except Exception as err:
        raise ValueError(f"{path}: cannot be read as a torch checkpoint ({err})") from err
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")
    return obj


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
