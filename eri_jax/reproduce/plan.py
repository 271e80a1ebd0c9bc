"""The reproduction plan: every step as a command, with the run folders it writes and their attributes.

A `Step` is one subprocess (`python -m <module> <args>`); `done` lists the files whose existence means
the step already finished (a rerun skips it), and `runs` the run folders it writes under the runs
folder with the attributes the report's row matcher (`eri_jax.report.runs.matches`) will read from
them. Tests match those attributes against `default_rows.json`, so every report row is known to be
filled by exactly one planned setting before anything runs.

Demo (synthetic set, `--models tiny`, demo presets) and real data (`--models real`, paper presets)
run the same steps; only the extraction flags, presets and the sweeps' inputs differ (the paper
presets of `eri_jax.sweep --table` already read `vllava_emb_p2` / `vllava_p2`; the demo ones are told).
A data root with `--models tiny` (demo presets unless `--preset paper`) runs a real dataset's formats
through every step on a CPU, with random-weight features. Steps beyond the paper (`BEYOND_*`, few-shot
querying) are in the demo's plan and opt-in on real data (`Options.beyond`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from eri_jax.inputs.assembly import MODALITY_FEATURES
from eri_jax.training.presets import get_preset

DATASET = "hume_reaction/full"
TABLE4_DIR = "sweep-probe-table4"
TABLE6_DIR = "sweep-viper-table6"
REPORT_DIR = "report"
DEFAULT_DEMO_CLIPS = 60
# Folds of the cross-fitted train predictions of the fusion members (`eri_jax.crossfit`). The demo's 3
# folds added 51 s and 74 s (CPU time 50 s, 54 s; the second on a loaded machine) on 2 shared cores:
# per run 3 demo-ViPER trainings of 30 epochs on 40 of the 60 train clips.
DEFAULT_FOLDS = 5
DEFAULT_DEMO_FOLDS = 3

# Table 3's trained rows: (run-name stem, model, flags selecting the inputs, attributes the run records).
# The late-fusion row needs train-split predictions of the two ViPER runs it fuses (FUSION_STEMS).
TRAINED = (
    ("lstm-fau", "lstm", ["--features", "fau"], {"model": "lstm", "features": ["fau"]}),
    ("lstm-vggface2", "lstm", ["--features", "vggface2"], {"model": "lstm", "features": ["vggface2"]}),
    ("viper-V", "viper", ["--modalities", "V"], {"model": "viper", "modalities": "V", "text_source": "clip"}),
    ("viper-VATF-clip", "viper", ["--modalities", "VATF", "--text-source", "clip"],
     {"model": "viper", "modalities": "VATF", "text_source": "clip"}),
    ("probe-vllava_emb_p1", "probe", ["--features", "vllava_emb_p1"],
     {"model": "probe", "features": ["vllava_emb_p1"]}),
    ("probe-vllava_emb_p2", "probe", ["--features", "vllava_emb_p2"],
     {"model": "probe", "features": ["vllava_emb_p2"]}),
    ("viper-VATF-vllava_p1", "viper", ["--modalities", "VATF", "--text-source", "vllava_p1"],
     {"model": "viper", "modalities": "VATF", "text_source": "vllava_p1"}),
    ("viper-VATF-vllava_p2", "viper", ["--modalities", "VATF", "--text-source", "vllava_p2"],
     {"model": "viper", "modalities": "VATF", "text_source": "vllava_p2"}),
    ("viper-VATF-llava_frames", "viper", ["--modalities", "VATF", "--text-source", "llava_frames"],
     {"model": "viper", "modalities": "VATF", "text_source": "llava_frames"}),
)
FUSION_STEMS = ("viper-VATF-clip", "viper-VATF-vllava_p2")

# Beyond the paper (`Options.beyond_paper`: the demo's default, opt-in on real data, where Qwen2.5-Omni runs
# three times per clip): Omni's features in the probe and ViPER's T slot, rows beside Video-LLaVA's, and
# querying Omni (frames + audio) zero-shot and with 3 train clips shown first.
BEYOND_TRAINED = (
    ("probe-omni_av_emb_p2", "probe", ["--features", "omni_av_emb_p2"],
     {"model": "probe", "features": ["omni_av_emb_p2"]}),
    ("viper-VATF-omni_av_p2", "viper", ["--modalities", "VATF", "--text-source", "omni_av_p2"],
     {"model": "viper", "modalities": "VATF", "text_source": "omni_av_p2"}),
)
# `--config full`'s extractors plus the opt-in `omni` (extract.configs; --extractors replaces the list, so all).
BEYOND_EXTRACTORS = "pixels,shipped,vit,wavlm,clip_text,vllava,vllava_query,llava,omni"
QUERY_SHOTS = (0, 3)  # few-shot querying rows: K = 0 and K = 3, Qwen2.5-Omni hearing the clips
SHOT_SEED = 0
ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "elu")  # = models.probe.ACTIVATION_NAMES
TABLE6_SETS = ("V", "V+A", "V+T", "V+F", "V+A+T", "V+T+F", "V+A+F", "V+A+T+F")  # = sweep.grid.TABLE6_SETS


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    """A run folder a step writes: `name` relative to the runs folder, `attrs` it records."""

    name: str
    attrs: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Step:
    """One subprocess. `module`/`args`: `python -m module *args`; `done`: files meaning it finished
    (empty: always run, the command's own caching makes a rerun quick); `resume`: how a rerun behaves."""

    name: str
    module: str
    args: tuple[str, ...]
    done: tuple[Path, ...] = ()
    runs: tuple[PlannedRun, ...] = ()
    resume: str = ""

    def is_done(self) -> bool:
        return bool(self.done) and all(p.is_file() for p in self.done)


@dataclasses.dataclass(frozen=True)
class Options:
    """What `python -m eri_jax.reproduce` was asked for (cli.py fills it)."""

    runs_dir: Path
    workdir: Path
    data_dir: Path | None = None
    cache_dir: Path | None = None
    data_root: Path | None = None
    seeds: tuple[int, ...] = (0,)
    sweep_seeds: tuple[int, ...] = (0, 1, 2)
    clips_per_split: int = DEFAULT_DEMO_CLIPS
    epochs: int | None = None
    sweep_epochs: int | None = None
    folds: int | None = None
    no_progress: bool = True
    models: str | None = None  # extraction models, tiny | real; None: tiny for the demo, real for a data root
    preset_name: str | None = None  # training presets, demo | paper; None: demo with tiny models, else paper
    beyond: bool | None = None  # the steps beyond the paper (BEYOND_*); None: on for the demo, off on real data

    @property
    def demo(self) -> bool:
        return self.data_root is None

    @property
    def model_mode(self) -> str:
        return self.models or ("tiny" if self.demo else "real")

    @property
    def preset(self) -> str:
        return self.preset_name or ("demo" if self.model_mode == "tiny" else "paper")

    @property
    def beyond_paper(self) -> bool:
        return self.demo if self.beyond is None else self.beyond

    @property
    def crossfit_folds(self) -> int:
        """K of the cross-fitted train predictions: `folds`, else 3 for the demo and 5 for real data."""
        if self.folds is not None:
            return self.folds
        return DEFAULT_DEMO_FOLDS if self.demo else DEFAULT_FOLDS


def _common(o: Options) -> list[str]:
    return ["--data-dir", str(o.data_dir)] if o.data_dir is not None else []


def _progress(o: Options) -> list[str]:
    return ["--no-progress"] if o.no_progress else []


def extract_step(o: Options) -> Step:
    args = ["--config", "full"]
    args += ["--models", o.model_mode]
    if o.demo:
        args += ["--synthetic-clips", str(o.clips_per_split)]
    else:
        args += ["--data-root", str(o.data_root)]
    if o.cache_dir is not None:
        args += ["--cache-dir", str(o.cache_dir)]
    if o.beyond_paper:
        args += ["--extractors", BEYOND_EXTRACTORS]
    args += _common(o) + _progress(o)
    return Step("extract", "extract", tuple(args),
                resume="always runs: its per-extractor feature cache makes a rerun read features, not compute them")


def train_steps(o: Options) -> list[Step]:
    steps = []
    for seed in o.seeds:
        for stem, model, inputs, attrs in TRAINED + (BEYOND_TRAINED if o.beyond_paper else ()):
            name = f"{stem}-s{seed}"
            args = ["--model", model, "--preset", o.preset, "--dataset", DATASET, *inputs, "--seed", str(seed),
                    "--run-name", name, "--runs-dir", str(o.runs_dir), "--workdir", str(o.workdir)]
            if o.epochs is not None:
                args += ["--epochs", str(o.epochs)]
            args += _common(o) + _progress(o)
            steps.append(Step(f"train {name}", "eri_jax.train", tuple(args),
                              done=(o.runs_dir / name / "train_log.json",),
                              runs=(PlannedRun(name, {**attrs, "seed": seed, "dataset": DATASET}),),
                              resume="skipped when train_log.json is there (written last); an interrupted "
                                     "run resumes from its last orbax checkpoint"))
    return steps


def fusion_steps(o: Options) -> list[Step]:
    """Train-split predictions of the runs the late-fusion row fuses (weights are fit on them): in-sample
    (`eri_jax.evaluate --split train`), then out-of-fold (`eri_jax.crossfit`), which the report prefers."""
    steps = []
    for seed in o.seeds:
        for stem in FUSION_STEMS:
            name = f"{stem}-s{seed}"
            args = ["--run-dir", str(o.workdir / name), "--split", "train", "--runs-dir", str(o.runs_dir)]
            args += _common(o)
            steps.append(Step(f"evaluate {name} on train", "eri_jax.evaluate", tuple(args),
                              done=(o.runs_dir / name / "predictions_train.csv",),
                              resume="skipped when predictions_train.csv is there"))
            k = o.crossfit_folds
            args = ["--run-dir", str(o.workdir / name), "--folds", str(k), "--runs-dir", str(o.runs_dir)]
            args += _common(o) + _progress(o)
            steps.append(Step(f"cross-fit {name} on train ({k} folds)", "eri_jax.crossfit", tuple(args),
                              done=(o.runs_dir / name / "predictions_train_oof.csv",),
                              resume="skipped when predictions_train_oof.csv is there; finished folds are kept "
                                     "and an interrupted fold resumes from its last checkpoint"))
    return steps


def query_step(o: Options) -> Step:
    name = "query-vllava"
    args = ["--from-dataset", "--split", "dev", "--dataset", DATASET, "--runs-dir", str(o.runs_dir),
            "--run-name", name] + _common(o)
    return Step(f"query {name}", "eri_jax.query", tuple(args), done=(o.runs_dir / name / "metrics_dev.json",),
                runs=(PlannedRun(name, {"model": "query", "chat_model": "vllava", "dataset": DATASET}),),
                resume="skipped when metrics_dev.json is there (the answers themselves come from extraction)")


def few_shot_query_steps(o: Options) -> list[Step]:
    """Qwen2.5-Omni (frames + audio) asked on dev now, K = 0 and K = 3 (`eri_jax.query --run`), beyond the paper."""
    if not o.beyond_paper:
        return []
    steps = []
    for k in QUERY_SHOTS:
        name = "query-omni" + (f"-{k}shot" if k else "")
        args = ["--run", "--chat-model", "omni", "--models", o.model_mode, "--split", "dev", "--dataset", DATASET,
                "--runs-dir", str(o.runs_dir), "--run-name", name]
        args += ["--shots", str(k), "--shot-seed", str(SHOT_SEED)] if k else []
        args += (["--cache-dir", str(o.cache_dir)] if o.cache_dir is not None else []) + _common(o) + _progress(o)
        steps.append(Step(f"query {name}", "eri_jax.query", tuple(args), done=(o.runs_dir / name / "metrics_dev.json",),
                          runs=(PlannedRun(name, {"model": "query", "chat_model": "omni", "n_shots": k,
                                                  "omni_input": "av", "dataset": DATASET}),),
                          resume="skipped when metrics_dev.json is there; answers are cached per clip"))
    return steps


def _seeds_arg(seeds: tuple[int, ...]) -> str:
    return ",".join(map(str, seeds))


def sweep_runs(model: str, out: str, inputs: list[tuple[str, str | None, list[str]]], activations, seeds,
               lr: float) -> tuple[PlannedRun, ...]:
    """The run folders `eri_jax.sweep` writes (`<out>/runs/<run_id>`, ids as `sweep.grid.RunSpec.run_id`)."""
    runs = []
    for token, modalities, features in inputs:
        for act in activations:
            for seed in seeds:
                parts = [model, token] + ([act] if act is not None else []) + [f"lr{lr:g}", f"s{seed}"]
                attrs = {"model": model, "activation": act, "modalities": modalities, "features": features,
                         "seed": seed, "dataset": DATASET}
                runs.append(PlannedRun(f"{out}/runs/{'-'.join(parts)}", attrs))
    return tuple(runs)


def sweep_steps(o: Options) -> list[Step]:
    seeds = _seeds_arg(o.sweep_seeds)
    extra = (["--epochs", str(o.sweep_epochs)] if o.sweep_epochs is not None else []) + _common(o) + _progress(o)
    t4_args = ["--table", "4", "--dataset", DATASET, "--preset", o.preset, "--seeds", seeds,
               "--out", str(o.runs_dir / TABLE4_DIR)]
    t6_args = ["--table", "6", "--dataset", DATASET, "--preset", o.preset, "--seeds", seeds,
               "--out", str(o.runs_dir / TABLE6_DIR)]
    if o.preset == "demo":  # the paper presets already choose these; the demo ones default to the demo set's features
        t4_args += ["--feature-sets", "vllava_emb_p2"]
        t6_args += ["--text-source", "vllava_p2"]
    text_key = "vllava_text_emb_p2"
    letter_keys = {**MODALITY_FEATURES, "T": text_key}
    t6_inputs = [(s.replace("+", ""), s.replace("+", ""), [letter_keys[c] for c in s.replace("+", "")])
                 for s in TABLE6_SETS]
    resume = "skipped when sweep.json is there (written last); an interrupted sweep starts over"
    return [
        Step("sweep table 4 (probe activations)", "eri_jax.sweep", tuple(t4_args + extra),
             done=(o.runs_dir / TABLE4_DIR / "sweep.json",), resume=resume,
             runs=sweep_runs("probe", TABLE4_DIR, [("vllava_emb_p2", None, ["vllava_emb_p2"])], ACTIVATIONS,
                             o.sweep_seeds, get_preset("probe", o.preset).lr)),
        Step("sweep table 6 (ViPER modalities)", "eri_jax.sweep", tuple(t6_args + extra),
             done=(o.runs_dir / TABLE6_DIR / "sweep.json",), resume=resume,
             runs=sweep_runs("viper", TABLE6_DIR, t6_inputs, [None], o.sweep_seeds,
                             get_preset("viper", o.preset).lr)),
    ]


def report_step(o: Options) -> Step:
    args = ["--runs-dir", str(o.runs_dir), "--dataset", DATASET, "--out", str(o.runs_dir / REPORT_DIR)] + _common(o)
    return Step("report", "eri_jax.report", tuple(args), resume="always runs (seconds)")


EXPLAIN_STEM = "viper-VATF-clip"  # the Table 3 run explained (a TRAINED stem)


def explain_step(o: Options) -> Step:
    """`eri_jax.explain` on the ViPER-VATF (CLIP text) run of the first seed: the report's Explanations section."""
    name = f"{EXPLAIN_STEM}-s{o.seeds[0]}"
    args = ["--run-dir", str(o.workdir / name), "--split", "dev", "--runs-dir", str(o.runs_dir)]
    return Step(f"explain {name}", "eri_jax.explain", tuple(args), done=(o.runs_dir / name / "explain_dev.json",),
                resume="skipped when explain_dev.json is there (written last)")


def build_plan(o: Options) -> list[Step]:
    """Every step in order: extract, Table 3 runs, explanations, train predictions for fusion, querying (few-shot
    beyond the paper), sweeps, report."""
    return [extract_step(o), *train_steps(o), explain_step(o), *fusion_steps(o), query_step(o),
            *few_shot_query_steps(o), *sweep_steps(o), report_step(o)]


def planned_runs(plan: list[Step]) -> list[PlannedRun]:
    return [r for step in plan for r in step.runs]
