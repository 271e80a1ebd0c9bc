"""The demo plan's steps beyond the paper, run as planned (own processes, the plan's own arguments) on a small
synthetic set extracted with the Omni extractor: the Omni probe, ViPER-VATF with Omni text, Omni querying zero-
and 3-shot; the report then fills each of their rows, and only them."""
from __future__ import annotations

import dataclasses
import json

import pytest

from eri_jax.reproduce import build_plan, execute
from eri_jax.reproduce.plan import BEYOND_TRAINED, DATASET, Options

CLIPS_PER_SPLIT = 3
# What the beyond steps read (V, A, F and Omni's T for ViPER; Omni's pooled state for the probe): `full`'s
# costly Video-LLaVA / LLaVA / CLIP extractors are left out to keep this test short.
EXTRACTORS = "pixels,shipped,vit,wavlm,omni"
ROWS = ("omni_querying_zero_shot", "omni_querying_3shot", "omni_probing_prompt2", "viper_vatf_omni_av_prompt2")


@pytest.mark.slow
def test_beyond_steps_run_as_planned_and_fill_their_rows(tmp_path, monkeypatch):
    from eri_jax.report import build_report, load_dataset_labels, load_rows
    from extract.cli import main as extract_main

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    o = Options(runs_dir=tmp_path / "runs", workdir=tmp_path / "ckpt", data_dir=tmp_path / "tfds",
                cache_dir=tmp_path / "cache", clips_per_split=CLIPS_PER_SPLIT, epochs=1)
    plan = build_plan(o)
    extract = plan[0]
    assert "omni" in extract.args[extract.args.index("--extractors") + 1].split(",")
    args = list(extract.args)
    args[args.index("--extractors") + 1] = EXTRACTORS
    assert extract_main(args) == 0
    beyond = {f"{stem}-s0" for stem, *_ in BEYOND_TRAINED} | {"query-omni", "query-omni-3shot"}
    steps = [s for s in plan if s.runs and {r.name for r in s.runs} <= beyond]
    assert len(steps) == 4
    # 3 train clips: all of them are the few-shot examples.
    execute.run_plan(steps, log=lambda _: None)

    rows = load_rows()
    rows["table4"], rows["table6"] = {}, {}
    report = build_report(o.runs_dir, tmp_path / "report", load_dataset_labels(DATASET, o.data_dir), rows=rows)
    got = {r["key"]: r for r in report["table3"]}
    assert {k for k, r in got.items() if r["status"] == "ok"} == set(ROWS)
    for step in steps:
        (run,) = step.runs
        row = next(r for r in got.values() if r.get("setting") == run.name.removesuffix("-s0"))
        assert row["n_clips"] == CLIPS_PER_SPLIT
        meta = json.loads((o.runs_dir / run.name / "metrics_dev.json").read_text())["meta"]
        assert meta["synthetic"] is True and meta["random_weights"] is True
    q3 = got["omni_querying_3shot"]["query"]
    assert q3["shots"] == 3 and q3["omni_input"] == "av" and q3["answers"] == CLIPS_PER_SPLIT
    stats = json.loads((o.runs_dir / "query-omni-3shot" / "query_stats_dev.json").read_text())
    assert stats["meta"]["shots"]["from_split"] == "train" and len(stats["meta"]["shots"]["ids"]) == 3
    # A rerun skips every finished step.
    again = execute.run_plan([dataclasses.replace(s) for s in steps], runner=lambda argv: 1, log=lambda _: None)
    assert {t["status"] for t in again} == {"skipped"}
