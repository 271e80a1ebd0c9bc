"""`--activation` and `--hidden` of `eri_jax.train`: resolved against the preset, recorded in config.json,
part of the run's identity and name, and really used by the trained model."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from eri_jax import train
from eri_jax.inputs.dataset import load_split
from eri_jax.training import restore
from eri_jax.training.checkpoints import flatten_state
from eri_jax.training.config import TrainConfig, make_config

from .train_fixtures import build_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    name, data_dir = build_dataset(tmp_path_factory.mktemp("planted"))
    return name, str(data_dir)


def config(*args: str) -> TrainConfig:
    return make_config(train.build_parser().parse_args(list(args)), synthetic=True)


def test_activation_and_hidden_override_the_preset_and_name_the_run():
    cfg = config("--model", "probe", "--activation", "Leaky-ReLU", "--hidden", "32")
    assert cfg.model_kwargs == {"hidden": 32, "activation": "leaky_relu"}
    assert cfg.run_name == "probe-demo-fau-leaky_relu-h32-s0"
    # The preset's own values leave the default name as it was.
    assert config("--model", "probe", "--activation", "relu", "--hidden", "64").run_name == "probe-demo-fau-s0"
    assert config("--model", "probe").model_kwargs == {"hidden": 64, "activation": "relu"}
    lstm = config("--model", "lstm", "--hidden", "16")
    assert lstm.model_kwargs["hidden"] == 16 and lstm.run_name == "lstm-demo-fau-h16-s0"


@pytest.mark.parametrize("args,message", [
    (("--model", "lstm", "--activation", "tanh"), "--activation is the probe's"),
    (("--model", "viper", "--hidden", "8"), "--hidden is the probe's and the LSTM's"),
    (("--model", "probe", "--hidden", "0"), "--hidden 0: must be at least 1"),
])
def test_settings_a_model_lacks_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        config(*args)


def test_unknown_activation_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        train.build_parser().parse_args(["--model", "probe", "--activation", "swish"])
    assert e.value.code == 2 and "invalid choice: 'swish'" in capsys.readouterr().err


def test_trained_probe_uses_the_activation_it_records(dataset, tmp_path, capsys):
    name, data_dir = dataset
    args = ["--dataset", name, "--data-dir", data_dir, "--workdir", str(tmp_path / "ck"), "--runs-dir",
            str(tmp_path / "runs"), "--no-progress", "--model", "probe", "--features", "vllava_emb_p1",
            "--epochs", "2", "--run-name", "p"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert train.main([*args, "--activation", "tanh", "--hidden", "8"]) == 0
    for folder in ("ck", "runs"):
        saved = json.loads((tmp_path / folder / "p" / "config.json").read_text())
        assert saved["model_kwargs"] == {"hidden": 8, "activation": "tanh"}

    # The dev predictions are sigmoid(W2 tanh(W1 x + b1) + b2) with the best checkpoint's parameters.
    cfg, run_info = restore.read_run(tmp_path / "ck" / "p")
    _, state, *_ = restore.restore(cfg, run_info)
    params = {k: np.asarray(v, np.float64) for k, v in flatten_state(state[0]).items()}
    assert params["linear1.kernel.value"].shape == (12, 8)
    dev = load_split("dev", ["vllava_emb_p1"], name=name, data_dir=data_dir)
    h = np.tanh(dev.features["vllava_emb_p1"] @ params["linear1.kernel.value"] + params["linear1.bias.value"])
    expected = 1 / (1 + np.exp(-(h @ params["linear2.kernel.value"] + params["linear2.bias.value"])))
    lines = (tmp_path / "runs" / "p" / "predictions_dev.csv").read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == list(dev.ids)
    got = np.array([[float(v) for v in line.split(",")[1:]] for line in lines])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The same run under another activation is another model: refused like any other changed setting.
    capsys.readouterr()
    assert train.main([*args, "--activation", "gelu", "--hidden", "8"]) == 2
    assert "model_kwargs: saved {'hidden': 8, 'activation': 'tanh'}" in capsys.readouterr().err
