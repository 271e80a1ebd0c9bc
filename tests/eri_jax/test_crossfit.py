"""eri_jax.crossfit: every train clip predicted once by a fold model that never saw it, trained as the run
was (standardiser on the K-1 folds), deterministic, resumable fold by fold; the report fits late fusion
on the out-of-fold file."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from eri_jax import crossfit as cf
from eri_jax.crossfit import cli as cf_cli
from eri_jax.crossfit.run import FOLDS_FILE, HELDOUT_FILE, SUMMARY_FILE
from eri_jax.inputs import assembly as feats
from eri_jax.report.runs import read_predictions
from eri_jax.training import loop
from eri_jax.training.config import IDENTITY_FIELDS
from tfds_hume.records import HUME_EMOTIONS

from .train_fixtures import small_config

T, FAU_DIM, VIDEO_DIM = 4, 6, 12
MISSING_FAU_ID = "00002"       # lacks `fau`: the LSTM run (and its folds) never see it
UNLABELLED_IDS = {"00005", "00011", "00017"}  # train clips without labels: trained on masked, still predicted
FOLDS = 3


def _build(root: Path) -> tuple[str, str]:
    """A tiny `hume_reaction/full` set with planted signal: train 27 (3 unlabelled, 1 lacking fau), dev 16, test 4."""
    from tfds_hume.build import build
    from tfds_hume.manifest import ClipEntry, FeatureSpec, Manifest, save_value

    rng = np.random.default_rng(3)
    e = len(HUME_EMOTIONS)
    proj, proj_v = rng.normal(size=(e, FAU_DIM)), rng.normal(size=(e, VIDEO_DIM))
    export, clips, i = root / "export", [], 0
    for split, n in (("train", 27), ("dev", 16), ("test", 4)):
        for _ in range(n):
            i += 1
            cid = f"{i:05d}"
            y = 1.0 / (1.0 + np.exp(-1.5 * rng.normal(size=e)))
            files = {}
            if cid != MISSING_FAU_ID:
                save_value(export / "fau" / f"{cid}.npz",
                           ((y @ proj)[None] + 0.5 * rng.normal(size=(T, FAU_DIM))).astype(np.float32))
                files["fau"] = f"fau/{cid}.npz"
            save_value(export / "vllava_emb_p1" / f"{cid}.npz",
                       (y @ proj_v + 0.5 * rng.normal(size=VIDEO_DIM)).astype(np.float32))
            files["vllava_emb_p1"] = f"vllava_emb_p1/{cid}.npz"
            unlabelled = split == "test" or cid in UNLABELLED_IDS
            clips.append(ClipEntry(id=cid, split=split, files=files,
                                   labels=[float("nan")] * e if unlabelled else [float(v) for v in y]))
    Manifest(dataset="planted-crossfit", synthetic=True, emotions=list(HUME_EMOTIONS), clips=clips, features={
        "fau": FeatureSpec(kind="frame", dim=FAU_DIM, num_frames=T, source="shipped:FAU"),
        "vllava_emb_p1": FeatureSpec(kind="video", dim=VIDEO_DIM, source="vllava", random_weights=True)}).write(export)
    build(export, config="full", data_dir=root / "tfds")
    return "hume_reaction/full", str(root / "tfds")


def _train_and_evaluate(dataset, out: Path, model: str, name: str) -> Path:
    """A finished run (checkpoints in out/ck/<name>, outputs in out/runs/<name>) with in-sample train predictions."""
    from eri_jax.evaluation.run import evaluate_run

    cfg = small_config(dataset, out, model=model, run_name=name, epochs=3)
    loop.train(cfg, progress=False)
    evaluate_run(cfg.run_dir, split="train")
    return cfg.run_dir


class Recorder:
    """Counts `train()` calls and records, per call, the train clip IDs its batches were drawn from."""

    def __init__(self, monkeypatch):
        from eri_jax.inputs import dataset as data

        self.calls, self.seen = 0, []
        real_train, real_iter = loop.train, data.iterate_batches

        def train(cfg, **kw):
            self.calls += 1
            self.seen.append(set())
            return real_train(cfg, **kw)

        def iterate_batches(split, batch_size, *, shuffle=False, **kw):
            if shuffle:  # training batches (predictions iterate unshuffled)
                self.seen[-1] |= {str(i) for i in split.ids}
            return real_iter(split, batch_size, shuffle=shuffle, **kw)

        monkeypatch.setattr(loop, "train", train)
        monkeypatch.setattr(data, "iterate_batches", iterate_batches)


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def crossfitted(tmp_path_factory):
    """The LSTM run cross-fitted with an interruption after fold 1, then resumed (recording each fold's
    training clips), and the same cross-fit once more without interruption in a copy of the run."""
    root = tmp_path_factory.mktemp("crossfit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = _build(root)
        run_dir = _train_and_evaluate(dataset, root, "lstm", "lstm-s0")
        mp = pytest.MonkeyPatch()
        try:
            rec = Recorder(mp)

            def stop_after_1(k):
                if k == 1:
                    raise Stop
            with pytest.raises(Stop):
                cf.crossfit(run_dir, folds=FOLDS, progress=False, on_fold_done=stop_after_1)
            calls_before = rec.calls
            resumed = cf.crossfit(run_dir, folds=FOLDS, progress=False)
            calls_resumed = rec.calls - calls_before
            again = cf.crossfit(run_dir, folds=FOLDS, progress=False)
            calls_again = rec.calls - calls_before - calls_resumed
        finally:
            mp.undo()
        copy = root / "copy" / "ck" / "lstm-s0"
        copy.mkdir(parents=True)
        shutil.copy(run_dir / "config.json", copy / "config.json")
        fresh = cf.crossfit(copy, folds=FOLDS, runs_dir=str(root / "copy" / "runs"), progress=False)
    return dict(root=root, dataset=dataset, run_dir=run_dir, rec=rec, resumed=resumed, again=again,
                fresh=fresh, calls=(calls_before, calls_resumed, calls_again), copy=copy)


def _assembled_train(dataset, model="lstm", features=("fau",)):
    from eri_jax.inputs.dataset import dataset_meta, load_split

    name, data_dir = dataset
    meta = dataset_meta(name, data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return feats.assemble(load_split("train", list(features), name=name, data_dir=data_dir), list(features),
                              meta.features, model)


# ---------------------------------------------------------------------------------------------- folds


def test_fold_assignment_is_balanced_seeded_and_order_free():
    ids = [f"{i:05d}" for i in range(1, 24)]
    f = cf.assign_folds(ids, 5, seed=0)
    assert sorted(np.bincount(f).tolist()) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(f, cf.assign_folds(ids, 5, seed=0))
    assert not np.array_equal(f, cf.assign_folds(ids, 5, seed=1))
    shuffled = list(reversed(ids))
    np.testing.assert_array_equal(cf.assign_folds(shuffled, 5, seed=0), f[::-1])  # by ID, not position
    with pytest.raises(ValueError, match="24 folds for 23 clips"):
        cf.assign_folds(ids, 24, seed=0)
    with pytest.raises(ValueError, match="at least 2 folds"):
        cf.assign_folds(ids, 1, seed=0)


# -------------------------------------------------------------------------------------- the run's OOF


def test_every_train_clip_gets_exactly_one_out_of_fold_prediction(crossfitted):
    run_dir, res = crossfitted["run_dir"], crossfitted["resumed"]
    runs = run_dir.parent.parent / "runs" / "lstm-s0"
    ids, pred = read_predictions(runs / cf.OOF_FILE, list(HUME_EMOTIONS))
    in_ids, in_pred = read_predictions(runs / "predictions_train.csv", list(HUME_EMOTIONS))
    train = _assembled_train(crossfitted["dataset"])
    # the same clips as the in-sample file, in dataset order: unlabelled ones included, the one the
    # run could not see (no fau) left out as there
    assert ids == in_ids == [str(i) for i in train.ids] and len(set(ids)) == len(ids)
    assert UNLABELLED_IDS <= set(ids) and MISSING_FAU_ID not in ids
    assert np.isfinite(pred).all() and pred.shape == (len(ids), len(HUME_EMOTIONS))
    np.testing.assert_array_equal(pred.astype(np.float32), res.predictions)  # float32 round trip
    # each clip's prediction is in exactly one fold's held-out file, and the folds are the recorded ones
    work = cf.work_dir(run_dir, FOLDS, 0)
    folds = json.loads((work / FOLDS_FILE).read_text())
    assert folds["ids"] == ids and folds["fold"] == res.fold.tolist()
    np.testing.assert_array_equal(res.fold, cf.assign_folds(ids, FOLDS, 0))
    owners = {}
    for k in range(FOLDS):
        held_ids, held = read_predictions(work / f"fold{k}" / HELDOUT_FILE, list(HUME_EMOTIONS))
        assert {c: k for c in held_ids} == {c: k for c, f in zip(ids, res.fold) if f == k}
        for c, p in zip(held_ids, held):
            assert c not in owners
            owners[c] = k
            np.testing.assert_array_equal(p, pred[ids.index(c)])
    assert set(owners) == set(ids)
    summary = json.loads((runs / SUMMARY_FILE).read_text())
    assert summary["folds"] == FOLDS and summary["n_clips"] == len(ids) and len(summary["per_fold"]) == FOLDS


def test_a_clip_is_predicted_by_a_fold_model_that_never_saw_it(crossfitted):
    """Each fold's training batches came from exactly the other folds' clips; its standardiser was fit on
    them alone; the predictions differ from the full run's in-sample ones."""
    res, rec, run_dir = crossfitted["resumed"], crossfitted["rec"], crossfitted["run_dir"]
    ids = res.ids
    # folds 0, 1 trained before the interruption, fold 2 after it
    assert len(rec.seen) == FOLDS
    train = _assembled_train(crossfitted["dataset"])
    for k, seen in enumerate(rec.seen):
        assert seen == {c for c, f in zip(ids, res.fold) if f != k}, k
        info = json.loads((cf.work_dir(run_dir, FOLDS, 0) / f"fold{k}" / "config.json").read_text())
        rows = np.flatnonzero(res.fold != k)
        want = feats.Standardizer.fit(train.features[feats.INPUT_KEY][rows], train.frame_masks[feats.INPUT_KEY][rows])
        np.testing.assert_allclose(info["standardizer"]["mean"], want.mean, rtol=1e-6)
        np.testing.assert_allclose(info["standardizer"]["std"], want.std, rtol=1e-6)
        # the run's settings, only the data differ
        run_info = json.loads((run_dir / "config.json").read_text())
        for key in (*IDENTITY_FIELDS, "epochs"):
            assert info[key] == run_info[key], key
    runs = run_dir.parent.parent / "runs" / "lstm-s0"
    _, in_pred = read_predictions(runs / "predictions_train.csv", list(HUME_EMOTIONS))
    assert np.abs(res.predictions - in_pred).max() > 1e-3


def test_resume_skips_finished_folds_and_is_deterministic(crossfitted):
    before, resumed, again = crossfitted["calls"]
    assert before == 2 and resumed == 1 and again == 0  # fold 2 only, then nothing
    assert crossfitted["resumed"].trained == [2] and crossfitted["again"].trained == []
    fresh = crossfitted["fresh"]
    assert fresh.trained == [0, 1, 2]
    # an uninterrupted cross-fit of the same run (other folders) gives the same file, byte for byte
    runs = crossfitted["run_dir"].parent.parent / "runs" / "lstm-s0"
    assert fresh.path.read_text() == (runs / cf.OOF_FILE).read_text()
    # fold checkpoints are gone once a fold's predictions are written
    work = cf.work_dir(crossfitted["run_dir"], FOLDS, 0)
    assert not any((work / f"fold{k}" / "steps").exists() for k in range(FOLDS))


def test_bad_inputs_are_clear_errors(crossfitted, tmp_path, capsys):
    copy = crossfitted["copy"]
    warnings.simplefilter("ignore", UserWarning)  # the clip lacking fau (reset by pytest after the test)
    with pytest.raises(ValueError, match=rf"--folds 99 is more than the 26 train clips .*{copy}"):
        cf.crossfit(copy, folds=99, progress=False)
    assert cf_cli.main(["--run-dir", str(tmp_path / "nope")]) == 2
    assert f"run folder {tmp_path / 'nope'} not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cf_cli.main(["--run-dir", str(tmp_path / "empty")]) == 2
    assert f"{tmp_path / 'empty' / 'config.json'} not found" in capsys.readouterr().err
    # a work folder of another run under the same name is refused, naming its file
    folds_file = cf.work_dir(copy, FOLDS, 0) / FOLDS_FILE
    record = json.loads(folds_file.read_text())
    folds_file.write_text(json.dumps({**record, "fold": record["fold"][::-1]}))
    with pytest.raises(ValueError, match=rf"{folds_file} belongs to a cross-fit with other settings.*fold"):
        cf.crossfit(copy, folds=FOLDS, runs_dir=str(copy.parent.parent / "runs"), progress=False)
    folds_file.write_text(json.dumps(record))


# ------------------------------------------------------------------------------------------ the report


def test_report_fits_late_fusion_on_out_of_fold_predictions(crossfitted, capsys):
    from eri_jax.report import build_report, load_dataset_labels, load_rows
    from eri_jax.report.collect import BootstrapSettings

    root, dataset = crossfitted["root"], crossfitted["dataset"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe_dir = _train_and_evaluate(dataset, root, "probe", "probe-s0")
        assert cf_cli.main(["--run-dir", str(probe_dir), "--folds", "2", "--no-progress"]) == 0
    assert "probe-s0: 27 train clips in 2 folds (seed 0), 2 fold(s) trained now" in capsys.readouterr().out
    runs = root / "runs"
    rows = load_rows()
    rows["table3"]["viper_vatf_clip"] = {"label": "LSTM", "runs": ["lstm-s*"], "where": {"model": "lstm"}}
    rows["table3"]["viper_vatf_videollava_prompt2"] = {"label": "probe", "runs": ["probe-s*"],
                                                        "where": {"model": "probe"}}
    rows["table4"], rows["table6"] = {}, {}
    data = load_dataset_labels(*dataset)
    boot = BootstrapSettings(n_boot=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = build_report(runs, root / "report", data, rows=rows, boot=boot)
        row = next(r for r in report["table3"] if r["key"] == "late_fusion")
        assert row["status"] == "ok", row
        assert row["fusion"]["weights_fit_on"] == "out-of-fold"
        assert row["fusion"]["train_files"] == cf.OOF_FILE
        # without the probe's out-of-fold file, both members fall back to the in-sample files
        (runs / "probe-s0" / cf.OOF_FILE).rename(root / "probe_oof.csv")
        report = build_report(runs, root / "report2", data, rows=rows, boot=boot)
    row = next(r for r in report["table3"] if r["key"] == "late_fusion")
    assert row["fusion"]["weights_fit_on"] == "in-sample"
