"""eri_jax.report: late fusion, run discovery, every table's numbers against direct computation, the CLI."""
from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.stats import gaussian_kde

from eri_jax.evaluation import stats
from eri_jax.evaluation.files import write_evaluation
from eri_jax.evaluation.metrics import binned_counts, mean_over_defined, pearson_per_emotion
from eri_jax.report import (
    BootstrapSettings,
    DatasetLabels,
    SplitLabels,
    apply_fusion,
    build_report,
    fit_fusion_weights,
    load_rows,
    paper_results,
)
from eri_jax.report.fusion import simplex_grid
from eri_jax.sweep.outputs import write_run
from tfds_hume.records import HUME_EMOTIONS

NAME = "hume_reaction/demo"
EMOTIONS = list(HUME_EMOTIONS)
E = len(EMOTIONS)
BOOT = BootstrapSettings(n_boot=200, seed=3, ci=0.95)


# ----------------------------------------------------------------------------------------- fusion


def test_fusion_of_good_and_noise_weights_the_good_one():
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(400, 3))
    good = y + 0.2 * rng.normal(size=y.shape)
    noise = rng.normal(size=y.shape)
    fit = fit_fusion_weights([noise, good], y)
    assert fit.weights.shape == (3, 2) and np.allclose(fit.weights.sum(axis=1), 1.0)
    assert (fit.weights[:, 1] >= 0.9).all(), fit.weights
    # Each chosen weight maximises train r over the grid (brute force with the metric itself).
    for k in range(3):
        scores = [pearson_per_emotion((w * noise + (1 - w) * good)[:, [k]], y[:, [k]])[0]
                  for w in np.linspace(0, 1, 101)]
        assert fit.train_r[k] == pytest.approx(max(scores), abs=1e-12)
        assert fit.weights[k, 0] == pytest.approx(np.linspace(0, 1, 101)[int(np.argmax(scores))])
    fused = apply_fusion(fit, [noise, good])
    np.testing.assert_allclose(fused, fit.weights[:, 0] * noise + fit.weights[:, 1] * good)


def test_fusion_of_complementary_predictors_beats_both():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(500, 2))
    a = y + rng.normal(size=y.shape)
    b = y + rng.normal(size=y.shape)  # independent errors: averaging helps
    fit = fit_fusion_weights([a, b], y)
    assert (np.abs(fit.weights[:, 0] - 0.5) < 0.2).all()
    assert (fit.train_r > pearson_per_emotion(a, y)).all() and (fit.train_r > pearson_per_emotion(b, y)).all()


def test_fusion_ties_average_and_global_weights_and_three_methods():
    rng = np.random.default_rng(2)
    y = rng.uniform(size=(100, 2))
    p = y + rng.normal(size=y.shape)
    fit = fit_fusion_weights([p, p.copy()], y)
    np.testing.assert_allclose(fit.weights, 0.5)  # identical predictions: averaged, not one picked
    glob = fit_fusion_weights([p, rng.normal(size=y.shape)], y, per_emotion=False)
    assert (glob.weights == glob.weights[0]).all()
    grid = simplex_grid(3, 4)
    assert len(grid) == 15 and np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all()
    good = y + 0.1 * rng.normal(size=y.shape)
    three = fit_fusion_weights([rng.normal(size=y.shape), good, rng.normal(size=y.shape)], y, steps=10)
    assert three.weights.shape == (2, 3) and (three.weights[:, 1] >= 0.7).all()


def test_fusion_undefined_emotion_warns_and_errors_on_bad_input():
    rng = np.random.default_rng(3)
    y = rng.uniform(size=(50, 2))
    y[:, 1] = 0.5  # constant labels: r undefined for every weight
    with pytest.warns(RuntimeWarning, match="undefined for Fear"):
        fit = fit_fusion_weights([y + 0.1, rng.normal(size=y.shape)], y, emotions=["Joy", "Fear"])
    assert math.isnan(fit.train_r[1]) and np.allclose(fit.weights[1], 0.5)
    with pytest.raises(ValueError, match="at least two"):
        fit_fusion_weights([y], y)
    with pytest.raises(ValueError, match="one shape"):
        fit_fusion_weights([y, y[:10]], y)


# -------------------------------------------------------------------------------- fake run folders


def _labels(rng, n, constant_surprise=False):
    y = 1.0 / (1.0 + np.exp(-1.5 * rng.normal(size=(n, E))))
    if constant_surprise:
        y[:, EMOTIONS.index("Surprise")] = 0.5
    return y.astype(np.float32).astype(np.float64)


def make_data(seed=0, dev_labels=None) -> DatasetLabels:
    rng = np.random.default_rng(seed)
    ids = [f"{i:05d}" for i in range(1, 241)]
    splits = {"train": SplitLabels(ids[:120], _labels(rng, 120)),
              "dev": SplitLabels(ids[120:200], _labels(rng, 80) if dev_labels is None else dev_labels),
              "test": SplitLabels(ids[200:], _labels(rng, 40, constant_surprise=True))}
    return DatasetLabels(name=NAME, source="synthetic-demo", synthetic=True, random_weights=True,
                         emotions=EMOTIONS, splits=splits)


def _pred(rng, y, noise):
    return (y + noise * rng.normal(size=y.shape)).astype(np.float32)


@pytest.fixture(autouse=True, scope="module")
def _no_run_confusion_pngs():
    """The report never reads the runs' own confusion PNGs; drawing ~150 of them would dominate the runtime."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("eri_jax.evaluation.files.plot_confusion",
                   lambda matrix, path, *, title: Path(path).write_bytes(b""))
        yield


def _train_run(runs, data, name, *, model, seed, noise, rng, features=None, modalities=None, text_source=None,
               dataset=NAME, train_preds=False, drop_dev=0):
    """A folder as `python -m eri_jax.train` leaves it: evaluation files + config.json."""
    d = runs / name
    meta = {"model": model, "run": name, "dataset": dataset, "synthetic": True, "random_weights": True,
            "features": features or [], "epoch": 3}
    dev = data.splits["dev"]
    keep = slice(drop_dev, None)
    preds = _pred(rng, dev.labels, noise)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_evaluation(d, split="dev", ids=dev.ids[keep], predictions=preds[keep], labels=dev.labels[keep],
                         emotions=EMOTIONS, meta=meta)
        if train_preds:
            tr = data.splits["train"]
            write_evaluation(d, split="train", ids=tr.ids, predictions=_pred(rng, tr.labels, noise),
                             labels=tr.labels, emotions=EMOTIONS, meta=meta)
    config = {"model": model, "preset": "paper", "dataset": dataset, "features": features or [], "seed": seed,
              "run_name": name, "modalities": modalities, "text_source": text_source}
    (d / "config.json").write_text(json.dumps(config))
    return d


def _sweep_run(runs, data, table_dir, *, model, seed, noise, rng, activation=None, modalities=None, lr=1e-3):
    token = modalities or "fau"
    parts = [model, token] + ([activation] if activation else []) + [f"lr{lr:g}", f"s{seed}"]
    dev = data.splits["dev"]
    preds = _pred(rng, dev.labels, noise)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pearson_per_emotion(preds, dev.labels)
    info = {"model": model, "dataset": NAME, "synthetic": True, "seed": seed, "lr": lr, "activation": activation,
            "modalities": modalities, "inputs": token, "features": ["fau"],
            "dev_mean_pearson": mean_over_defined(r)[0], "dev_pearson": dict(zip(EMOTIONS, r))}
    return write_run(runs / table_dir, "-".join(parts), info=info, params={"w": np.zeros(2)}, ids=dev.ids,
                     predictions=preds, emotions=EMOTIONS)


def make_runs(runs: Path, data: DatasetLabels, seed=0) -> dict:
    rng = np.random.default_rng(seed + 100)
    r = {}
    for s in (0, 1):
        _train_run(runs, data, f"lstm-paper-fau-s{s}", model="lstm", seed=s, noise=0.6, rng=rng, features=["fau"])
    for s in (0, 1, 2):
        _train_run(runs, data, f"viper-paper-VATF-clip-s{s}", model="viper", seed=s, noise=0.3, rng=rng,
                   modalities="VATF", text_source="clip", train_preds=True)
        _train_run(runs, data, f"viper-paper-VATF-vllava_p2-s{s}", model="viper", seed=s, noise=0.4, rng=rng,
                   modalities="vatf", text_source="vllava_p2", train_preds=True)
    # One seed only, and it lacks 3 dev clips.
    _train_run(runs, data, "viper-paper-VATF-vllava_p1-s0", model="viper", seed=0, noise=0.5, rng=rng,
               modalities="VATF", text_source="vllava_p1", drop_dev=3)
    _train_run(runs, data, "probe-paper-vllava_emb_p2-s0", model="probe", seed=0, noise=1.0, rng=rng,
               features=["vllava_emb_p2"])
    # Made on another dataset: left out, and listed as such.
    _train_run(runs, data, "viper-paper-V-clip-s0", model="viper", seed=0, noise=0.3, rng=rng, modalities="V",
               text_source="clip", dataset="hume_reaction/full")
    for s in (0, 1, 2):
        _sweep_run(runs, data, "sweep-probe-table4", model="probe", seed=s, noise=0.8, rng=rng, activation="relu")
        _sweep_run(runs, data, "sweep-probe-table4", model="probe", seed=s, noise=0.9, rng=rng, activation="tanh")
        _sweep_run(runs, data, "sweep-viper-table6", model="viper", seed=s, noise=0.5, rng=rng, modalities="VA")
    return r


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    data = make_data()
    make_runs(root / "runs", data)
    report = build_report(root / "runs", root / "out", data, boot=BOOT)
    return root, data, report


def _dev_preds(root, name):
    import csv
    with open(root / "runs" / name / "predictions_dev.csv") as f:
        rows = list(csv.reader(f))
    return [r[0] for r in rows[1:]], np.array([[float(v) for v in r[1:]] for r in rows[1:]])


def _row(report, table, key):
    return next(r for r in report[table] if r["key"] == key)


# ---------------------------------------------------------------------------------------- the report


def test_report_files_and_synthetic_labelling(built):
    root, data, report = built
    out = root / "out"
    assert json.loads((out / "report.json").read_text()) == report
    md = (out / "report.md").read_text()
    assert report["title"].startswith(f"Paper reproduction report: {NAME}") and "synthetic data" in report["title"]
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert len(headings) >= 9 and all("synthetic data" in h for h in headings if not h.startswith("## Runs left"))
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(["figure1_label_density_train.png", "figure1_label_density_dev.png",
                           "figure1_label_density_test.png", "figure_confusion_clip_Adoration.png",
                           "figure_confusion_clip_Empathic-Pain.png", "figure_confusion_videollava_Adoration.png",
                           "figure_confusion_videollava_Empathic-Pain.png"])
    for name in pngs:
        with Image.open(out / name) as im:
            im.verify()
            assert im.format == "PNG" and im.size[0] > 300
        assert f"]({name})" in md


def test_table2_and_figure1_against_direct_computation(built):
    _, data, report = built
    for split in ("train", "dev", "test"):
        y = data.splits[split].labels
        for k, e in enumerate(EMOTIONS):
            got = report["table2"]["splits"][split][e]
            assert got["mean"] == pytest.approx(y[:, k].mean(), abs=1e-12)
            assert got["std"] == pytest.approx(y[:, k].std(), abs=1e-12) and got["n"] == len(y)
    assert report["table2"]["paper"]["Adoration"] == {"mean": 0.3218, "std": 0.3612}
    dens = report["figure1"]["train"]["emotions"]["Fear"]
    kde = gaussian_kde(data.splits["train"].labels[:, EMOTIONS.index("Fear")])
    np.testing.assert_allclose(dens["density"], kde(np.asarray(dens["grid"])), rtol=1e-12)
    surprise = report["figure1"]["test"]["emotions"]["Surprise"]  # constant labels: no KDE, no crash
    assert surprise == {"constant": 0.5, "n": 40, "grid": None, "density": None}


def test_table3_rows_against_direct_computation(built):
    root, data, report = built
    dev = data.splits["dev"]
    paper = paper_results()["table3_mean_pearson"]
    row = _row(report, "table3", "viper_vatf_clip")
    assert row["status"] == "ok" and row["n_seeds"] == 3 and row["n_clips"] == 80
    assert row["paper"] == paper["viper_vatf_clip"]
    stack = np.stack([_dev_preds(root, f"viper-paper-VATF-clip-s{s}")[1] for s in range(3)])
    per_seed = [mean_over_defined(pearson_per_emotion(p, dev.labels))[0] for p in stack]
    assert [r["seed"] for r in row["runs"]] == [0, 1, 2]
    np.testing.assert_allclose([r["mean_pearson"] for r in row["runs"]], per_seed, atol=1e-12)
    assert row["mean_pearson"] == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert row["seed_std"] == pytest.approx(np.std(per_seed, ddof=1), abs=1e-12)
    est, lo, hi = stats.bootstrap_mean_pearson(stack, dev.labels, n_boot=BOOT.n_boot, seed=BOOT.seed)
    assert (row["ci_lo"], row["ci_hi"]) == (pytest.approx(lo), pytest.approx(hi)) and lo < est < hi
    # Text source given in lower case (`--modalities vatf`) still matches; one seed: no seed std.
    p1 = _row(report, "table3", "viper_vatf_videollava_prompt1")
    assert p1["n_seeds"] == 1 and p1["seed_std"] is None and p1["n_clips"] == 77 and p1["n_split"] == 80
    ids, pred = _dev_preds(root, "viper-paper-VATF-vllava_p1-s0")
    assert p1["mean_pearson"] == pytest.approx(mean_over_defined(pearson_per_emotion(pred, dev.labels[3:]))[0])
    assert _row(report, "table3", "viper_vatf_videollava_prompt2")["n_seeds"] == 3
    assert _row(report, "table3", "baseline_fau_lstm")["n_seeds"] == 2
    for key in ("baseline_vggface2_lstm", "viper_v", "videollava_querying", "videollava_probing_prompt1",
                "viper_vatf_llava_frames"):
        r = _row(report, "table3", key)
        assert r["status"] == "not run" and "mean_pearson" not in r and r["paper"] == paper[key]
    # rows beyond the paper that no run fills are left out, with their paired tests (the paper's rows stay)
    keys = {r["key"] for r in report["table3"]}
    assert not keys & {"omni_probing_prompt2", "viper_vatf_omni_av_prompt2", "omni_querying_zero_shot"}
    assert not any("omni" in p["a"] + p["b"] for p in report["paired"])
    assert {"viper_v", "late_fusion"} <= keys
    assert report["runs_left_out"] == [{"run": "viper-paper-V-clip-s0", "dataset": "hume_reaction/full"}]
    md = (root / "out" / "report.md").read_text()
    assert "| ViPER-V | not run |" in md and f"| {row['mean_pearson']:.4f} |" in md


def test_late_fusion_row_against_direct_computation(built):
    root, data, report = built
    row = _row(report, "table3", "late_fusion")
    assert row["status"] == "ok" and row["n_seeds"] == 3 and row["fusion"]["weights_fit_on"] == "in-sample"
    tr, dev = data.splits["train"], data.splits["dev"]
    fused = []
    for s in range(3):
        members = [f"viper-paper-VATF-clip-s{s}", f"viper-paper-VATF-vllava_p2-s{s}"]
        train_preds = []
        for m in members:
            import csv
            with open(root / "runs" / m / "predictions_train.csv") as f:
                rows = list(csv.reader(f))[1:]
            assert [r[0] for r in rows] == tr.ids
            train_preds.append(np.array([[float(v) for v in r[1:]] for r in rows]))
        fit = fit_fusion_weights(train_preds, tr.labels)
        got = row["fusion"]["weights_per_seed"][str(s)]["weights"]
        np.testing.assert_allclose([[got[e][k] for k in ("viper_vatf_clip", "viper_vatf_videollava_prompt2")]
                                    for e in EMOTIONS], fit.weights)
        fused.append(apply_fusion(fit, [_dev_preds(root, m)[1] for m in members]))
    per_seed = [mean_over_defined(pearson_per_emotion(p, dev.labels))[0] for p in fused]
    assert row["mean_pearson"] == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert "never on dev labels" in (root / "out" / "report.md").read_text()


def test_fusion_weights_never_read_dev_labels(built, tmp_path):
    """Garbage dev labels (runs rescored against them) change the scores, not the fusion weights."""
    root, data, report = built
    garbage = np.random.default_rng(99).uniform(size=(80, E))
    bad = make_data(dev_labels=garbage)
    runs = tmp_path / "runs"
    shutil.copytree(root / "runs", runs)
    for d in runs.iterdir():  # rescore each run's dev predictions against the garbage labels
        if (d / "metrics_dev.json").exists():
            ids, pred = _dev_preds(root, d.name)
            meta = json.loads((d / "metrics_dev.json").read_text())["meta"]
            rows = bad.splits["dev"].rows(ids, "test")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                write_evaluation(d, split="dev", ids=ids, predictions=pred, labels=garbage[rows], emotions=EMOTIONS,
                                 meta=meta)
    rows = load_rows()
    rows["table4"], rows["table6"] = {}, {}
    again = build_report(runs, tmp_path / "out", bad, rows=rows, boot=BOOT)
    a, b = _row(report, "table3", "late_fusion"), _row(again, "table3", "late_fusion")
    assert a["fusion"]["weights_per_seed"] == b["fusion"]["weights_per_seed"]
    assert abs(a["mean_pearson"] - b["mean_pearson"]) > 0.1


def test_tables_4_5_6_figures_and_paired_tests(built):
    root, data, report = built
    dev = data.splits["dev"]
    paper = paper_results()
    relu = _row(report, "table4", "relu")
    stack = np.stack([_dev_preds(root, f"sweep-probe-table4/runs/probe-fau-relu-lr0.001-s{s}")[1] for s in range(3)])
    per_seed = [mean_over_defined(pearson_per_emotion(p, dev.labels))[0] for p in stack]
    assert relu["mean_pearson"] == pytest.approx(np.mean(per_seed)) and relu["paper"] == 0.2351
    assert relu["setting"] == "sweep-probe-table4/runs/probe-fau-relu-lr0.001"
    assert _row(report, "table4", "tanh")["status"] == "ok"
    assert _row(report, "table4", "leaky_relu")["status"] == "not run"  # `*-relu-*` must not match it
    va = _row(report, "table6", "V+A")
    assert va["status"] == "ok" and va["n_seeds"] == 3 and va["paper"] == 0.2748
    assert _row(report, "table6", "V")["status"] == "not run"

    t5 = {r["paper_key"]: r for r in report["table5"]["rows"]}
    clip = np.stack([_dev_preds(root, f"viper-paper-VATF-clip-s{s}")[1] for s in range(3)])
    expected = np.mean([pearson_per_emotion(p, dev.labels) for p in clip], axis=0)
    np.testing.assert_allclose([t5["clip"]["pearson"][e]["r"] for e in EMOTIONS], expected, atol=1e-12)
    assert t5["clip"]["paper"]["Average"] == 0.3025 and t5["videollava_p1"]["status"] == "ok"

    figs = {(f["method"], f["emotion"]): f for f in report["figures_5_8"]}
    f = figs[("clip", "Empathic-Pain")]
    k = EMOTIONS.index("Empathic-Pain")
    assert f["run"] == "viper-paper-VATF-clip-s0"
    assert f["counts"] == binned_counts(dev.labels[:, k], clip[0][:, k]).tolist()
    assert f["prediction_range"]["max"] == pytest.approx(clip[0][:, k].max())
    assert f["paper"] == paper["figures_5_to_8_prediction_stats"]["clip_empathic_pain"]

    pair = next(p for p in report["paired"] if (p["a"], p["b"]) == ("viper_vatf_videollava_prompt2", "viper_vatf_clip"))
    p2 = np.stack([_dev_preds(root, f"viper-paper-VATF-vllava_p2-s{s}")[1] for s in range(3)])
    direct = stats.paired_bootstrap(p2, clip, dev.labels, n_boot=BOOT.n_boot, seed=BOOT.seed)
    assert pair["status"] == "ok" and pair["diff"] == pytest.approx(direct["diff"])
    assert pair["p_value"] == pytest.approx(direct["p_value"]) and pair["lo"] == pytest.approx(direct["lo"])
    assert direct["diff"] < 0  # the noisier method scores lower
    # Prompt 1 lacks 3 clips: the pair is tested on the 77 shared ones.
    p1_pair = next(p for p in report["paired"] if p["a"] == "viper_vatf_videollava_prompt1")
    assert p1_pair["n_clips"] == 77
    assert next(p for p in report["paired"] if p["b"] == "videollava_querying")["status"] == "not run"


def test_ambiguous_rows_mismatched_records_and_bad_files(tmp_path):
    data = make_data()
    rng = np.random.default_rng(5)
    runs = tmp_path / "runs"
    _train_run(runs, data, "lstm-paper-fau-s0", model="lstm", seed=0, noise=0.5, rng=rng, features=["fau"])
    _train_run(runs, data, "my-lstm", model="lstm", seed=0, noise=0.5, rng=rng, features=["fau"])
    rows = load_rows()
    rows["table4"], rows["table6"] = {}, {}
    report = build_report(runs, tmp_path / "out", data, rows=rows, boot=BOOT)
    row = _row(report, "table3", "baseline_fau_lstm")
    assert row["status"] == "ambiguous" and "lstm-paper-fau" in row["reason"] and "my-lstm" in row["reason"]

    # A run scored against other labels is an error naming its metrics file.
    shutil.rmtree(runs / "my-lstm")
    other = make_data(seed=7)
    with pytest.raises(ValueError, match=r"lstm-paper-fau-s0/metrics_dev.json: recorded mean Pearson"):
        build_report(runs, tmp_path / "out", DatasetLabels(**{**other.__dict__, "splits": {
            **data.splits, "dev": other.splits["dev"]}}), rows=rows, boot=BOOT)

    # A predictions file with a broken row: error naming the file and line.
    csv_path = runs / "lstm-paper-fau-s0" / "predictions_dev.csv"
    lines = csv_path.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0] + ",oops"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"predictions_dev.csv, line 5: a prediction is not a number"):
        build_report(runs, tmp_path / "out", data, rows=rows, boot=BOOT)
    lines[4] = "99999," + ",".join(["0.5"] * E)
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 5: clip ID '99999' is not in this split"):
        build_report(runs, tmp_path / "out", data, rows=rows, boot=BOOT)


def test_fusion_not_run_without_train_predictions(tmp_path):
    data = make_data()
    rng = np.random.default_rng(6)
    runs = tmp_path / "runs"
    _train_run(runs, data, "viper-paper-VATF-clip-s0", model="viper", seed=0, noise=0.3, rng=rng,
               modalities="VATF", text_source="clip", train_preds=True)
    _train_run(runs, data, "viper-paper-VATF-vllava_p2-s0", model="viper", seed=0, noise=0.4, rng=rng,
               modalities="VATF", text_source="vllava_p2")
    rows = load_rows()
    rows["table4"], rows["table6"] = {}, {}
    report = build_report(runs, tmp_path / "out", data, rows=rows, boot=BOOT)
    row = _row(report, "table3", "late_fusion")
    assert row["status"] == "not run" and "viper-paper-VATF-vllava_p2-s0" in row["reason"]
    assert "--split train" in row["reason"]


def test_rows_file_merges_and_validates(tmp_path):
    f = tmp_path / "rows.json"
    f.write_text(json.dumps({"table3": {"videollava_querying": {"label": "Querying", "runs": ["q/*"],
                                                                 "where": {"model": "videollava-query"}},
                                        "viper_vatf_clip": None}}))
    with pytest.raises(ValueError, match="fuses 'viper_vatf_clip', which is not a run row"):
        load_rows(f)  # a removed row that another entry refers to
    f.write_text(json.dumps({"table3": {"videollava_querying": {"label": "Querying", "runs": ["q/*"]}}}))
    rows = load_rows(f)
    assert rows["table3"]["videollava_querying"]["runs"] == ["q/*"] and "viper_v" in rows["table3"]
    f.write_text(json.dumps({"table3": {"x": {"runs": ["/abs/*"]}}}))
    with pytest.raises(ValueError, match="relative to the runs folder"):
        load_rows(f)
    f.write_text(json.dumps({"tabel3": {}}))
    with pytest.raises(ValueError, match="unknown entries"):
        load_rows(f)


def test_cli_on_a_built_tfds_dataset(tmp_path, capsys):
    from eri_jax.report.__main__ import main
    from tfds_hume.build import build
    from tfds_hume.manifest import ClipEntry, FeatureSpec, Manifest, save_value

    rng = np.random.default_rng(0)
    export, clips = tmp_path / "export", []
    for i in range(60):
        cid, split = f"{i:05d}", ("train", "dev")[i % 2]
        save_value(export / "fau" / f"{cid}.npz", rng.normal(size=(2, 3)).astype(np.float32))
        clips.append(ClipEntry(id=cid, split=split, labels=rng.uniform(size=E).tolist(),
                               files={"fau": f"fau/{cid}.npz"}))
    Manifest(dataset="synthetic-demo", synthetic=True, emotions=EMOTIONS, clips=clips,
             features={"fau": FeatureSpec(kind="frame", dim=3, num_frames=2, source="shipped:FAU")}).write(export)
    build(export, config="demo", data_dir=tmp_path / "tfds")
    from eri_jax.report import load_dataset_labels
    data = load_dataset_labels(NAME, tmp_path / "tfds")
    assert data.synthetic and len(data.splits["dev"].ids) == 30
    _train_run(tmp_path / "runs", data, "lstm-demo-fau-s0", model="lstm", seed=0, noise=0.3, rng=rng, features=["fau"])
    rc = main(["--runs-dir", str(tmp_path / "runs"), "--dataset", NAME, "--data-dir", str(tmp_path / "tfds"),
               "--out", str(tmp_path / "report"), "--n-boot", "100"])
    assert rc == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert _row(report, "table3", "baseline_fau_lstm")["status"] == "ok" and "synthetic data" in report["title"]
    assert "MuSe LSTM, FAU" in capsys.readouterr().out
    rc = main(["--runs-dir", str(tmp_path / "runs"), "--dataset", "hume_reaction/full", "--data-dir",
               str(tmp_path / "tfds"), "--out", str(tmp_path / "report")])
    assert rc == 2 and "hume_reaction/full" in capsys.readouterr().err


def test_paired_row_with_an_undefined_difference_prints_na():
    from eri_jax.report.markdown import _paired

    report = {"bootstrap": {"ci": 0.95}, "dataset": {"tags": ["synthetic data"]},
              "paired": [{"status": "ok", "label_a": "probe", "label_b": "query", "diff": None, "lo": None,
                          "hi": None, "p_value": None, "n_clips": 60}]}
    row = [line for line in _paired(report) if line.startswith("| probe")][0]
    assert row == "| probe | query | n/a | n/a | n/a | 60 |"
