"""Training: loss, schedule (against PyTorch), compile-once step, feature assembly, CLI, resume, NaN stop,
evaluation CLI, and learning on a dataset with planted signal."""
from __future__ import annotations

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eri_jax import evaluate, train
from eri_jax.inputs import assembly as feats
from eri_jax.inputs.dataset import SplitData, iterate_batches
from eri_jax.models.probe import Probe
from eri_jax.training import loop
from eri_jax.training.checkpoints import RunCheckpoints, flatten_state
from eri_jax.training.inputs import batch_arrays
from eri_jax.training.step import TRACE_COUNTS, learning_rate, make_optimizer, make_train_step, masked_mse
from tfds_hume.manifest import FeatureSpec

from .train_fixtures import MISSING_FAU_ID, build_dataset, small_config

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    name, data_dir = build_dataset(root)
    return name, str(data_dir)


def tiny_config(tmp_path, dataset, **kw):
    return small_config(dataset, tmp_path, **kw)


def cli(dataset, tmp_path, *args):
    name, data_dir = dataset
    return ["--dataset", name, "--data-dir", data_dir, "--workdir", str(tmp_path / "ck"),
            "--runs-dir", str(tmp_path / "runs"), "--no-progress", *args]


# ------------------------------------------------------------------------------------- loss, optimizer


def test_masked_mse_matches_torch_on_labelled_entries_and_keeps_gradients_finite():
    rng = np.random.default_rng(0)
    pred = rng.random((6, 7)).astype(np.float32)
    labels = rng.random((6, 7)).astype(np.float32)
    labels[1, 3] = labels[4, :] = np.nan  # unlabelled entries
    row_mask = np.array([1, 1, 1, 1, 1, 0], bool)  # last row is padding
    labels[5] = 123.0  # a pad row's values must not matter
    m = row_mask[:, None] & ~np.isnan(labels)
    expected = torch.nn.MSELoss()(torch.tensor(pred[m]), torch.tensor(labels[m])).item()
    got = float(masked_mse(jnp.asarray(pred), jnp.asarray(labels), jnp.asarray(row_mask)))
    assert got == pytest.approx(expected, rel=1e-6)
    grad = jax.grad(lambda p: masked_mse(p, jnp.asarray(labels), jnp.asarray(row_mask)))(jnp.asarray(pred))
    assert np.isfinite(np.asarray(grad)).all()
    assert np.all(np.asarray(grad)[~m] == 0)


def test_adamw_step_schedule_matches_torch_steplr():
    """AdamW + halving every 2 updates equals torch AdamW + StepLR(2, 0.5), and the LR is read from state."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    lin = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    w0, b0 = np.asarray(lin.kernel[...]), np.asarray(lin.bias[...])
    opt = nnx.Optimizer(lin, make_optimizer("adamw", 0.1, 0.01, halve_steps=2), wrt=nnx.Param)

    t_lin = torch.nn.Linear(3, 2)
    with torch.no_grad():
        t_lin.weight.copy_(torch.tensor(w0.T))
        t_lin.bias.copy_(torch.tensor(b0))
    t_opt = torch.optim.AdamW(t_lin.parameters(), lr=0.1, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.StepLR(t_opt, step_size=2, gamma=0.5)
    for _ in range(7):
        assert learning_rate(nnx.state((lin, opt)), 2) == pytest.approx(sched.get_last_lr()[0], rel=1e-6)
        grads = nnx.grad(lambda m: jnp.mean((m(jnp.asarray(x)) - y) ** 2))(lin)
        opt.update(lin, grads)
        t_opt.zero_grad()
        torch.mean((t_lin(torch.tensor(x)) - torch.tensor(y)) ** 2).backward()
        t_opt.step()
        sched.step()
    np.testing.assert_allclose(np.asarray(lin.kernel[...]), t_lin.weight.detach().numpy().T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(lin.bias[...]), t_lin.bias.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_train_step_compiles_once_and_donates_the_state():
    rng = np.random.default_rng(2)
    n, d, e = 10, 5, 7  # 10 rows in batches of 4: the last batch is padded
    data = SplitData(split="train", ids=np.array([str(i) for i in range(n)]),
                     labels=rng.random((n, e)).astype(np.float32),
                     features={feats.INPUT_KEY: rng.normal(size=(n, d)).astype(np.float32)},
                     frame_masks={}, missing={feats.INPUT_KEY: np.zeros(n, bool)}, emotions=list("abcdefg"))
    model = Probe(d, 8, e, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split((model, nnx.Optimizer(model, make_optimizer("adamw", 1e-2, 0.01),
                                                      wrt=nnx.Param)))
    step = make_train_step(graphdef)
    before = TRACE_COUNTS["train_step"]
    losses = []
    for epoch in range(2):
        for batch in iterate_batches(data, 4, shuffle=True, seed=0, epoch=epoch):
            old = state
            state, loss = step(state, batch_arrays(batch))
            losses.append(float(loss))
            assert all(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(old))
    assert TRACE_COUNTS["train_step"] - before == 1
    assert len(losses) == 6 and losses[-1] < losses[0]


# ------------------------------------------------------------------------------------------- features


def test_modality_letters_map_to_dataset_keys_in_paper_order():
    assert feats.modality_features("FTV") == ["vit", "clip_text", "fau"]
    assert feats.modality_features("vatf", "vllava_p2") == ["vit", "wavlm", "vllava_text_emb_p2", "fau"]
    assert feats.modality_features("T", "llava_frames") == ["llava_text_emb"]
    for bad in ("VX", "VV", ""):
        with pytest.raises(ValueError, match="modalities"):
            feats.modality_features(bad)
    with pytest.raises(ValueError, match="text source"):
        feats.modality_features("T", "gpt")
    assert feats.resolve_features(features=["pixels", " fau"]) == ["pixels", "fau"]


def _split(n=4, t=3):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(n, t, 2)).astype(np.float32)
    b = rng.normal(size=(n, t, 3)).astype(np.float32)
    v = rng.normal(size=(n, 4)).astype(np.float32)
    ma = np.ones((n, t), bool)
    ma[0, 2] = False
    mb = np.ones((n, t), bool)
    mb[1, 0] = False
    mb[3] = False  # clip 3 has no valid frame of b
    missing = {"a": np.zeros(n, bool), "b": np.zeros(n, bool), "v": np.array([0, 0, 1, 0], bool)}
    data = SplitData(split="dev", ids=np.array(["c0", "c1", "c2", "c3"]), labels=np.zeros((n, 7), np.float32),
                     features={"a": a, "b": b, "v": v}, frame_masks={"a": ma, "b": mb}, missing=missing,
                     emotions=list("abcdefg"))
    specs = {"a": FeatureSpec("frame", 2, t), "b": FeatureSpec("frame", 3, t), "v": FeatureSpec("video", 4)}
    return data, specs


def test_assemble_tokens_concatenates_replicates_and_masks():
    data, specs = _split()
    with pytest.warns(UserWarning, match=r"dev: 2 of 4 clips .* left out: c2, c3"):
        out = feats.assemble(data, ["a", "v", "b"], specs, "viper")
    x, m = out.features[feats.INPUT_KEY], out.frame_masks[feats.INPUT_KEY]
    assert list(out.ids) == ["c0", "c1"] and x.shape == (2, 3, 9) and feats.input_dim(["a", "v", "b"], specs) == 9
    np.testing.assert_array_equal(x[1, :, :2], data.features["a"][1])
    np.testing.assert_array_equal(x[1, :, 2:6], np.repeat(data.features["v"][1][None], 3, 0))
    np.testing.assert_array_equal(x[1, :, 6:], data.features["b"][1])
    np.testing.assert_array_equal(m, [[True, True, False], [False, True, True]])


def test_assemble_vector_mean_pools_valid_frames():
    data, specs = _split()
    with pytest.warns(UserWarning, match="1 of 4"):
        out = feats.assemble(data, ["a", "b"], specs, "probe")
    x = out.features[feats.INPUT_KEY]
    assert x.shape == (3, 5) and feats.INPUT_KEY not in out.frame_masks
    np.testing.assert_allclose(x[0, :2], data.features["a"][0, :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(x[1, 2:], data.features["b"][1, 1:].mean(0), rtol=1e-6)
    np.testing.assert_allclose(x[2, 2:], data.features["b"][2].mean(0), rtol=1e-6)


def test_standardizer_fits_valid_rows_only():
    x = np.array([[[1.0, 5.0], [3.0, 5.0], [100.0, 7.0]]], np.float32)
    mask = np.array([[True, True, False]])
    s = feats.Standardizer.fit(x, mask)
    np.testing.assert_allclose(s.mean, [2.0, 5.0])
    np.testing.assert_allclose(s.std, [1.0, 1.0])  # population std 1; constant column divided by 1
    s2 = feats.Standardizer.from_json(json.loads(json.dumps(s.to_json())))
    np.testing.assert_array_equal(s2.mean, s.mean)


# ----------------------------------------------------------------------------------------- CLI errors


def test_unknown_or_text_feature_is_a_clear_error(dataset, tmp_path, capsys):
    assert train.main(cli(dataset, tmp_path, "--model", "viper", "--preset", "demo", "--features", "pixels,vit")) == 2
    err = capsys.readouterr().err
    assert "no feature 'vit'" in err and all(k in err for k in ("fau", "pixels", "vllava_emb_p1"))
    assert train.main(cli(dataset, tmp_path, "--model", "probe", "--features", "vllava_text_p1")) == 2
    assert "is text, not numeric" in capsys.readouterr().err
    assert train.main(cli(dataset, tmp_path, "--model", "viper", "--modalities", "VF")) == 2
    assert "no feature 'vit'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:train. 1 of 96 clips:UserWarning")
def test_rerun_with_other_settings_is_refused(dataset, tmp_path):
    with pytest.warns(UserWarning, match=f"train: 1 of 96 clips lack a selected feature .fau.*{MISSING_FAU_ID}"):
        loop.train(tiny_config(tmp_path, dataset, epochs=1), progress=False)
    with pytest.raises(ValueError, match=r"other settings \(lr: saved 0.003, now 0.01\)"):
        loop.train(tiny_config(tmp_path, dataset, epochs=1, lr=1e-2), progress=False)


# -------------------------------------------------------------------------------- resume, NaN, bfloat16


class _Interrupt(Exception):
    pass


def _arrays(state):
    return {k: np.asarray(v) for k, v in flatten_state(state).items()}


@pytest.mark.filterwarnings("ignore:train. 1 of 96 clips:UserWarning")  # the clip without `fau`
def test_resume_after_interrupt_gives_the_uninterrupted_result(dataset, tmp_path):
    full = loop.train(tiny_config(tmp_path, dataset, run_name="full"), progress=False)

    def stop_after_2(epoch, entry):
        if epoch == 2:
            raise _Interrupt

    cfg = tiny_config(tmp_path, dataset, run_name="cut")
    out = tmp_path / "runs" / "cut"
    out.mkdir(parents=True)
    stale = ("predictions_train_oof.csv", "explain_dev.json", "explain_dev_frames.png")
    for name in stale:
        (out / name).write_text("from an earlier model of this name")
    with pytest.raises(_Interrupt):
        loop.train(cfg, progress=False, on_epoch_end=stop_after_2)
    assert not any((out / name).exists() for name in stale)  # a fresh model: derived outputs were stale
    with RunCheckpoints(cfg.run_dir) as ckpt:
        assert ckpt.latest_epoch() == 2
    (out / "crossfit.json").write_text("{}")
    seen = []
    resumed = loop.train(cfg, progress=False, on_epoch_end=lambda e, _: seen.append(e))
    assert seen == [3, 4]  # only the missing epochs ran
    assert (out / "crossfit.json").exists()  # resuming the same model keeps them
    a, b = _arrays(full.state), _arrays(resumed.state)
    assert a.keys() == b.keys()
    for k in a:  # dropout RNG, Adam moments, step counters and parameters: all identical
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    strip = [{k: v for k, v in e.items() if k != "time_s"} for e in full.log]
    assert strip == [{k: v for k, v in e.items() if k != "time_s"} for e in resumed.log]
    # Kept: the best epoch (by dev mean Pearson) and the last one, nothing else.
    rs = [e["dev_mean_pearson"] for e in full.log]
    assert full.best_epoch == int(np.argmax(rs)) + 1 and full.last_epoch == 4
    kept = sorted(int(p.name) for p in (cfg.run_dir.parent / "full" / "steps").iterdir() if p.name.isdigit())
    assert kept == sorted({full.best_epoch, 4})
    assert [e["lr"] for e in full.log] == pytest.approx([3e-3, 3e-3, 1.5e-3, 1.5e-3])
    log = json.loads((tmp_path / "runs" / "cut" / "train_log.json").read_text())
    assert log["best_epoch"] == resumed.best_epoch and len(log["epochs"]) == 4


def test_nan_loss_stops_with_epoch_and_step(dataset, tmp_path):
    cfg = tiny_config(tmp_path, dataset, model="probe", lr=1e38, schedule="constant", halve_every=0)
    with pytest.raises(loop.TrainingDiverged, match=r"at epoch 1, step \d+ of 6 \(global step \d+\)"):
        loop.train(cfg, progress=False)
    with RunCheckpoints(cfg.run_dir) as ckpt:
        assert ckpt.latest_epoch() is None  # the diverged epoch was not saved


def test_bfloat16_compute_keeps_float32_params(dataset, tmp_path):
    res = loop.train(tiny_config(tmp_path, dataset, model="probe", precision="bfloat16", epochs=2),
                      progress=False)
    params = nnx.filter_state(res.state[0], nnx.Param)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {jnp.dtype(jnp.float32)}
    assert res.metrics["dev"]["mean_pearson"] is not None


# ------------------------------------------------------------------------------ learning + evaluate CLI


@pytest.fixture(scope="module")
def demo_runs(dataset, tmp_path_factory):
    """ViPER (demo preset: small Perceiver) and the probe trained through the CLI on the planted dataset."""
    tmp = tmp_path_factory.mktemp("learn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert train.main(cli(dataset, tmp, "--model", "viper", "--preset", "demo", "--features", "pixels,fau",
                              "--epochs", "12", "--run-name", "viper")) == 0
        assert train.main(cli(dataset, tmp, "--model", "probe", "--preset", "demo",
                              "--features", "vllava_emb_p1", "--epochs", "12", "--run-name", "probe")) == 0
    return tmp


@pytest.mark.parametrize("run,floor", [("viper", 0.3), ("probe", 0.4)])
def test_demo_preset_beats_a_constant_predictor(demo_runs, dataset, run, floor):
    """Measured on this planted set: ViPER ~0.5, probe ~0.7 dev mean Pearson; floors well below."""
    m = json.loads((demo_runs / "runs" / run / "metrics_dev.json").read_text())
    assert m["mean_pearson"] > floor and m["n_undefined_pearson"] == 0
    assert m["meta"]["synthetic"] is True and m["meta"]["model"] == run
    # Its squared error is also clearly below predicting the train mean for every clip.
    from eri_jax.inputs.dataset import load_split

    name, data_dir = dataset
    tr, dev = load_split("train", [], name=name, data_dir=data_dir), load_split("dev", [], name=name, data_dir=data_dir)
    lines = (demo_runs / "runs" / run / "predictions_dev.csv").read_text().splitlines()
    assert lines[0].split(",")[0] == "File_ID" and len(lines) == 1 + len(dev.ids)
    pred = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    const_mse = np.mean((dev.labels - tr.labels.mean(0)) ** 2)
    assert np.mean((dev.labels - pred) ** 2) < 0.9 * const_mse
    log = json.loads((demo_runs / "runs" / run / "train_log.json").read_text())
    assert {"epoch", "train_loss", "dev_mean_pearson", "lr", "time_s"} <= set(log["epochs"][0])
    assert json.loads((demo_runs / "runs" / run / "config.json").read_text())["features"]


def test_evaluate_cli_restores_the_best_checkpoint(demo_runs, tmp_path):
    out = tmp_path / "again"
    assert evaluate.main(["--run-dir", str(demo_runs / "ck" / "viper"), "--runs-dir", str(out)]) == 0
    first, again = demo_runs / "runs" / "viper", out / "viper"
    assert (again / "predictions_dev.csv").read_text() == (first / "predictions_dev.csv").read_text()
    a = json.loads((again / "metrics_dev.json").read_text())
    assert a["mean_pearson"] == json.loads((first / "metrics_dev.json").read_text())["mean_pearson"]
    assert evaluate.main(["--run-dir", str(demo_runs / "ck" / "viper"), "--runs-dir", str(out),
                          "--split", "test", "--checkpoint", "last"]) == 0
    t = json.loads((again / "metrics_test.json").read_text())
    assert t["mean_pearson"] is None and t["n_clips"] == 16 and t["meta"]["epoch"] == 12
    assert evaluate.main(["--run-dir", str(tmp_path / "nothing")]) == 2


def test_init_from_hf_perceiver_weights(tmp_path):
    """--init-from: a torch state dict of HF's PerceiverModel + classification decoder lands in ViPER."""
    from transformers.models.perceiver.modeling_perceiver import PerceiverClassificationDecoder, PerceiverModel

    from eri_jax.models.factory import build_model, viper_config
    from eri_jax.training.presets import get_preset

    kwargs = get_preset("viper", "demo").model_kwargs
    hf_cfg = viper_config(kwargs, in_dim=16, num_outputs=7).to_hf()
    torch.manual_seed(0)
    ref = PerceiverModel(hf_cfg, decoder=PerceiverClassificationDecoder(
        hf_cfg, num_channels=hf_cfg.d_latents, use_query_residual=True,
        trainable_position_encoding_kwargs=dict(num_channels=hf_cfg.d_latents, index_dims=1))).eval()
    path = tmp_path / "viper.pt"
    torch.save(ref.state_dict(), path)
    model = build_model("viper", kwargs, in_dim=16, num_outputs=7, seed=3, init_from=str(path))
    np.testing.assert_array_equal(np.asarray(model.final_layer.kernel[...]),
                                  ref.state_dict()["decoder.decoder.final_layer.weight"].numpy().T)
    x = np.random.default_rng(0).normal(size=(2, 5, 16)).astype(np.float32)
    model.eval()
    with torch.no_grad():
        want = ref(inputs=torch.tensor(x)).logits.numpy()
    np.testing.assert_allclose(np.asarray(nnx.jit(lambda m, v: m(v))(model, jnp.asarray(x))), want, atol=1e-4)
    with pytest.raises(ValueError, match="does not match|does not fit"):
        build_model("viper", {**kwargs, "num_latents": 16}, in_dim=16, num_outputs=7, seed=0, init_from=str(path))
    with pytest.raises(ValueError, match="into ViPER, not into probe"):
        build_model("probe", {}, in_dim=16, num_outputs=7, seed=0, init_from=str(path))
