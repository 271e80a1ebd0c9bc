"""`python -m eri_jax.query`: the zero-shot querying baseline, evaluated like every other run.

    python -m eri_jax.query [--split dev] [--dataset hume_reaction/full] [--data-dir D]    # stored answers
    python -m eri_jax.query --run --models tiny|real [--chat-model vllava|qwen2vl|llava|omni] [--model-id ID|PATH]
                            [--prompt P] [--max-new-tokens N] [--batch-size B] [--cache-dir C] [--data-root R]
                            [--shots K [--shot-seed S]]    # K labelled train clips first (qwen2vl, omni)
                            [--omni-input av|v|a]          # omni: frames + audio (default), frames, audio

Answers come from the dataset's `query_answer` feature (`--from-dataset`, the default) or from a chat
model asked now (`--run`; cached and resumable like `python -m extract`). On a dataset without stored
answers (the demo set) any `--run` option implies `--run`, and none is an error that shows both ways
forward. Each answer is parsed into one score per emotion (`eri_jax.query.parse_scores`); a score the
answer does not give is filled with the train split's mean label of that emotion (`--fill train-mean`,
default) or a constant (`--fill 0.5`). Outputs go to `<runs-dir>/<run-name>/`
(default `runs/query-<chat model>/`): the standard evaluation files (`meta.model` = "query") plus
query_answers_<split>.csv (raw answers and parsed scores) and query_stats_<split>.json / .md (missing
counts, fill values, and the most frequent value per emotion, i.e. how degenerate the answers are).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from eri_jax.query import run as qrun
from eri_jax.query.answer_files import evaluate_answers
from eri_jax.query.run import DEFAULT_DATASET
from eri_jax.query.scores import FILL_TRAIN_MEAN, train_mean_fill
from tfds_hume.cli_errors import cli_main

CHAT_MODELS = ("vllava", "qwen2vl", "llava", "omni")  # = extract.extractors.query.CHAT_KINDS (a fast --help)
OMNI_INPUTS = ("av", "v", "a")  # = extract.extractors.query.OMNI_INPUTS
RUN_ONLY = ("chat_model", "models", "model_id", "prompt", "max_new_tokens", "batch_size", "device", "cache_dir",
            "data_root", "workers", "shots", "shot_seed", "omni_input")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eri_jax.query", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    p.add_argument("--dataset", default=DEFAULT_DATASET, help=f"TFDS name/config (default {DEFAULT_DATASET})")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: $TFDS_DATA_DIR or TFDS's)")
    p.add_argument("--runs-dir", default="runs", help="outputs go to <runs-dir>/<run-name>/ (default runs)")
    p.add_argument("--run-name", default=None, help="default: query-<chat model>")
    p.add_argument("--fill", default="train-mean",
                   help="value of a score the answer does not give: train-mean (the train split's mean label "
                        "per emotion, default) or a number in [0, 1]")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--from-dataset", action="store_true",
                      help="evaluate the answers stored in the dataset (query_answer); default when it has them")
    mode.add_argument("--run", action="store_true",
                      help="ask a chat model now (implied by --models, --chat-model, ... on a dataset without "
                           "stored answers)")
    r = p.add_argument_group("--run: asking a model")
    r.add_argument("--chat-model", choices=CHAT_MODELS, default=None, help="model kind (default vllava)")
    r.add_argument("--models", choices=("real", "tiny"), default=None,
                   help="real: the kind's checkpoint (default); tiny: random miniature model, offline")
    r.add_argument("--model-id", default=None, metavar="ID|PATH",
                   help="Hugging Face id or local folder (default: the kind's, e.g. LanguageBind/Video-LLaVA-7B-hf)")
    r.add_argument("--prompt", default=None, help="the question (default: the paper's, verbatim)")
    r.add_argument("--max-new-tokens", type=int, default=None, help="longest answer (default 128; 16 with tiny)")
    r.add_argument("--batch-size", type=int, default=None, help="videos per generate call (default 4)")
    r.add_argument("--device", choices=("auto", "cuda", "cpu"), default=None, help="default auto (cuda if available)")
    r.add_argument("--cache-dir", default=None, help="extraction cache (default $ERI_CACHE_DIR or ~/.cache/eri_jax)")
    r.add_argument("--data-root", default=None,
                   help="the dataset's folder with the videos (default: where extraction read them)")
    r.add_argument("--workers", type=int, default=None, help="threads decoding ahead of the model (default 2)")
    r.add_argument("--shots", type=int, default=None, metavar="K",
                   help="few-shot: show K labelled train clips (video + their scores) as earlier turns before each "
                        "clip (default 0; qwen2vl and omni: Video-LLaVA and LLaVA take one video per conversation)")
    r.add_argument("--shot-seed", type=int, default=None, metavar="S",
                   help="seed of the draw of the K train examples (default 0; the same examples for every clip)")
    r.add_argument("--omni-input", choices=OMNI_INPUTS, default=None,
                   help="what --chat-model omni is given: av = the 8 frames and the clip's own audio (default: it "
                        "hears the subject, which Video-LLaVA never does), v = frames only, a = audio only")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _fill_arg(text: str) -> float | None:
    """None for train-mean, else the constant; ValueError for anything else."""
    if text == "train-mean":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--fill {text!r}: expected train-mean or a number in [0, 1]") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--fill {text!r}: a constant must lie in [0, 1]")
    return value


def run(args: argparse.Namespace) -> int:
    constant = _fill_arg(args.fill)
    given = [f"--{k.replace('_', '-')}" for k in RUN_ONLY if getattr(args, k) is not None]
    use_model = args.run
    if not args.run and not args.from_dataset and not qrun.has_answers(args.dataset, args.data_dir):
        if not given:  # asking a model is never a silent default: the paper's is a 7B download
            raise ValueError(no_answers_message(args.dataset))
        use_model = True
        print(f"{args.dataset} holds no stored answers: asking the model ({', '.join(given)} imply --run)",
              file=sys.stderr)
    if not use_model and given:
        raise ValueError(f"{', '.join(given)} only apply with --run (asking a model); the dataset's stored answers "
                         "are evaluated as they are")
    if any(v is not None and v < 1 for v in (args.max_new_tokens, args.batch_size)):
        raise ValueError("--max-new-tokens and --batch-size must be at least 1")
    if args.shots is not None and args.shots < 0:
        raise ValueError(f"--shots {args.shots}: must be 0 or more")
    if args.shot_seed is not None and not args.shots:
        raise ValueError("--shot-seed only applies with --shots K (K above 0)")
    if use_model:
        if args.models == "tiny":
            os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub is imported: nothing reaches for a hub
        qa = qrun.answers_from_model(
            args.split, dataset=args.dataset, data_dir=args.data_dir, chat_model=args.chat_model or "vllava",
            models=args.models or "real", model_id=args.model_id,
            device=None if args.device in (None, "auto") else args.device, prompt=args.prompt,
            max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, cache_dir=args.cache_dir,
            data_root=args.data_root, workers=2 if args.workers is None else args.workers,
            progress=not args.no_progress, shots=args.shots or 0,
            shot_seed=0 if args.shot_seed is None else args.shot_seed, omni_input=args.omni_input)
    else:
        qa = qrun.answers_from_dataset(args.split, dataset=args.dataset, data_dir=args.data_dir)
    if constant is None:
        fill, method = train_mean_fill(qrun.train_labels(args.dataset, args.data_dir), qa.emotions), FILL_TRAIN_MEAN
    else:
        fill, method = np.full(len(qa.emotions), constant), repr(constant)
    k = (qa.meta.get("shots") or {}).get("k") or 0
    variant = qa.meta.get("omni_input")
    name = args.run_name or (f"query-{qa.meta['chat_model']}" + (f"-{variant}" if variant not in (None, "av") else "")
                             + (f"-{k}shot" if k else ""))
    run_dir = Path(args.runs_dir) / name
    metrics, stats = evaluate_answers(run_dir, qa, fill=fill, fill_method=method, meta={**qa.meta, "run": name})
    print(_summary(name, metrics, stats, run_dir))
    return 0


def no_answers_message(dataset: str) -> str:
    """What to do when `dataset` holds no stored answers (the demo dataset never does)."""
    return (f"{dataset} holds no stored query answers (feature query_answer). Either ask a random miniature "
            f"model now, for a demo: --run --models tiny; or, after a full extraction (`python -m extract "
            f"--config full`), evaluate the answers it stored: --dataset {DEFAULT_DATASET}")


def _summary(name: str, metrics: dict, stats: dict, run_dir: Path) -> str:
    meta = stats["meta"]
    tags = [t for t, on in (("SYNTHETIC data", meta.get("synthetic")),
                            ("RANDOM WEIGHTS", meta.get("random_weights"))) if on]
    mean = metrics["mean_pearson"]
    lines = [f"{name} ({meta.get('chat_model')}, answers from {meta.get('answers_from')}"
             + (f"; {', '.join(tags)}" if tags else "") + f") on {stats['split']}: "
             + ("no labels in this split, so no Pearson correlation" if metrics["pearson"] is None else
                f"mean Pearson {mean:.4g}" if mean is not None else "mean Pearson undefined")]
    lines.append(f"  {stats['answers']} answers: all scores {stats['with_all_scores']}, some "
                 f"{stats['with_some_scores']}, none {stats['with_no_score']}, no answer {stats['no_answer']}")
    fill = stats["fill"]
    for e, s in stats["per_emotion"].items():
        top = ("" if s["most_frequent"] is None else f"; most frequent {s['most_frequent']:g} in "
               f"{s['most_frequent_count']} ({100 * s['share_of_answers']:.1f} %)")
        lines.append(f"  {e:<14} parsed {s['parsed']}, missing {s['missing']} -> {fill['values'][e]:.4g}{top}")
    lines.append(f"  fill: {fill['method']}; files in {run_dir}")
    return "\n".join(lines)


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    return run(parser().parse_args(argv))
