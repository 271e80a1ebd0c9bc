"""Compiled sweeps: vmapped runs equal runs trained alone, best-epoch tracking, grouping, tables, CLI."""
from __future__ import annotations

import csv
import dataclasses
import json
import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from eri_jax.sweep import engine as eng
from eri_jax.sweep import grid, stacked, tables
from eri_jax.sweep.runner import FAST_COMPILE, train_runs
from eri_jax.training.checkpoints import flatten_state

E = 3
# Tiny models: XLA's backend optimisations cost more compile time than they could save at run time.
FAST = FAST_COMPILE


def planted(n: int, d: int, *, seed: int, t: int | None = None, noise: float = 0.3):
    """Features that are noisy linear views of labels in (0, 1); [n,d] or tokens [n,t,d] with a mask."""
    rng = np.random.default_rng(seed)
    y = 1 / (1 + np.exp(-1.5 * rng.normal(size=(n, E))))
    proj = np.random.default_rng(99).normal(size=(E, d))
    x = y @ proj + noise * rng.normal(size=(n, d))
    if t is None:
        return eng.SplitArrays(x.astype(np.float32), y.astype(np.float32))
    x = np.repeat(x[:, None], t, 1) + noise * rng.normal(size=(n, t, d))
    mask = np.ones((n, t), bool)
    mask[::3, -1] = False  # some clips have a missing last frame
    return eng.SplitArrays(x.astype(np.float32), y.astype(np.float32), mask)


def runs_for(model, seeds, lrs, acts):
    inp = grid.Inputs(label="x", features=("x",))
    return [grid.RunSpec(grid.Setting(model, inp, a, lr), s) for s, lr, a in zip(seeds, lrs, acts)]


@pytest.fixture(scope="module")
def probe_engine():
    train = planted(50, 8, seed=0)  # 50 rows, batch 16: the last batch is padded and masked
    dev = planted(30, 8, seed=1)
    cfg = eng.EngineConfig(batch_size=16, eval_batch_size=16, compiler_options=FAST)
    engine = eng.Engine(eng.probe_builder(8, 8, E), cfg, n_train=50)
    return engine, train, dev


def _params(carry, r=None):
    tree = carry.best_params if r is None else eng.take_run(carry.best_params, r)
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


def assert_equal_to_runs_alone(engine, runs, outs, train, dev, *, epochs):
    """Each run of a sweep (`outs`) equals the same run trained alone: history, best epoch, predictions, params."""
    for i, r in enumerate(runs):
        carry = engine.init(r.seed, r.setting.lr, eng_activation(r), vmapped=False)
        carry, hist = eng.run_epochs(engine, carry, train, dev, epochs, vmapped=False)
        np.testing.assert_allclose(hist["train_loss"], outs[i].history["train_loss"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(hist["dev_pearson"], outs[i].history["dev_pearson"], atol=1e-5)
        assert int(carry.best_epoch) == outs[i].best_epoch
        alone = engine.predict_best(carry, dev, vmapped=False)
        np.testing.assert_allclose(np.asarray(alone), outs[i].predictions, atol=1e-5)
        flat = {k: np.asarray(v) for k, v in flatten_state(carry.best_params).items()}
        assert flat.keys() == outs[i].params.keys()
        for k in flat:
            np.testing.assert_allclose(flat[k], outs[i].params[k], atol=1e-5, err_msg=k)


def test_vmapped_probe_runs_equal_runs_trained_alone(probe_engine):
    engine, train, dev = probe_engine
    runs = runs_for("probe", [0, 1, 2], [1e-3, 3e-3, 1e-2], ["relu", "tanh", "elu"])
    outs, _ = train_runs(engine, runs, train, dev, epochs=3)
    assert_equal_to_runs_alone(engine, runs, outs, train, dev, epochs=3)
    # Per-run settings really differ: other seeds, lrs and activations give other predictions.
    assert np.abs(outs[0].predictions - outs[1].predictions).max() > 1e-3
    assert np.abs(outs[1].predictions - outs[2].predictions).max() > 1e-3


def eng_activation(run):
    from eri_jax.models.probe import activation_index

    return activation_index(run.setting.activation)


@pytest.mark.parametrize("optimizer,halve_every,activations,slots", [
    ("adamw", 0, ["relu", "relu", "tanh", "tanh", "elu", "elu"], (1, 3, 6)),  # slot-wise static activations
    ("adam", 1, ["relu", "relu", "tanh", "gelu", "elu", "linear"], None),  # slots differ by group: selected
])
def test_runs_sharing_a_seed_train_stacked_and_equal_runs_trained_alone(optimizer, halve_every, activations, slots):
    """Seeds interleaved (the grid's order), so grouping permutes the runs; lr and activation vary per run."""
    train, dev = planted(50, 8, seed=0), planted(30, 8, seed=1)
    cfg = eng.EngineConfig(batch_size=16, eval_batch_size=16, optimizer=optimizer, halve_every=halve_every,
                           compiler_options=FAST)
    engine = eng.Engine(eng.probe_builder(8, 8, E), cfg, n_train=50)
    runs = runs_for("probe", [0, 1, 0, 1, 0, 1], [1e-3, 1e-3, 3e-3, 3e-3, 1e-2, 2e-2], activations)
    carry = engine.init([r.seed for r in runs], [r.setting.lr for r in runs], [eng_activation(r) for r in runs])
    assert carry.stacking == stacked.Stacking(((0, 2, 4), (1, 3, 5)), slots)  # the stacked program trains them
    outs, _ = train_runs(engine, runs, train, dev, epochs=3)
    assert_equal_to_runs_alone(engine, runs, outs, train, dev, epochs=3)
    assert np.abs(outs[0].predictions - outs[2].predictions).max() > 1e-3  # same seed, other lr/activation


def test_seed_groups_need_every_seed_with_the_same_runs():
    assert stacked.seed_groups([3, 5, 3, 5]) == ((0, 2), (1, 3))
    assert stacked.seed_groups([0, 0, 0]) == ((0, 1, 2),)
    assert stacked.seed_groups([0, 1, 2]) is None  # nothing shared: run by run
    assert stacked.seed_groups([0, 0, 1]) is None  # unequal groups: run by run
    engine = eng.Engine(eng.viper_builder(_tiny_viper()), eng.EngineConfig(batch_size=4, compiler_options=FAST),
                        n_train=8)
    assert engine.init([0, 0], [1e-3, 1e-3], [0, 0]).stacking is None  # no stacked forward for ViPER
    for stack_seeds, stacking in ((None, stacked.Stacking(((0, 1),), (0, 1))), (False, None)):  # None: on the CPU
        probe = eng.Engine(eng.probe_builder(8, 8, E), eng.EngineConfig(batch_size=4, compiler_options=FAST,
                                                                       stack_seeds=stack_seeds), n_train=8)
        assert probe.init([0, 0], [1e-3, 1e-3], [0, 1]).stacking == stacking
    assert stacked.plan([0, 1, 0, 1], [2, 2, 5, 5]) == stacked.Stacking(((0, 2), (1, 3)), (2, 5))
    assert stacked.plan([0, 1, 0, 1], [2, 3, 5, 5]).activations is None


def _tiny_viper():
    from eri_jax.models.viper import ViperConfig

    return ViperConfig(d_model=6, num_latents=4, d_latents=8, num_self_attends_per_block=1,
                       num_self_attention_heads=2, num_cross_attention_heads=1, num_outputs=E)


def test_stacked_layout_puts_the_run_axis_second_to_last_and_round_trips():
    rng = np.random.default_rng(0)
    groups = ((1, 3, 4), (0, 2, 5))
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    tree = {"scalar": f32(6), "one": f32(6, 1), "vec": f32(6, 5), "mat": f32(6, 4, 3), "t3": f32(6, 2, 4, 3),
            "key": jax.random.split(jax.random.key(0), 6)}
    wide = stacked.to_stacked(tree, groups)
    assert wide["scalar"].shape == (2, 3, 1) and wide["one"].shape == (2, 3, 1) and wide["vec"].shape == (2, 3, 5)
    assert wide["mat"].shape == (2, 3, 3, 4) and wide["t3"].shape == (2, 2, 3, 3, 4)
    for g, members in enumerate(groups):
        for m, r in enumerate(members):  # matrices transposed, run m of group g at [..., m, :]
            np.testing.assert_array_equal(np.asarray(wide["mat"])[g, :, m, :], tree["mat"][r].T)
            np.testing.assert_array_equal(np.asarray(wide["scalar"])[g, m, 0], tree["scalar"][r])
    back = stacked.from_stacked(wide, tree, groups)
    for k in tree:
        a, b = back[k], tree[k]
        if k == "key":
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=k)
    np.testing.assert_array_equal(np.asarray(stacked.per_run(jnp.arange(6).reshape(2, 3), groups)),
                                  [3, 0, 4, 1, 2, 5])  # value g*M+m lands at run groups[g][m]


def test_wide_dot_gradients_equal_autodiff():
    rng = np.random.default_rng(1)
    k, x = jnp.asarray(rng.normal(size=(5, 3, 4))), jnp.asarray(rng.normal(size=(6, 4)))
    w = jnp.asarray(rng.normal(size=(5, 3, 6)))

    def loss(f):
        return lambda k, x: (jnp.tanh(f(k, x)) * w).sum()

    plain = loss(lambda k, x: jnp.einsum("hmd,bd->hmb", k, x))
    for a, b in zip(jax.grad(loss(stacked.wide_dot), (0, 1))(k, x), jax.grad(plain, (0, 1))(k, x)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_slot_activations_equal_each_runs_own():
    from eri_jax.models.probe import apply_activation

    h = jnp.asarray(np.random.default_rng(2).normal(size=(4, 4, 5)).astype(np.float32))
    slots = (1, 1, 3, 5)
    index = jnp.asarray(slots)[:, None]
    want = np.stack([np.asarray(apply_activation(a, h[:, m])) for m, a in enumerate(slots)], axis=1)
    for got in (stacked._activation(index, h, slots), stacked._activation(index, h, None)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def test_sweep_init_matches_the_single_run_trainer_for_the_same_seed(probe_engine):
    """Run seed s starts from the parameters `eri_jax.train` builds for seed s (model_factory)."""
    from eri_jax.models.factory import build_model

    engine, _, _ = probe_engine
    carry = engine.init([4, 7, 9], [1e-3] * 3, [1, 3, 5])
    for r, seed in enumerate([4, 7, 9]):
        ref = build_model("probe", {"hidden": 8, "activation": "relu"}, in_dim=8, num_outputs=E, seed=seed)
        want = [np.asarray(a) for a in jax.tree.leaves(nnx.state(ref, nnx.Param))]
        for a, b in zip(_params(carry, r), want):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # same draws; FMA rounding may differ


def test_vmapped_viper_runs_with_dropout_and_masks_equal_runs_alone():
    cfg = dataclasses.replace(_tiny_viper(), attention_probs_dropout_prob=0.2)
    train, dev = planted(20, 6, seed=2, t=4), planted(12, 6, seed=3, t=4)
    engine = eng.Engine(eng.viper_builder(cfg), eng.EngineConfig(batch_size=8, eval_batch_size=8,
                                                                 compiler_options=FAST), n_train=20)
    runs = runs_for("viper", [0, 1], [1e-3, 1e-3], [None, None])
    outs, _ = train_runs(engine, runs, train, dev, epochs=2)
    for i, r in enumerate(runs):
        carry = engine.init(r.seed, r.setting.lr, 0, vmapped=False)
        carry, hist = eng.run_epochs(engine, carry, train, dev, 2, vmapped=False)
        np.testing.assert_allclose(hist["train_loss"], outs[i].history["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(np.asarray(engine.predict_best(carry, dev, vmapped=False)),
                                   outs[i].predictions, atol=1e-4)
    # Same lr, other seed: other init, dropout and shuffling.
    assert np.abs(outs[0].predictions - outs[1].predictions).max() > 1e-4


def test_best_epoch_is_the_first_with_the_highest_dev_pearson_and_keeps_its_params(probe_engine):
    engine, train, dev = probe_engine
    # The dev split is an argument of each epoch: give epoch 3 the true labels and every other epoch the
    # mirrored ones (1 - y, so r flips sign). A model that learns peaks at epoch 3, not the last one.
    mirrored = eng.SplitArrays(dev.x, 1.0 - dev.labels)
    epochs, peak = 5, 3
    carry = engine.init([0, 1, 2], [3e-2, 3e-2, 3e-2], [1, 1, 3])
    snapshots, scores = [], []
    for e in range(epochs):
        carry, m = engine.epoch(carry, train, dev if e + 1 == peak else mirrored, e)
        snapshots.append([np.asarray(a) for a in
                          jax.tree.leaves(nnx.state(nnx.merge(engine.graphdef, carry.state)[0], nnx.Param))])
        scores.append(np.asarray(m.dev_mean_pearson))
    scores = np.stack(scores)  # [epochs, runs]
    assert (scores[peak - 1] > 0).all() and (np.delete(scores, peak - 1, axis=0) < 0).all()
    best = np.asarray(carry.best_epoch)
    np.testing.assert_array_equal(best, np.argmax(scores, axis=0) + 1)
    np.testing.assert_array_equal(best, [peak] * 3)
    np.testing.assert_allclose(np.asarray(carry.best_score), scores.max(axis=0))
    for r in range(3):  # the kept parameters are those after the best epoch, not the last ones
        for got, want, last in zip(_params(carry, r), snapshots[peak - 1], snapshots[-1]):
            np.testing.assert_array_equal(got, want[r])
            assert not np.array_equal(got, last[r])


def test_undefined_dev_pearson_never_becomes_best(probe_engine):
    engine, train, dev = probe_engine
    constant = eng.SplitArrays(dev.x, np.full_like(dev.labels, 0.5))  # constant labels: r undefined
    carry = engine.init([0, 1, 2], [1e-3] * 3, [1, 1, 1])
    carry, hist = eng.run_epochs(engine, carry, train, constant, 2)
    assert np.isnan(hist["dev_mean_pearson"]).all()
    assert (np.asarray(carry.best_epoch) == 0).all() and np.isneginf(np.asarray(carry.best_score)).all()


def test_groups_of_equal_shape_share_one_compiled_program(probe_engine):
    engine, train, dev = probe_engine
    before = eng.TRACE_COUNTS["epoch"]
    other_train = planted(50, 8, seed=7)  # another input of the same shape: a second group, same program
    for data in (train, other_train):
        train_runs(engine, runs_for("probe", [0, 1, 2], [1e-3] * 3, ["relu"] * 3), data, dev, epochs=2)
    assert eng.TRACE_COUNTS["epoch"] - before <= 1  # at most one trace (none if an earlier test compiled it)


def test_group_runs_by_shape_and_inputs():
    a = grid.feature_inputs("fau")
    b = grid.feature_inputs("pixels+fau")
    c = grid.feature_inputs("vggface2")
    runs = grid.expand_grid("probe", inputs=[a, b, c], lrs=[1e-4, 3e-4], seeds=[0, 1],
                            activations=["relu", "gelu"])
    assert len(runs) == 3 * 2 * 2 * 2
    assert len({r.run_id for r in runs}) == len(runs)
    dims = {"fau": 6, "pixels+fau": 16, "vggface2": 6}
    groups = grid.group_runs(runs, lambda r: (dims[r.setting.inputs.label],))
    assert [key[0] for key, _ in groups] == [(6,), (16,), (6,)]  # fau and vggface2: same shape, other data
    assert [len(g) for _, g in groups] == [8, 8, 8]
    assert all(r.setting.inputs == a for r in groups[0][1])
    assert grid.chunks(groups[0][1], 3) == [groups[0][1][:3], groups[0][1][3:6], groups[0][1][6:]]


def test_modality_sets_map_to_features_and_name_what_is_missing():
    m = grid.default_modality_map("vllava_p2")
    inp = grid.resolve_modality_set("F+V+T", m, ["vit", "fau", "vllava_text_emb_p2"])
    assert inp.label == "V+T+F" and inp.features == ("vit", "vllava_text_emb_p2", "fau")
    assert inp.token == "VTF"
    with pytest.raises(ValueError, match=r"lacks A \(feature 'wavlm'\).*--modality-map"):
        grid.resolve_modality_set("V+A", m, ["vit", "fau"], dataset="hume_reaction/demo")
    mapped = {**m, **grid.parse_modality_map("V=pixels,F=fau")}
    assert grid.resolve_modality_set("V+F", mapped, ["pixels", "fau"]).features == ("pixels", "fau")
    for bad in ("V", "X=pixels", "V=pixels,V=fau"):
        with pytest.raises(ValueError, match="modality-map"):
            grid.parse_modality_map(bad)
    with pytest.raises(ValueError, match="distinct letters"):
        grid.resolve_modality_set("V+V", m)
    assert grid.parse_activations("all") == list(grid.ACTIVATION_NAMES)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        grid.parse_activations("relu,swish")
    assert grid.parse_ints("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(ValueError, match="given twice"):
        grid.parse_floats("1e-4,0.0001")


def _result(act, seed, score, per):
    s = grid.Setting("probe", grid.feature_inputs("fau"), act, 1e-4)
    return tables.RunResult(grid.RunSpec(s, seed), best_epoch=seed + 1, dev_mean_pearson=score,
                            dev_pearson=np.asarray(per, float))


def test_table_aggregation_mean_and_sample_std_over_seeds(tmp_path):
    results = [_result("relu", 0, 0.1, [0.1, 0.0]), _result("relu", 1, 0.2, [0.3, 0.1]),
               _result("relu", 2, 0.3, [0.5, 0.2]), _result("tanh", 0, 0.4, [0.4, 0.4]),
               _result("tanh", 1, math.nan, [math.nan, 0.2])]
    rows = tables.write_tables(tmp_path, results, ["A", "B"], title="t")
    relu, tanh = rows
    assert relu.seeds == [0, 1, 2] and relu.mean == pytest.approx(0.2) and relu.std == pytest.approx(0.1)
    np.testing.assert_allclose(relu.per_emotion_mean, [0.3, 0.1])
    np.testing.assert_allclose(relu.per_emotion_std, [0.2, 0.1])
    assert tanh.mean == pytest.approx(0.4) and math.isnan(tanh.std) and tanh.n_undefined == 1
    np.testing.assert_allclose(tanh.per_emotion_mean, [0.4, 0.3])
    with open(tmp_path / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [r["activation"] for r in summary] == ["relu", "tanh"]
    assert float(summary[0]["dev_mean_pearson_std"]) == pytest.approx(0.1)
    assert summary[1]["dev_mean_pearson_std"] == "" and summary[1]["n_undefined"] == "1"
    assert float(summary[0]["B_std"]) == pytest.approx(0.1)
    md = (tmp_path / "summary.md").read_text()
    assert "| probe | fau | relu | 0.0001 | 3 | 0.2000 ± 0.1000 | 2.0 |" in md
    assert "| probe | fau | tanh | 0.0001 | 2 (1 undefined) | 0.4000 ± n/a |" in md
    with open(tmp_path / "runs.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 5


# --------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def planted_dataset(tmp_path_factory):
    from tests.eri_jax.train_fixtures import build_dataset

    return build_dataset(tmp_path_factory.mktemp("sweep_ds"))


def test_cli_table4_writes_tables_and_per_run_outputs_retrievable_by_id(planted_dataset, tmp_path, capsys):
    from eri_jax.inputs.assembly import INPUT_KEY, assemble
    from eri_jax.inputs.dataset import load_split
    from eri_jax.sweep import load_run, restore_model
    from eri_jax.sweep.cli import main

    name, data_dir = planted_dataset
    out = tmp_path / "sweep"
    with pytest.warns(UserWarning, match="1 of 96 clips lack a selected feature"):  # clip 00003 has no fau
        rc = main(["--table", "4", "--dataset", name, "--data-dir", str(data_dir), "--seeds", "0,1,2",
                   "--activations", "relu,tanh", "--feature-sets", "vllava_emb_p1,fau", "--lrs", "1e-2",
                   "--epochs", "8", "--batch-size", "16", "--hidden", "16", "--out", str(out),
                   "--no-progress", "--fast-compile"])
    assert rc == 0
    assert "Table 4 layout" in capsys.readouterr().out
    info = json.loads((out / "sweep.json").read_text())
    assert [g["input_shape"] for g in info["groups"]] == [[12], [6]]  # video feature; fau mean-pooled
    assert info["programs"] == 2 and len(info["runs"]) == 12
    with open(out / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [(r["inputs"], r["activation"], r["n_seeds"]) for r in summary] == [
        ("vllava_emb_p1", "relu", "3"), ("vllava_emb_p1", "tanh", "3"), ("fau", "relu", "3"), ("fau", "tanh", "3")]
    assert all(float(r["dev_mean_pearson_mean"]) > 0.4 for r in summary)  # the planted signal is learnt
    # A run's files: predictions from its best parameters, which restore into a model that predicts them.
    run = load_run(out, "probe-fau-tanh-lr0.01-s1")
    assert run.info["activation"] == "tanh" and run.info["seed"] == 1 and run.info["in_dim"] == 6
    dev = load_split("dev", ["fau"], name=name, data_dir=data_dir)
    dev = assemble(dev, ["fau"], {"fau": _spec(name, data_dir, "fau")}, "probe")
    assert run.ids == [str(i) for i in dev.ids]
    model = restore_model(out, "probe-fau-tanh-lr0.01-s1")
    np.testing.assert_allclose(np.asarray(model(dev.features[INPUT_KEY])), run.predictions, atol=1e-6)
    relu = load_run(out, "probe-fau-relu-lr0.01-s1")
    assert np.abs(relu.predictions - run.predictions).max() > 1e-3
    with pytest.raises(FileNotFoundError, match="no run 'nope'"):
        load_run(out, "nope")


def _spec(name, data_dir, key):
    from eri_jax.inputs.dataset import dataset_meta

    return dataset_meta(name, data_dir).features[key]


def test_cli_table6_names_missing_modalities_and_maps_letters_to_demo_features(planted_dataset, tmp_path, capsys):
    from eri_jax.inputs.dataset import dataset_meta
    from eri_jax.sweep.cli import build_parser, main, make_config

    name, data_dir = planted_dataset
    common = ["--dataset", name, "--data-dir", str(data_dir), "--no-progress", "--out", str(tmp_path / "s6")]
    assert main(["--table", "6", *common]) == 2
    err = capsys.readouterr().err
    assert "lacks V (feature 'vit')" in err and "--modality-map" in err
    assert main(["--table", "6", "--seeds", "0,1", *common]) == 2
    assert "at least 3 seeds" in capsys.readouterr().err
    assert main(["--table", "6", "--activations", "relu", "--modality-map", "V=pixels,A=fau,T=fau,F=fau",
                 *common]) == 2
    assert "--activations is the probe's" in capsys.readouterr().err

    args = build_parser().parse_args(["--table", "6", "--modality-map", "V=pixels,A=fau,T=vllava_emb_p1,F=fau",
                                      "--lrs", "1e-4,3e-4", *common])
    cfg = make_config(args, dataset_meta(name, data_dir))
    assert cfg.model == "viper" and cfg.seeds == [0, 1, 2] and cfg.lrs == [1e-4, 3e-4]
    assert [i.label for i in cfg.inputs] == list(grid.TABLE6_SETS)
    assert cfg.inputs[-1].features == ("pixels", "fau", "vllava_emb_p1", "fau")  # V, A, T, F order
    assert cfg.activations == [None] and cfg.modality_map["T"] == "vllava_emb_p1"


def test_table6_viper_inputs_use_vipers_token_layout_like_train(planted_dataset):
    """A sweep's ViPER modality set pads F to 32 columns as `eri_jax.train` does (inputs/token_layout.py); a key
    that stands for several letters is not ViPER's layout and is left unpadded."""
    import warnings

    from eri_jax.inputs.assembly import INPUT_KEY
    from eri_jax.inputs.dataset import dataset_meta
    from eri_jax.sweep.runner import load_group_data

    name, data_dir = planted_dataset
    meta = dataset_meta(name, data_dir)
    mapping = grid.parse_modality_map("V=pixels,A=fau,T=vllava_emb_p1,F=fau")
    padded = grid.resolve_modality_set("V+F", mapping)
    shared = grid.resolve_modality_set("V+A+F", mapping)
    cfg = SimpleNamespace(inputs=[padded, shared], dataset=name, data_dir=data_dir, model="viper")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # clip 00003 has no fau
        data = load_group_data(cfg, meta)
    pixels, fau = meta.features["pixels"].dim, meta.features["fau"].dim
    assert fau < 32
    x = data[padded.features][0].features[INPUT_KEY]
    assert x.shape[-1] == pixels + 32 and not x[..., pixels + fau:].any()
    assert data[shared.features][0].features[INPUT_KEY].shape[-1] == pixels + 2 * fau
