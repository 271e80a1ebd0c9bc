"""eri_jax.reproduce: the plan fills every report row exactly once, its commands imply the attributes it
claims, failing steps stop the run with their command and code, finished steps are skipped."""
from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from eri_jax.report.rows import load_rows
from eri_jax.report.runs import find_runs, group_settings, matches
from eri_jax.reproduce import Options, build_plan, cli, execute, planned_runs
from eri_jax.reproduce.plan import DATASET, FUSION_STEMS

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"

# The feature kinds `python -m extract --config full` writes (inputs/assembly.py, the extract configs).
FULL_FEATURES = {"pixels": "frame", "fau": "frame", "vggface2": "frame", "vit": "frame", "wavlm": "frame",
                 "clip_text": "frame", "llava_text_emb": "frame", "vllava_text_emb_p1": "video",
                 "vllava_text_emb_p2": "video", "vllava_emb_p1": "video", "vllava_emb_p2": "video"}


def _options(tmp_path: Path, *, real: bool = False, seeds=(0,), beyond: bool | None = None) -> Options:
    root = tmp_path / "hume"
    root.mkdir(exist_ok=True)
    return Options(runs_dir=tmp_path / "runs", workdir=tmp_path / "ckpt", data_dir=tmp_path / "tfds",
                   data_root=root if real else None, seeds=tuple(seeds), beyond=beyond)


# The report rows beyond the paper: filled on the demo (and on real data with --beyond-paper), else "not run".
BEYOND_ROWS = {"table3.omni_querying_zero_shot", "table3.omni_querying_3shot", "table3.omni_probing_prompt2",
               "table3.viper_vatf_omni_av_prompt2"}


def _materialise(runs_dir: Path, plan) -> None:
    """Write each planned run folder as the report finds it: predictions_dev.csv + its attributes."""
    for run in planned_runs(plan):
        d = runs_dir / run.name
        d.mkdir(parents=True)
        (d / "predictions_dev.csv").write_text("File_ID\n")
        (d / "run.json").write_text(json.dumps(run.attrs))


@pytest.mark.parametrize("real,seeds,beyond", [(False, (0,), None), (False, (0, 1), None), (True, (0,), None),
                                               (True, (0,), True), (False, (0,), False)])
def test_every_report_row_is_filled_by_exactly_one_planned_setting(tmp_path, real, seeds, beyond):
    o = _options(tmp_path, real=real, seeds=seeds, beyond=beyond)
    assert o.beyond_paper == (not real if beyond is None else beyond)
    plan = build_plan(o)
    _materialise(o.runs_dir, plan)
    rows = load_rows()
    hits_per_run: dict[str, list[str]] = {}
    for table in ("table3", "table4", "table6"):
        for key, spec in rows[table].items():
            if "fusion" in spec:
                continue
            hits = [r for r in find_runs(o.runs_dir, spec["runs"], "dev") if matches(r, spec["where"])]
            if f"{table}.{key}" in BEYOND_ROWS and not o.beyond_paper:
                assert hits == [], (table, key)  # shown as "not run"
                continue
            settings = group_settings(hits)
            assert len(settings) == 1, (table, key, sorted(settings))
            (runs,) = settings.values()
            want_seeds = {None} if spec["where"].get("model") == "query" else \
                set(o.sweep_seeds if table != "table3" else seeds)
            assert {r.seed for r in runs} == want_seeds, (table, key)
            for r in hits:
                hits_per_run.setdefault(r.name, []).append(f"{table}.{key}")
    launched = {r.name for r in planned_runs(plan)}
    assert set(hits_per_run) == launched  # every launched run fills a row ...
    assert all(len(v) == 1 for v in hits_per_run.values()), hits_per_run  # ... and only one
    assert len([n for n in launched if n.startswith("sweep-probe-table4/")]) == 7 * 3
    assert len([n for n in launched if n.startswith("sweep-viper-table6/")]) == 8 * 3


def test_late_fusion_members_get_train_predictions(tmp_path):
    o = _options(tmp_path, seeds=(0, 2))
    plan = build_plan(o)
    _materialise(o.runs_dir, plan)
    rows = load_rows()
    fusion = rows["table3"]["late_fusion"]["fusion"]
    evaluated = set()
    for step in plan:
        if step.module == "eri_jax.evaluate":
            a = step.args
            assert a[a.index("--split") + 1] == "train"
            assert Path(a[a.index("--runs-dir") + 1]) == o.runs_dir
            evaluated.add(Path(a[a.index("--run-dir") + 1]))
    for member in fusion:
        spec = rows["table3"][member]
        for r in find_runs(o.runs_dir, spec["runs"], "dev"):
            if matches(r, spec["where"]):
                assert o.workdir / r.name in evaluated, (member, r.name)
    assert len(evaluated) == len(FUSION_STEMS) * 2


@pytest.mark.parametrize("real,folds,want", [(False, None, 3), (True, None, 5), (False, 4, 4)])
def test_late_fusion_members_get_cross_fitted_train_predictions(tmp_path, real, folds, want):
    """After each member's in-sample evaluation: `eri_jax.crossfit` on its checkpoint folder, done when
    predictions_train_oof.csv is in its runs folder (what the report reads first)."""
    from eri_jax.crossfit.cli import build_parser

    o = dataclasses.replace(_options(tmp_path, real=real, seeds=(0, 2)), folds=folds)
    plan = build_plan(o)
    steps = [s for s in plan if s.module == "eri_jax.crossfit"]
    assert len(steps) == len(FUSION_STEMS) * 2
    runs = set()
    for step in steps:
        args = build_parser().parse_args(list(step.args))
        run = Path(args.run_dir).name
        runs.add(run)
        assert args.folds == want and Path(args.runs_dir) == o.runs_dir and args.data_dir == str(o.data_dir)
        assert Path(args.run_dir) == o.workdir / run and args.no_progress
        assert step.done == (o.runs_dir / run / "predictions_train_oof.csv",)
        k = plan.index(step)
        before = plan[k - 1]
        assert before.module == "eri_jax.evaluate" and before.args[before.args.index("--run-dir") + 1] == args.run_dir
        trained = next(i for i, s in enumerate(plan) if s.module == "eri_jax.train" and s.runs[0].name == run)
        assert trained < k - 1
    assert runs == {f"{stem}-s{seed}" for stem in FUSION_STEMS for seed in (0, 2)}
    assert cli.options(cli.parser().parse_args(_argv(tmp_path, "--folds", "4"))).crossfit_folds == 4


def _train_config(step):
    from eri_jax.train import build_parser
    from eri_jax.training.config import make_config

    args = build_parser().parse_args(list(step.args))
    return make_config(args, synthetic=args.preset == "demo").to_json()


@pytest.mark.parametrize("seeds", [(0,), (2, 5)])
def test_the_vatf_clip_run_is_explained_after_training_and_before_the_report(tmp_path, seeds):
    o = _options(tmp_path, seeds=seeds)
    plan = build_plan(o)
    (step,) = [s for s in plan if s.module == "eri_jax.explain"]
    name = f"viper-VATF-clip-s{seeds[0]}"
    names = [s.name for s in plan]
    assert names.index(f"train {name}") < names.index(step.name) < names.index("report")
    args = dict(zip(step.args[::2], step.args[1::2]))
    assert args == {"--run-dir": str(o.workdir / name), "--split": "dev", "--runs-dir": str(o.runs_dir)}
    assert step.done == (o.runs_dir / name / "explain_dev.json",) and not step.runs


@pytest.mark.parametrize("real", [False, True])
def test_train_commands_record_the_planned_attributes(tmp_path, real):
    o = _options(tmp_path, real=real)
    steps = [s for s in build_plan(o) if s.module == "eri_jax.train"]
    assert len(steps) == (9 if real else 11)  # the demo adds the Omni probe and ViPER + Omni text
    for step in steps:
        cfg = _train_config(step)
        (run,) = step.runs
        assert cfg["run_name"] == Path(run.name).name and Path(cfg["runs_dir"]) == o.runs_dir
        assert cfg["preset"] == ("paper" if real else "demo")
        for k, v in run.attrs.items():
            assert cfg[k] == v, (run.name, k, cfg[k], v)
        # the checkpoint folder the fusion evaluation reads
        assert Path(cfg["workdir"]) / cfg["run_name"] == o.workdir / run.name


@pytest.mark.parametrize("real", [False, True])
def test_sweep_commands_write_the_planned_runs(tmp_path, real):
    from eri_jax.sweep import grid
    from eri_jax.sweep.cli import build_parser, make_config

    o = _options(tmp_path, real=real)
    meta = SimpleNamespace(synthetic=not real, features={k: SimpleNamespace(kind=v) for k, v in FULL_FEATURES.items()})
    steps = [s for s in build_plan(o) if s.module == "eri_jax.sweep"]
    assert len(steps) == 2
    for step in steps:
        cfg = make_config(build_parser().parse_args(list(step.args)), meta)
        specs = grid.expand_grid(cfg.model, inputs=cfg.inputs, lrs=cfg.lrs, seeds=cfg.seeds,
                                 activations=cfg.activations)
        out = Path(cfg.out).relative_to(o.runs_dir).as_posix()
        got = {f"{out}/runs/{r.run_id}": {"model": cfg.model, "activation": r.setting.activation,
                                          "modalities": r.setting.inputs.modalities,
                                          "features": list(r.setting.inputs.features), "seed": r.seed,
                                          "dataset": cfg.dataset}
               for r in specs}
        assert got == {r.name: r.attrs for r in step.runs}
    features = {tuple(r.attrs["features"]) for r in steps[0].runs}
    assert features == {("vllava_emb_p2",)}  # Table 4 is on prompt 2's pooled embedding, as in the paper
    assert {"vllava_text_emb_p2"} <= {f for r in steps[1].runs for f in r.attrs["features"]}


def test_demo_and_real_extraction_flags(tmp_path):
    from extract.configs import CONFIG_MODELS, OPT_IN

    demo = build_plan(_options(tmp_path))[0]
    assert demo.module == "extract"
    a = list(demo.args)
    assert a[a.index("--models") + 1] == "tiny" and a[a.index("--config") + 1] == "full"
    assert "--synthetic-clips" in a and "--data-root" not in a
    # The demo adds the opt-in Omni extractor to everything `full` runs (--extractors replaces the list).
    assert set(a[a.index("--extractors") + 1].split(",")) == {"pixels", "shipped", *CONFIG_MODELS["full"], *OPT_IN}
    real = build_plan(_options(tmp_path, real=True))[0]
    b = list(real.args)
    assert b[b.index("--models") + 1] == "real" and b[b.index("--data-root") + 1] == str(tmp_path / "hume")
    assert "--synthetic-clips" not in b and "--extractors" not in b
    assert "--extractors" in build_plan(_options(tmp_path, real=True, beyond=True))[0].args


@pytest.mark.parametrize("real", [False, True])
def test_query_steps_ask_omni_zero_and_three_shot_as_planned(tmp_path, real):
    from eri_jax.query.cli import parser as query_parser

    o = _options(tmp_path, real=real, beyond=True)
    steps = [s for s in build_plan(o) if s.module == "eri_jax.query"]
    assert [s.runs[0].name for s in steps] == ["query-vllava", "query-omni", "query-omni-3shot"]
    for step in steps[1:]:
        args = query_parser().parse_args(list(step.args))
        (run,) = step.runs
        assert args.run and args.chat_model == "omni" and args.split == "dev" and args.run_name == run.name
        assert args.models == ("real" if real else "tiny") and args.dataset == run.attrs["dataset"] == DATASET
        assert (args.shots or 0) == run.attrs["n_shots"] and args.omni_input in (None, run.attrs["omni_input"])
        assert Path(args.runs_dir) == o.runs_dir and step.done == (o.runs_dir / run.name / "metrics_dev.json",)
    for step in build_plan(_options(tmp_path)):
        if step.module.startswith("eri_jax.") and step.module != "eri_jax.reproduce":
            assert step.args[step.args.index("--dataset") + 1] == DATASET if "--dataset" in step.args else True


# ------------------------------------------------------------------------------------------- running


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["--runs-dir", str(tmp_path / "runs"), "--workdir", str(tmp_path / "ckpt"),
            "--data-dir", str(tmp_path / "tfds"), *extra]


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path, capsys):
    calls = []
    assert cli.main(_argv(tmp_path, "--dry-run"), runner=lambda argv: calls.append(argv) or 0) == 0
    out = capsys.readouterr().out
    assert calls == [] and not (tmp_path / "runs").exists()
    for step in build_plan(cli.options(cli.parser().parse_args(_argv(tmp_path)))):
        assert shlex.join(execute.command(step)) in out


def test_a_failing_step_stops_the_run_with_its_command_and_code(tmp_path, capsys):
    calls = []

    def runner(argv):
        calls.append(argv)
        if argv[2] == "eri_jax.train":  # the second step: a real process that fails with code 3
            return execute.subprocess_runner([sys.executable, "-c", "import sys; sys.exit(3)"])
        return 0

    assert cli.main(_argv(tmp_path), runner=runner) == 1
    err = capsys.readouterr().err
    assert len(calls) == 2  # nothing after the failing step ran
    assert "step 'train lstm-fau-s0' failed with exit code 3" in err
    assert shlex.join(calls[1]) in err
    saved = json.loads((tmp_path / "runs" / "report" / "timings.json").read_text())
    assert saved["failed_step"] == "train lstm-fau-s0" and saved["exit_code"] == 3
    assert [s["status"] for s in saved["steps"]] == ["ran", "failed"]


def test_a_step_stopped_by_bad_input_keeps_exit_code_2(tmp_path, capsys):
    """A step that exits 2 (its own one-line `error:` on bad input) ends the run with 2 too, and the run adds
    two lines: which step stopped, and its command."""
    assert cli.main(_argv(tmp_path), runner=lambda argv: 2) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("error: step 'extract' failed with exit code 2")
    assert err[1].strip().split()[1:3] == ["-m", "extract"]


def test_a_bad_data_root_is_refused_before_anything_is_written(tmp_path, capsys):
    """The data root's label files are read first: a layout error is one line, exit 2, no step runs."""
    root = tmp_path / "c2_muse_reaction"
    root.mkdir()
    (root / "labels.csv").write_text("File_ID,Adoration\n[1],0.5\n")
    (root / "partition.csv").write_text("Id,Partition\n[1],train\n")
    calls = []
    assert cli.main(_argv(tmp_path, "--data-root", str(root)), runner=lambda argv: calls.append(argv) or 0) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {root / 'labels.csv'}, line 1: ")
    assert calls == [] and not (tmp_path / "runs").exists()


def test_finished_steps_are_skipped_and_timings_written(tmp_path, capsys):
    o = cli.options(cli.parser().parse_args(_argv(tmp_path)))
    plan = build_plan(o)
    done = [s for s in plan if s.done]
    for step in done[:3]:
        for p in step.done:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("{}")
    calls = []
    assert cli.main(_argv(tmp_path), runner=lambda argv: calls.append(argv) or 0) == 0
    assert len(calls) == len(plan) - 3
    assert all(execute.command(s) not in calls for s in done[:3])
    saved = json.loads((o.runs_dir / "report" / "timings.json").read_text())
    assert [s["status"] for s in saved["steps"]].count("skipped") == 3
    assert saved["total_wall_s"] == pytest.approx(sum(s["wall_s"] for s in saved["steps"]), abs=0.05)
    out = capsys.readouterr().out
    assert "| total" in out and str(o.runs_dir / "report" / "report.md") in out


def test_a_runs_folder_of_another_dataset_build_is_refused(tmp_path, capsys):
    assert cli.main(_argv(tmp_path, "--clips-per-split", "5"), runner=lambda argv: 0) == 0
    calls = []
    assert cli.main(_argv(tmp_path, "--clips-per-split", "6"), runner=lambda argv: calls.append(argv) or 0) == 2
    assert calls == [] and "clips_per_split: then 5, now 6" in capsys.readouterr().err


def test_bad_options_are_clear_errors(tmp_path, capsys):
    assert cli.main(_argv(tmp_path, "--sweep-seeds", "0,1")) == 2
    assert "at least 3 seeds" in capsys.readouterr().err
    assert cli.main(_argv(tmp_path, "--data-root", str(tmp_path / "nope"))) == 2
    assert "no such folder" in capsys.readouterr().err
    assert cli.main(_argv(tmp_path, "--folds", "1")) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_cli_help_and_makefile_target():
    r = subprocess.run([sys.executable, "-m", "eri_jax.reproduce", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--dry-run" in r.stdout
    text = MAKEFILE.read_text()
    assert "reproduce-demo:" in text and "-m eri_jax.reproduce --demo" in text
    phony = next(line for line in text.splitlines() if line.startswith(".PHONY"))
    assert "reproduce-demo" in phony


@pytest.mark.parametrize("flags,models,preset", [((), "real", "paper"), (("--models", "tiny"), "tiny", "demo"),
                                                 (("--models", "tiny", "--preset", "paper"), "tiny", "paper")])
def test_data_root_with_tiny_models_is_a_format_check(tmp_path, flags, models, preset):
    """`--data-root DIR --models tiny`: a real layout through every step with miniature models and (by
    default) the demo presets; the runs folder remembers the models it was made with."""
    (tmp_path / "c2_muse_reaction").mkdir()
    argv = ["--data-root", str(tmp_path / "c2_muse_reaction"), "--runs-dir", str(tmp_path / "runs"), *flags]
    o = cli.options(cli.parser().parse_args(argv))
    plan = build_plan(o)
    extract = plan[0].args
    assert extract[extract.index("--models") + 1] == models and "--synthetic-clips" not in extract
    trains = [s.args for s in plan if s.module == "eri_jax.train"]
    assert trains and all(a[a.index("--preset") + 1] == preset for a in trains)
    cli.check_runs_dir(o)
    other = dataclasses.replace(o, models="real" if models == "tiny" else "tiny")
    with pytest.raises(ValueError, match="models"):
        cli.check_runs_dir(other)
