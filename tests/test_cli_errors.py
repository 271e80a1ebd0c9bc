"""Every command's `--help`, and the common mistakes, end cleanly: `error: ...` on stderr, exit 2, no traceback.

The commands are called in-process (their `main`), except one `python -m extract` run that checks the
real exit status of a process. Mistakes are made against a tiny built dataset (`hume_reaction/full` of
tests/eri_jax/train_fixtures.py: fau, pixels, vllava_emb_p1, a text feature; no stored query answers).
No test reaches for a model hub: hub ids are resolved with hub access off or with the probe faked.
"""
import dataclasses
import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach for a hub

import pytest

from tests.eri_jax.train_fixtures import build_dataset
from tfds_hume.records import HUME_EMOTIONS

COMMANDS = {  # prog -> module whose `main(argv)` runs it
    "python -m extract": "extract.cli",
    "python -m eri_jax.train": "eri_jax.train",
    "python -m eri_jax.evaluate": "eri_jax.evaluate",
    "python -m eri_jax.sweep": "eri_jax.sweep.cli",
    "python -m eri_jax.query": "eri_jax.query.cli",
    "python -m eri_jax.report": "eri_jax.report.__main__",
    "python -m eri_jax.reproduce": "eri_jax.reproduce.cli",
    "python -m eri_jax.crossfit": "eri_jax.crossfit.cli",
    "python -m tfds_hume.build": "tfds_hume.build",
}


def _main(module: str):
    return importlib.import_module(module).main


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-errors")
    name, data_dir = build_dataset(root, sizes=(("train", 8), ("dev", 8), ("test", 4)))
    return {"name": name, "data_dir": str(data_dir), "root": root}


def _clean_error(capsys, code: int, *needles: str) -> str:
    """Assert exit 2 and one clean `error:` message (1-3 lines, at the end of stderr) with every needle."""
    out = capsys.readouterr()
    assert code == 2, out
    assert "Traceback" not in out.err, out.err
    lines = out.err.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(starts) == 1 and len(lines) - starts[0] <= 3, out.err  # at most a progress line before it
    err = "\n".join(lines[starts[0]:])
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.mark.parametrize("prog", list(COMMANDS))
def test_help(prog, capsys):
    with pytest.raises(SystemExit) as e:
        _main(COMMANDS[prog])(["--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog}")


def test_argparse_errors_keep_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        _main("eri_jax.train")(["--model", "nope"])
    assert e.value.code == 2 and "error: argument --model" in capsys.readouterr().err


def test_extract_missing_data_root_as_a_process(tmp_path):
    """The issue's example: it exited 1 with a bare message; now `error:` and exit 2 from the process."""
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "extract", "--data-root", str(tmp_path / "nonexistent"),
                        "--cache-dir", str(tmp_path / "c")], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: --data-root") and "no such folder" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("argv, needles", [
    (["--limit", "0"], ["--limit must be at least 1"]),
    (["--shard", "1of2"], ["expected i/N"]),
])
def test_extract_bad_arguments(tmp_path, capsys, argv, needles):
    _clean_error(capsys, _main("extract.cli")(argv + ["--cache-dir", str(tmp_path)]), *needles)


def test_unknown_dataset_lists_the_built_ones(ds, tmp_path, capsys):
    for module, extra in (("eri_jax.train", []), ("eri_jax.sweep.cli", ["--out", str(tmp_path / "s")]),
                          ("eri_jax.query.cli", []), ("eri_jax.report.__main__", [])):
        code = _main(module)(["--dataset", "hume_reaction/nope", "--data-dir", ds["data_dir"], *extra])
        _clean_error(capsys, code, "no dataset 'hume_reaction/nope'", f"built there: {ds['name']}")


def test_missing_features_are_listed_at_once_with_the_closest_fix(ds, tmp_path, capsys):
    base = ["--dataset", ds["name"], "--data-dir", ds["data_dir"], "--workdir", str(tmp_path / "ck"),
            "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    # ViPER's paper inputs (V, A, T, F) on a set that has only fau and pixels: all three gaps in one message.
    err = _clean_error(capsys, _main("eri_jax.train")(base + ["--model", "viper", "--modalities", "VATF"]),
                       "'vit', 'wavlm', 'clip_text'", "--features pixels,fau")
    assert "'fau'" not in err.split("Its numeric")[0]
    _clean_error(capsys, _main("eri_jax.train")(base + ["--model", "probe", "--features", "vit,vllava_text_p1"]),
                 "no feature 'vit'", "'vllava_text_p1' is text, not numeric", "--features pixels")
    sweep = ["--dataset", ds["name"], "--data-dir", ds["data_dir"], "--out", str(tmp_path / "s"), "--no-progress"]
    _clean_error(capsys, _main("eri_jax.sweep.cli")(sweep + ["--table", "6"]),
                 "V (feature 'vit'), A (feature 'wavlm'), T (feature 'clip_text')", "--modality-map")
    _clean_error(capsys, _main("eri_jax.sweep.cli")(sweep + ["--feature-sets", "vit+fau,wavlm"]),
                 "'vit', 'wavlm'", "--feature-sets pixels+fau")
    assert not (tmp_path / "ck").exists() and not (tmp_path / "s").exists()  # nothing half-done


def test_query_without_stored_answers_says_so_at_once(ds, tmp_path, capsys):
    code = _main("eri_jax.query.cli")(["--dataset", ds["name"], "--data-dir", ds["data_dir"],
                                       "--runs-dir", str(tmp_path)])
    _clean_error(capsys, code, "holds no stored query answers", "--run --models tiny",
                 "--dataset hume_reaction/full")
    assert not any(tmp_path.iterdir())


def _fake_run(ds, root: Path) -> tuple[Path, Path]:
    """A finished run's two folders as train writes them: checkpoints/<run>/ (with steps/) and runs/<run>/."""
    from eri_jax.training.config import TrainConfig

    cfg = TrainConfig(model="probe", preset="demo", dataset=ds["name"], features=["vllava_emb_p1"],
                      model_kwargs={"hidden": 4}, optimizer="adamw", lr=1e-3, weight_decay=0.0, batch_size=4,
                      epochs=1, schedule="constant", halve_every=0, standardize=False, precision="float32", seed=0,
                      run_name="r", data_dir=ds["data_dir"], workdir=str(root / "checkpoints"),
                      runs_dir=str(root / "runs"))
    info = {**dataclasses.asdict(cfg), "in_dim": 12, "emotions": list(HUME_EMOTIONS), "steps_per_epoch": 2}
    for folder in (root / "checkpoints" / "r", root / "runs" / "r"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(info))
    (root / "checkpoints" / "r" / "steps").mkdir()
    return root / "checkpoints" / "r", root / "runs" / "r"


def test_evaluate_on_the_runs_folder_points_at_the_checkpoints(ds, tmp_path, capsys):
    ckpt, runs = _fake_run(ds, tmp_path)
    _clean_error(capsys, _main("eri_jax.evaluate")(["--run-dir", str(runs)]),
                 f"{runs} holds no checkpoints", f"pass --run-dir {ckpt}")
    _clean_error(capsys, _main("eri_jax.evaluate")(["--run-dir", str(tmp_path / "nowhere")]), "not found")
    _clean_error(capsys, _main("eri_jax.crossfit.cli")(["--run-dir", str(tmp_path / "nowhere")]), "not found")


def test_evaluate_console_line():
    from eri_jax.evaluate import console_summary

    emotions = list(HUME_EMOTIONS)
    m = {"split": "dev", "meta": {"epoch": 3}, "mean_pearson": 0.524824229891, "pearson": dict.fromkeys(emotions, 0.5)}
    m["pearson"]["Fear"] = None
    line = console_summary("r", "best", m, Path("runs/r"))
    assert "mean Pearson 0.5248 (over 6 of 7 emotions)" in line and "0.52482" not in line
    test = {"split": "test", "meta": {"epoch": 3}, "mean_pearson": None, "pearson": None}
    assert "no labels in this split" in console_summary("r", "best", test, Path("runs/r"))
    assert "None" not in console_summary("r", "best", test, Path("runs/r"))


def test_reading_checkpoints_logs_no_read_only_warning(tmp_path, caplog):
    from eri_jax.training.checkpoints import RunCheckpoints

    (tmp_path / "steps").mkdir()
    with caplog.at_level(logging.INFO):
        with RunCheckpoints(tmp_path, read_only=True) as ckpt:
            assert ckpt.latest_epoch() is None
    assert not [r for r in caplog.records if "read only" in r.getMessage()]


@pytest.mark.parametrize("module, argv, needles", [
    ("eri_jax.reproduce.cli", ["--sweep-seeds", "0,1", "--dry-run"], ["need at least 3 seeds"]),
    ("eri_jax.reproduce.cli", ["--data-root", "/nonexistent/data"], ["--data-root /nonexistent/data: no such"]),
    ("eri_jax.report.__main__", ["--n-boot", "0"], ["--n-boot must be >= 1"]),
    ("eri_jax.query.cli", ["--fill", "median"], ["expected train-mean or a number"]),
])
def test_other_bad_arguments(tmp_path, capsys, module, argv, needles):
    _clean_error(capsys, _main(module)(argv), *needles)


# ------------------------------------------------------------------------------------- hub: fail fast


def test_unreachable_hub_turns_hub_access_off_once(monkeypatch):
    """No network, no offline variable: one probe, then the local cache only; the error names id and flag."""
    import huggingface_hub.constants

    from extract.extractors.model_choice import ModelRequest, ModelUnavailable, resolve_models
    from extract.models import hub

    calls = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # (restored after the test)
    monkeypatch.setattr(hub, "_probed", [])
    monkeypatch.setattr(hub, "probe", lambda endpoint: calls.append(endpoint) or "ConnectError: no route")
    request = ModelRequest(names={"vllava": "no-such-org/no-such-model"}, flags={"vllava": "--model-id"})
    for _ in range(2):
        with pytest.raises(ModelUnavailable) as e:
            resolve_models(["vllava"], request, "unused")
        msg = str(e.value)
        assert "'no-such-org/no-such-model' is not available" in msg and "did not answer (ConnectError" in msg
        assert "--model-id PATH" in msg and "--vllava-model" not in msg
    assert len(calls) == 1 and os.environ["HF_HUB_OFFLINE"] == "1"


def test_probe_reports_a_closed_port(monkeypatch):
    import huggingface_hub.constants

    from extract.models.hub import probe

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # let the session try loopback
    reason = probe("http://127.0.0.1:9", timeout=2.0)  # the discard port: nothing listens on loopback
    assert reason is not None and reason.startswith("ConnectError")
