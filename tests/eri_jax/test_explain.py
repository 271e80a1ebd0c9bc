"""Explanations: integrated gradients' completeness, the planted block ranked first, and the CLI's files."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from eri_jax.explain.attribution import completeness_error, feature_blocks, make_block_ig
from eri_jax.models.viper import Viper, ViperConfig, normalize_tokens

T, E = 6, 3
SIGNAL, NOISE = 4, 4  # block widths: the label depends only on the first block


def tiny_viper(seed=0):
    cfg = ViperConfig(d_model=SIGNAL + NOISE, num_latents=4, d_latents=16, num_self_attends_per_block=1,
                      num_self_attention_heads=2, num_cross_attention_heads=1, attention_probs_dropout_prob=0.0,
                      num_outputs=E)
    return Viper(cfg, rngs=nnx.Rngs(seed))


def planted(n=128, seed=0):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=(n, T, SIGNAL)).astype(np.float32)
    noise = rng.normal(size=(n, T, NOISE)).astype(np.float32)
    w = rng.normal(size=(SIGNAL, E)).astype(np.float32)
    y = np.tanh(signal.mean(axis=1) @ w).astype(np.float32)
    return np.concatenate([signal, noise], axis=-1), y


def test_block_boundaries_follow_the_assembly_with_padding_and_letters():
    blocks = feature_blocks(["vit", "fau"], {"vit": 5, "fau": 27}, {"fau": 32}, modalities="VF")
    assert [(b.name, b.start, b.stop) for b in blocks] == [("V:vit", 0, 5), ("F:fau", 5, 37)]
    assert [b.name for b in feature_blocks(["pixels", "fau"], {"pixels": 10, "fau": 6})] == ["pixels", "fau"]


def explained(model):
    """ViPER as the explanations see it: a function of the per-token standardised inputs."""
    return lambda u, m: model(u, m, inputs_normalized=True)


def test_viper_on_standardised_tokens_predicts_what_it_predicts_on_raw_tokens():
    model = tiny_viper()
    model.eval()
    x, _ = planted(8)
    x = jnp.asarray(3.0 * x + 1.0)
    mask = jnp.asarray(np.arange(T) < T - 1)[None].repeat(8, 0)
    np.testing.assert_allclose(np.asarray(explained(model)(normalize_tokens(x), mask)),
                               np.asarray(model(x, mask)), rtol=1e-5, atol=1e-5)


def test_attributions_sum_to_the_prediction_minus_the_baseline_prediction():
    model = tiny_viper()
    model.eval()
    x, _ = planted(8)
    mask = np.ones((8, T), bool)
    mask[2, -2:] = False  # masked tokens: no influence on f, so no attribution
    blocks = feature_blocks(["a", "b"], {"a": SIGNAL, "b": NOISE})
    u, mask = normalize_tokens(jnp.asarray(x)), jnp.asarray(mask)
    coarse = completeness_error(*make_block_ig(explained(model), blocks, 2)(u, mask))
    attr, fx, f0 = make_block_ig(explained(model), blocks, 32)(u, mask)
    err = completeness_error(attr, fx, f0)
    scale = np.abs(np.asarray(fx) - np.asarray(f0)).max()
    assert err.max() < 1e-2 * scale and err.max() < coarse.max()  # finer path, smaller quadrature error
    assert np.allclose(np.asarray(attr)[2, :, -2:], 0.0)


def test_the_block_that_carries_the_signal_ranks_first():
    x, y = planted()
    model = tiny_viper()
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x, y):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        opt.update(model, grads)
        return loss

    first = None
    for _ in range(150):
        loss = float(step(model, opt, jnp.asarray(x), jnp.asarray(y)))
        first = loss if first is None else first
    assert loss < 0.5 * first  # it learned something
    model.eval()
    blocks = feature_blocks(["signal", "noise"], {"signal": SIGNAL, "noise": NOISE})
    attr, _, _ = make_block_ig(explained(model), blocks, 16)(normalize_tokens(jnp.asarray(x[:32])), None)
    per_block = np.abs(np.asarray(attr).sum(axis=2)).mean(axis=0)  # [E, K]
    assert (per_block.argmax(axis=1) == 0).sum() >= E - 1
    assert per_block[:, 0].mean() > 3 * per_block[:, 1].mean()


# ------------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def viper_run(tmp_path_factory):
    """A ViPER run (demo preset, 1 epoch) trained through the CLI on the planted dataset."""
    import warnings

    from eri_jax import train

    from .train_fixtures import build_dataset

    root = tmp_path_factory.mktemp("explain")
    name, data_dir = build_dataset(root, sizes=(("train", 32), ("dev", 16), ("test", 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert train.main(["--dataset", name, "--data-dir", str(data_dir), "--workdir", str(root / "ck"),
                           "--runs-dir", str(root / "runs"), "--no-progress", "--model", "viper", "--preset",
                           "demo", "--features", "pixels,fau", "--epochs", "1", "--run-name", "v"]) == 0
    return root


def test_cli_writes_json_and_figures_for_the_extreme_and_the_asked_clips(viper_run, capsys):
    import json

    from eri_jax.explain.cli import main

    out = viper_run / "out"
    assert main(["--run-dir", str(viper_run / "ck" / "v"), "--runs-dir", str(out), "--steps", "16",
                 "--top", "2", "--clips", "00040"]) == 0
    folder = out / "v"
    for name in ("explain_dev_modalities.png", "explain_dev_frames.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads((folder / "explain_dev.json").read_text())
    assert [b["name"] for b in res["blocks"]] == ["pixels", "fau"] and res["blocks"][1]["stop"] == 16
    assert set(res["modality_rank"]["Adoration"]) == {"pixels", "fau"}
    assert res["completeness"]["max_abs_error"] < 0.05 * res["completeness"]["max_abs_change"]
    assert [c["chosen"] for c in res["clips"]] == ["extreme", "extreme", "asked"]
    assert res["clips"][2]["id"] == "00040" and np.asarray(res["clips"][2]["attribution"]).shape == (7, 8, 2)
    assert "top block per emotion" in capsys.readouterr().out
    # ViPER's cross-attention over the frames: per clip (averaged over heads and latents) and for the split.
    att = res["attention"]
    assert "averaged over the" in att["method"] and len(att["clips"]) == res["n_clips"] == 16
    per_clip = np.asarray(list(att["clips"].values()))
    assert per_clip.shape == (16, 8) and np.allclose(per_clip.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(att["split_mean"], per_clip.mean(axis=0), atol=1e-7)
    for clip in res["clips"]:
        assert clip["attention"] == att["clips"][clip["id"]]
        masked = ~np.asarray(clip["frame_mask"], bool)
        assert np.all(np.asarray(clip["attention"])[masked] == 0.0)
    masked_clips = [i for i in att["clips"] if int(i) % 5 == 0]  # the fixture masks 2 frames of every 5th clip
    assert masked_clips and all(att["clips"][i][-2:] == [0.0, 0.0] for i in masked_clips)
    assert (folder / "explain_dev_attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res["dataset"] == "hume_reaction/full" and res["tags"][0] == "synthetic data"


def test_cli_refuses_a_clip_the_split_does_not_have(viper_run, capsys):
    from eri_jax.explain.cli import main

    assert main(["--run-dir", str(viper_run / "ck" / "v"), "--runs-dir", str(viper_run / "o2"),
                 "--clips", "99999"]) == 2
    assert "99999 not among" in capsys.readouterr().err
    assert not (viper_run / "o2" / "v" / "explain_dev.json").exists()


def test_data_dir_finds_a_moved_dataset(viper_run, tmp_path, capsys):
    """The run records where its dataset was; --data-dir names where it is now (as for eri_jax.evaluate)."""
    import shutil

    from eri_jax.explain.cli import main

    moved = tmp_path / "moved"
    shutil.copytree(viper_run / "tfds", moved)
    args = ["--run-dir", str(viper_run / "ck" / "v"), "--runs-dir", str(tmp_path / "o"), "--steps", "2", "--top", "1"]
    assert main(args + ["--data-dir", str(moved)]) == 0
    assert (tmp_path / "o" / "v" / "explain_dev.json").is_file()
    capsys.readouterr()
    assert main(args + ["--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_report_shows_the_explanations_of_an_explained_run_only(viper_run, tmp_path):
    """The report over the run's own runs folder: no section before `eri_jax.explain`, then one whose table
    is the JSON's and whose figures are copied beside report.md."""
    import json
    import re

    from eri_jax.explain.cli import main
    from eri_jax.report import BootstrapSettings, build_report, load_dataset_labels


    data = load_dataset_labels("hume_reaction/full", viper_run / "tfds")
    boot = BootstrapSettings(n_boot=20)
    before = build_report(viper_run / "runs", viper_run / "report0", data, boot=boot)
    assert before["explanations"] == [] and "## Explanations" not in (viper_run / "report0" / "report.md").read_text()

    assert main(["--run-dir", str(viper_run / "ck" / "v"), "--steps", "4", "--top", "1"]) == 0
    res = json.loads((viper_run / "runs" / "v" / "explain_dev.json").read_text())
    out = viper_run / "report1"
    report = build_report(viper_run / "runs", out, data, boot=boot)
    (entry,) = report["explanations"]
    assert entry["run"] == "v" and entry["status"] == "ok"
    assert entry["modality_mean_abs"] == res["modality_mean_abs"] and entry["modality_rank"] == res["modality_rank"]
    assert entry["attention"]["split_mean"] == res["attention"]["split_mean"]
    md = (out / "report.md").read_text()
    heading = next(line for line in md.splitlines() if line.startswith("## Explanations"))
    assert "synthetic data" in heading
    section = md[md.index(heading):]
    table = {cells[0]: cells[1:] for line in section.splitlines() if line.startswith("| ")
             for cells in [[c.strip() for c in line.strip("|").split("|")]] if cells[0] in res["emotions"]}
    assert list(table) == res["emotions"]
    for emotion, cells in table.items():
        values = [float(c) for c in cells[:2]]
        np.testing.assert_allclose(values, [res["modality_mean_abs"][emotion][b] for b in ("pixels", "fau")],
                                   rtol=1e-3)
        assert cells[2] == " > ".join(res["modality_rank"][emotion])
    linked = re.findall(r"\]\((explain_v_dev_\w+\.png)\)", section)
    assert linked == [f"explain_v_dev_{k}.png" for k in ("modalities", "frames", "attention")]
    for name in linked:
        original = viper_run / "runs" / "v" / name.replace("explain_v_", "explain_")
        assert (out / name).read_bytes() == original.read_bytes()
    # Explanations made on another dataset are named and left out; a file that is not one is an error naming it.
    from eri_jax.report.explanations import collect_explanations

    elsewhere = tmp_path / "runs" / "w"
    elsewhere.mkdir(parents=True)
    (elsewhere / "explain_dev.json").write_text(json.dumps({**res, "dataset": "hume_reaction/demo"}))
    (left,) = collect_explanations(tmp_path / "runs", tmp_path / "r", "hume_reaction/full", "dev")
    assert left["status"] == "left out" and "hume_reaction/demo" in left["reason"]
    assert not (tmp_path / "r").exists()
    (elsewhere / "explain_dev.json").write_text("[]")
    with pytest.raises(ValueError, match=r"w/explain_dev.json: not an explain_<split>.json"):
        collect_explanations(tmp_path / "runs", tmp_path / "r", "hume_reaction/full", "dev")
