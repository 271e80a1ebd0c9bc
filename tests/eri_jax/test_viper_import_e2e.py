"""A checkpoint saved as ViPER saves it, loaded end to end: real feature widths (768/512/768/27) ->
`python -m extract` -> TFDS -> `python -m eri_jax.train --init-from` with no training -> dev predictions
equal to the PyTorch model's outputs on tokens padded ViPER's way."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.eri_jax.test_viper_checkpoint import viper_torch  # noqa: E402

# Feature folder (a shipped folder becomes its dataset key through tfds_hume.feature_names: FAUs -> fau),
# width, value scale, offset.
BLOCKS = (("vit", 768, 1.0, 0.0), ("wavlm", 512, 8.0, 3.0), ("clip_text", 768, 0.2, -0.1), ("FAUs", 27, 1.5, 2.0))
KEYS = ["vit", "wavlm", "clip_text", "fau"]
DATASET = "hume_reaction/shipped"


@pytest.fixture(scope="module")
def real_width_dataset(tmp_path_factory):
    """A MuSe-layout set whose feature CSVs have the real widths, extracted and built by `python -m extract`."""
    from extract.cli import main as extract_main
    from tfds_hume.synthetic import generate
    from tfds_hume.synthetic.features import write_feature_csv

    tmp = tmp_path_factory.mktemp("viper_e2e")
    root = generate(tmp / "c2_muse_reaction", layout="muse", clips_per_split=2, seed=5, progress=False)
    feats_dir = root / "feats"
    shutil.rmtree(feats_dir / "VGGFace2")
    rng = np.random.default_rng(0)
    for fau_csv in sorted((feats_dir / "FAUs").glob("*.csv")):
        header = fau_csv.read_text().splitlines()[0].split(",")
        times = np.loadtxt(fau_csv, delimiter=",", skiprows=1, usecols=header.index("timestamp"), ndmin=1)
        for folder, dim, scale, offset in BLOCKS:
            (feats_dir / folder).mkdir(exist_ok=True)
            values = offset + scale * rng.normal(size=(len(times), dim))
            write_feature_csv(feats_dir / folder / fau_csv.name, fau_csv.stem, times, values,
                              [f"{folder}_{i}" for i in range(dim)])
    data_dir = tmp / "tfds"
    assert extract_main(["--data-root", str(root), "--cache-dir", str(tmp / "cache"), "--data-dir",
                         str(data_dir), "--no-progress"]) == 0
    return tmp, data_dir


def vipers_checkpoint(path, d_model: int = 2080) -> torch.nn.Module:
    """A tiny ViPER (8/8 heads at d_model 2080) with weights large enough that every input column counts,
    saved as train_perceiver.py saves it: torch.save(model)."""
    config = transformers.PerceiverConfig(d_model=d_model, num_labels=7, num_latents=4, d_latents=16,
                                          num_self_attends_per_block=1)  # heads: HF's (ViPER's) 8/8
    model = viper_torch(config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 1.5 / p.shape[-1] ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
    torch.save(model, path)
    return model


def vipers_tokens(features: dict[str, np.ndarray], fau_pad: torch.Tensor | None = None) -> torch.Tensor:
    """ViPER's token, built as train_perceiver.py builds it: cat(V, A, T, cat(F, zeros(32, 5)))."""
    v, a, t, f = (torch.from_numpy(np.asarray(features[k], np.float32)) for k in KEYS)
    pad = torch.zeros(*f.shape[:2], 5) if fau_pad is None else fau_pad.expand(*f.shape[:2], 5)
    return torch.cat((v, a, t, torch.cat((f, pad), 2)), 2)


def _train_argv(tmp, data_dir, checkpoint, *extra):
    return ["--dataset", DATASET, "--data-dir", str(data_dir), "--model", "viper", "--modalities", "VATF",
            "--init-from", str(checkpoint), "--lr", "0", "--epochs", "1", "--workdir", str(tmp / "ck"),
            "--runs-dir", str(tmp / "runs"), "--no-progress", *extra]


@pytest.mark.slow
def test_vipers_pickled_checkpoint_reproduces_its_outputs(real_width_dataset, capsys):
    from eri_jax import train
    from eri_jax.evaluation.run import evaluate_run
    from eri_jax.inputs.dataset import load_split

    tmp, data_dir = real_width_dataset
    model = vipers_checkpoint(tmp / "perceiver_20.model")
    assert train.main(_train_argv(tmp, data_dir, tmp / "perceiver_20.model", "--trust-pickle",
                                  "--run-name", "viper")) == 0
    err = capsys.readouterr().err
    assert "the pickled module's config: d_model 2080" in err and "8 self-/8 cross-attention heads" in err

    dev = load_split("dev", KEYS, name=DATASET, data_dir=data_dir)
    assert [dev.features[k].shape[-1] for k in KEYS] == [768, 512, 768, 27]
    assert all(dev.frame_masks[k].all() for k in KEYS)  # every frame valid: ViPER passes no mask
    with torch.no_grad():
        reference = model(inputs=vipers_tokens(dev.features)).logits.numpy()
        ones_padded = model(inputs=vipers_tokens(dev.features, torch.ones(1))).logits.numpy()
    assert np.abs(ones_padded - reference).max() > 1e-2  # the padding is not neutral: the test can see it

    def predictions() -> np.ndarray:
        with open(tmp / "runs" / "viper" / "predictions_dev.csv", newline="") as f:
            rows = {r["File_ID"].strip("[]"): r for r in csv.DictReader(f)}
        emotions = [e for e in next(iter(rows.values())) if e != "File_ID"]
        return np.array([[float(rows[str(i)][e]) for e in emotions] for i in dev.ids])

    np.testing.assert_allclose(predictions(), reference, atol=1e-4, rtol=1e-4)
    info = json.loads((tmp / "runs" / "viper" / "config.json").read_text())
    assert info["in_dim"] == 2080 and info["block_widths"] == {"fau": 32} and not info["standardize"]
    assert info["model_kwargs"]["num_self_attention_heads"] == info["model_kwargs"]["num_cross_attention_heads"] == 8
    # The run rebuilt from its config.json (eri_jax.evaluate) predicts the same.
    (tmp / "runs" / "viper" / "predictions_dev.csv").unlink()
    evaluate_run(tmp / "ck" / "viper", split="dev")
    np.testing.assert_allclose(predictions(), reference, atol=1e-4, rtol=1e-4)


def test_checkpoints_that_cannot_be_confirmed_are_refused_and_nothing_is_written(real_width_dataset, capsys):
    from eri_jax import train

    tmp, data_dir = real_width_dataset
    model = vipers_checkpoint(tmp / "other.model")
    torch.save(model.state_dict(), tmp / "bare.pt")
    cases = {
        # A bare state dict that is not ViPER-sized: its head counts cannot be confirmed.
        "bare": (_train_argv(tmp, data_dir, tmp / "bare.pt"), "records no head counts"),
        # The checkpoint takes 2080-wide tokens; VAT tokens are 2048 wide.
        "width": (_train_argv(tmp, data_dir, tmp / "other.model", "--trust-pickle", "--modalities", "VAT"),
                  "takes tokens 2080 wide, this run's tokens are 2048"),
        "json": (_train_argv(tmp, data_dir, tmp / "bare.pt", "--perceiver-config", str(tmp / "bad.json")),
                 "bad.json: line 2: not valid JSON"),
    }
    (tmp / "bad.json").write_text('{"d_model": 2080,\n "num_latents": 4,,\n}')
    for name, (argv, message) in cases.items():
        assert train.main(argv + ["--run-name", f"refused-{name}"]) == 2, name
        err = capsys.readouterr().err
        error = err[err.index("error: "):].strip()
        assert message in error and len(error.splitlines()) <= 3 and "Traceback" not in err, (name, error)
        assert not (tmp / "runs" / f"refused-{name}").exists() and not (tmp / "ck" / f"refused-{name}").exists()
