"""Build a model by name from its saved settings, so `evaluate.py` can rebuild what `train.py` trained."""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from eri_jax.models.lstm import MuseLSTM
from eri_jax.models.probe import Probe
from eri_jax.models.viper import Viper, ViperConfig
from eri_jax.models.viper_import import check_token_width, import_hf_perceiver, load_state_dict

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(precision: str):
    """The activation dtype for `--precision` (parameters always stay float32)."""
    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[precision]


def viper_config(model_kwargs: dict[str, Any], *, in_dim: int, num_outputs: int):
    """The ViperConfig for inputs of width `in_dim` (d_model) and `num_outputs` emotions."""
    return ViperConfig(d_model=in_dim, num_outputs=num_outputs, **model_kwargs)


def build_model(name: str, model_kwargs: dict[str, Any], *, in_dim: int, num_outputs: int, seed: int,
                precision: str = "float32", init_from: str | None = None,
                trust_pickle: bool = False) -> nnx.Module:
    """A freshly initialised model (seeded), or ViPER with Hugging Face Perceiver weights (`init_from`).

    name: viper | probe | lstm. model_kwargs: the constructor settings of that model (see training/presets.py).
    """
    dtype = compute_dtype(precision)
    rngs = nnx.Rngs(seed)  # one seed; the params and dropout streams derive from it
    if init_from is not None and name != "viper":
        raise ValueError(f"--init-from loads Hugging Face Perceiver weights into ViPER, not into {name}")
    if name == "viper":
        config = viper_config(model_kwargs, in_dim=in_dim, num_outputs=num_outputs)
        if init_from is not None:
            return _load_hf_viper(config, init_from, trust_pickle=trust_pickle, seed=seed, dtype=dtype)
        return Viper(config, rngs=rngs, dtype=dtype, param_dtype=jnp.float32)
    if name == "probe":
        return Probe(in_dim, model_kwargs.get("hidden", 512), num_outputs,
                     activation=model_kwargs.get("activation", "relu"), rngs=rngs, dtype=dtype)
    if name == "lstm":
        return MuseLSTM(in_dim, num_outputs, hidden=model_kwargs.get("hidden", 64),
                        num_layers=model_kwargs.get("num_layers", 3),
                        dropout=model_kwargs.get("dropout", 0.5), rngs=rngs, dtype=dtype)
    raise ValueError(f"unknown model {name!r}; choose viper, probe or lstm")


# The last linear layer of each model, and whether a sigmoid follows it.
OUTPUT_LAYERS = {"viper": ("final_layer", False), "probe": ("linear2", True), "lstm": ("fc2", True)}
OUTPUT_BIAS_INITS = ("zero", "train-mean")


def set_output_bias(model: nnx.Module, name: str, label_mean) -> None:
    """Start the model at the train-label mean: the output layer's bias becomes the mean (raw outputs)
    or its logit (sigmoid outputs), so early training is not spent (and, for the small demo ViPER,
    collapsed) on learning the mean."""
    attr, sigmoid = OUTPUT_LAYERS[name]
    layer = getattr(model, attr)
    mean = np.asarray(label_mean, np.float64)
    if mean.shape != layer.bias.shape:
        raise ValueError(f"label mean of shape {mean.shape} does not fit the output bias {layer.bias.shape}")
    if sigmoid:
        p = np.clip(mean, 1e-4, 1 - 1e-4)
        mean = np.log(p / (1 - p))
    layer.bias[...] = jnp.asarray(mean, layer.bias[...].dtype)


def _load_hf_viper(config: Any, path: str, *, trust_pickle: bool, seed: int, dtype) -> nnx.Module:
    """ViPER holding the parameters of a Hugging Face Perceiver checkpoint (nothing initialised twice)."""
    state_dict = load_state_dict(path, trust_pickle=trust_pickle)
    check_token_width(state_dict, config.d_model, path)
    model = import_hf_perceiver(state_dict, config, num_outputs=config.num_outputs, dropout_seed=seed,
                                dtype=dtype, param_dtype=jnp.float32)
    if model.config != config:
        raise ValueError(f"{path}: the checkpoint's Perceiver ({model.config}) does not match this run's "
                         f"ViPER config ({config})")
    return model
