"""Flax NNX models: the ViPER Perceiver, the probing MLP and the MuSe LSTM baseline.

All share the call ``model(inputs, mask=None)`` and take ``dtype`` (compute) and ``param_dtype``.
Dropout follows ``model.train()`` / ``model.eval()`` and draws from the rng stream "dropout".
"""

from eri_jax.models.lstm import MuseLSTM
from eri_jax.models.probe import ACTIVATION_NAMES, ACTIVATIONS, Probe, activation_index, apply_activation
from eri_jax.models.viper import Viper, ViperConfig, count_params
from eri_jax.models.viper_import import import_hf_perceiver, load_state_dict

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "MuseLSTM",
    "Probe",
    "Viper",
    "ViperConfig",
    "activation_index",
    "apply_activation",
    "count_params",
    "import_hf_perceiver",
    "load_state_dict",
]
