"""Where a split's answers come from: the TFDS dataset (`query_answer`, stored by `python -m extract`),
or a chat model asked now through `extract`'s machinery (model resolution, feature cache, batching).

`answers_from_model` takes the clips, labels and split membership from the built dataset and finds the
videos where extraction read them (the data root and layout in the dataset's metadata; `data_root`
overrides it when the videos moved). Answers go into extraction's feature cache of that dataset
(`<cache>/features/<dataset>/<kind>_query-<hash>/`), so a rerun skips answered clips, an interrupted
run resumes, and Video-LLaVA's answers are shared with `python -m extract --config full`. A clip whose
video cannot be read is reported (failures.jsonl, and "no answer" in the query outputs), and the run
goes on; its scores are filled like any other missing score.
torch and transformers are imported only here, and only when a model runs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from eri_jax.query.answer_files import QueryAnswers
from eri_jax.query.shots import SHOT_RULE, choose_shots, shot_answer
from tfds_hume import paths
from tfds_hume.layouts import read_layout
from tfds_hume.manifest import load_value

QUERY_KEY = "query_answer"
DEFAULT_DATASET = "hume_reaction/full"


def dataset_metadata(dataset: str, data_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The built dataset's metadata (emotions, features, notes of the extraction run)."""
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import _builder

    return dict(_builder(dataset, data_dir).info.metadata)


def has_answers(dataset: str, data_dir: str | os.PathLike | None) -> bool:
    """True when the dataset stores the querying answers (`query_answer`)."""
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import dataset_meta

    return QUERY_KEY in dataset_meta(dataset, data_dir).features


def _spec_meta(spec) -> dict[str, Any]:
    """What the answers' FeatureSpec says about the model and the question."""
    params = spec.params or {}
    kinds = list(params.get("models") or {})
    return {"chat_model": kinds[0] if kinds else spec.source, "extractor": spec.source, "model_id": spec.model_id,
            "revision": spec.revision, "random_weights": bool(spec.random_weights), "prompt": params.get("prompt"),
            "max_new_tokens": params.get("max_new_tokens"), "chat_format": params.get("chat_format")}


def _base_meta(dataset: str, dmeta) -> dict[str, Any]:
    return {"model": "query", "dataset": dataset, "dataset_source": dmeta.dataset, "synthetic": dmeta.synthetic,
            "features": [QUERY_KEY]}


def answers_from_dataset(split: str, *, dataset: str = DEFAULT_DATASET,
                         data_dir: str | os.PathLike | None = None) -> QueryAnswers:
    """The answers stored in the dataset; a clip whose `query_answer` is missing has no answer."""
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import dataset_meta, load_split

    dmeta = dataset_meta(dataset, data_dir)
    if QUERY_KEY not in dmeta.features:
        raise ValueError(f"{dataset} has no {QUERY_KEY!r} feature: extract it with `python -m extract --config full` "
                         f"(extractor vllava_query), or ask a model now with --run")
    data = load_split(split, [QUERY_KEY], dataset, data_dir)
    missing = data.missing[QUERY_KEY]
    answers = [None if m else str(t) for t, m in zip(data.texts[QUERY_KEY], missing)]
    no_answer = {str(i): f"{QUERY_KEY} missing in {dataset}" for i, m in zip(data.ids, missing) if m}
    meta = {**_base_meta(dataset, dmeta), **_spec_meta(dmeta.features[QUERY_KEY]), "answers_from": "dataset"}
    return QueryAnswers(split=split, ids=[str(i) for i in data.ids], answers=answers, labels=data.labels,
                        emotions=list(dmeta.emotions), meta=meta, no_answer=no_answer)


def train_labels(dataset: str, data_dir: str | os.PathLike | None) -> np.ndarray:
    """float32 [N, E] labels of the dataset's train split (for the train-mean fill)."""
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import load_split

    return load_split("train", [], dataset, data_dir).labels


def _clips(split_ids, notes: dict[str, Any], data_root: str | os.PathLike | None, dataset: str):
    """The dataset's clips of the split as layout records (with their video paths), the data root and layout."""
    root = Path(data_root) if data_root else (Path(notes["data_root"]) if notes.get("data_root") else None)
    layout = notes.get("layout") or "auto"
    if root is None or not root.is_dir():
        where = f"--data-root {root}" if data_root else f"the data root recorded in {dataset} ({root})"
        raise ValueError(f"{where} is not a folder: the videos are needed to ask a model; pass --data-root "
                         "with the dataset's folder")
    data = read_layout(root, layout if data_root is None else "auto")
    records = {r.id: r for r in data.records}
    absent = [i for i in split_ids if i not in records]
    if absent:
        raise ValueError(f"{len(absent)} clips of {dataset} (e.g. {absent[:3]}) are not in the dataset at {root}; "
                         "is --data-root the folder the dataset was extracted from?")
    return [records[i] for i in split_ids], root, data.layout


def answers_from_model(split: str, *, dataset: str = DEFAULT_DATASET, data_dir: str | os.PathLike | None = None,
                       chat_model: str = "vllava", models: str = "real", model_id: str | None = None,
                       device: str | None = None, prompt: str | None = None, max_new_tokens: int | None = None,
                       batch_size: int | None = None, cache_dir: str | os.PathLike | None = None,
                       data_root: str | os.PathLike | None = None, workers: int = 0,
                       progress: bool = True, shots: int = 0, shot_seed: int = 0,
                       omni_input: str | None = None) -> QueryAnswers:
    """Ask `chat_model` (a kind of `extract.models.KINDS` with querying support) about every clip of the split.

    models: "real" (a hub id / local folder, `model_id` or the kind's default) or "tiny" (random
    miniature, offline). max_new_tokens / batch_size default to extraction's (128 real, 16 tiny; 4 videos).
    shots: K labelled train clips shown first (`eri_jax.query.shots`, drawn with `shot_seed`; Qwen2-VL and
    Qwen2.5-Omni). omni_input: what Qwen2.5-Omni is given, "av" (frames + audio, default), "v" or "a".
    """
    # deferred: imports tensorflow_datasets; extract imports torch
    from eri_jax.inputs.dataset import dataset_meta, load_split
    from extract.cache import ProbeCache, dataset_features_dir
    from extract.configs import BATCH_DEFAULTS, MAX_NEW_TOKENS, TINY_MAX_NEW_TOKENS
    from extract.extractors import run_extractor
    from extract.extractors.model_choice import ModelRequest, resolve_models
    from extract.extractors.model_pool import ModelPool
    from extract.extractors.query import CHAT_KINDS, FEW_SHOT_KINDS, OMNI_INPUTS, QUERY_PROMPT, make_query_extractor

    if chat_model not in CHAT_KINDS:
        raise ValueError(f"--chat-model {chat_model!r} has no querying support; choose one of {list(CHAT_KINDS)}")
    if omni_input is not None and chat_model != "omni":
        raise ValueError(f"--omni-input applies to --chat-model omni only, not {chat_model}")
    if chat_model == "omni" and (omni_input or "av") not in OMNI_INPUTS:
        raise ValueError(f"--omni-input {omni_input!r}: choose one of {', '.join(OMNI_INPUTS)}")
    omni_input = (omni_input or "av") if chat_model == "omni" else None
    if shots and chat_model not in FEW_SHOT_KINDS:
        raise ValueError(f"--shots {shots}: --chat-model {chat_model} takes one video per conversation; models that "
                         f"can take the examples: {', '.join(FEW_SHOT_KINDS)}")
    if shots and split == "train":
        raise ValueError("--shots draws its examples from the train split, so it cannot score train itself")
    if model_id and models == "tiny":
        raise ValueError(f"--model-id {model_id} names a real model: use it with --models real, not tiny")
    dmeta = dataset_meta(dataset, data_dir)
    notes = dataset_metadata(dataset, data_dir).get("notes") or {}
    data = load_split(split, [], dataset, data_dir)
    ids = [str(i) for i in data.ids]
    clips, root, layout = _clips(ids, notes, data_root, dataset)
    cache_dir = paths.cache_dir(cache_dir)
    # The same dataset folder of the feature cache as extraction (see extract.pipeline.run).
    source = ({"synthetic": dmeta.dataset} if dmeta.synthetic else
              {"data_root": str(root.resolve()), "layout": layout})
    features_dir = dataset_features_dir(cache_dir, dmeta.dataset, source)
    examples = _shot_examples(shots, shot_seed, dataset, data_dir, notes, data_root, list(dmeta.emotions),
                              cache_dir, chat_model, omni_input) if shots else []

    request = ModelRequest(mode=models, names={chat_model: model_id} if model_id else {}, device=device,
                           flags={chat_model: "--model-id"})  # errors name this command's flag
    pool = ModelPool(resolve_models([chat_model], request, cache_dir), request.device)
    pool.device  # an unusable --device is an error now, before any work
    default_tokens = TINY_MAX_NEW_TOKENS if models == "tiny" else MAX_NEW_TOKENS
    extractor = make_query_extractor(chat_model, pool, prompt=prompt or QUERY_PROMPT,
                                     max_new_tokens=max_new_tokens or default_tokens,
                                     videos_per_batch=batch_size or BATCH_DEFAULTS["vllava"], shots=examples,
                                     omni_input=omni_input)
    try:
        summary, cache = run_extractor(extractor, clips, features_dir, probe=ProbeCache(cache_dir), progress=progress,
                                       workers=workers)
    finally:
        pool.close()
    spec = extractor.specs()[QUERY_KEY]
    failed = {f["id"]: (f"{f['file']}: {f['reason']}" if f.get("file") else f["reason"]) for f in summary.failures}
    answers, no_answer = [], {}
    for cid in ids:
        path = cache.files(cid).get(QUERY_KEY)
        if path is None:
            answers.append(None)
            no_answer[cid] = failed.get(cid) or cache.missing(cid).get(QUERY_KEY) or "no answer in the cache"
        else:
            answers.append(str(load_value(path, spec)[0]))
    meta = {**_base_meta(dataset, dmeta), **_spec_meta(spec), "answers_from": "model",
            "cache_folder": str(cache.folder), "device": pool.device,
            "answered_now": summary.done, "answers_cached": summary.cached, "n_shots": shots,
            **({"omni_input": omni_input} if omni_input else {}),
            "shots": {"k": shots, "seed": shot_seed if shots else None, "rule": SHOT_RULE if shots else None,
                      "from_split": "train" if shots else None, "ids": [cid for cid, _, _ in examples],
                      "answers": [a for _, _, a in examples]}}
    return QueryAnswers(split=split, ids=ids, answers=answers, labels=data.labels, emotions=list(dmeta.emotions),
                        meta=meta, no_answer=no_answer)


def _shot_examples(k: int, seed: int, dataset: str, data_dir, notes: dict[str, Any], data_root, emotions: list[str],
                   cache_dir: Path, chat_model: str, omni_input: str | None) -> list[tuple[str, Any, str]]:
    """(clip id, frames | AVClip, answer) of the K train examples (`eri_jax.query.shots`), decoded like the
    asked clips (Qwen2.5-Omni: with their audio unless it is given frames only)."""
    # deferred: imports tensorflow_datasets; extract imports torch
    from eri_jax.inputs.dataset import load_split
    from extract.cache import ProbeCache
    from extract.errors import ClipError
    from extract.extractors.base import Media
    from extract.extractors.frames import clip_frames
    from extract.extractors.query import VIDEO_FRAMES, omni_media

    train = load_split("train", [], dataset, data_dir)
    rows = choose_shots(train.labels, k, seed)
    clips, _, _ = _clips([str(train.ids[i]) for i in rows], notes, data_root, dataset)
    media = Media(probe=ProbeCache(cache_dir))
    out = []
    for i, clip in zip(rows, clips):
        try:
            if chat_model == "omni":
                shown, why = omni_media(clip, media, omni_input, VIDEO_FRAMES)
                if why is not None:
                    raise ValueError(f"few-shot example {clip.id}: no audio for the model to hear ({why}); pick "
                                     "others with --shot-seed, or --omni-input v")
            else:
                shown = clip_frames(clip, media, VIDEO_FRAMES, f"{chat_model}_query")
        except ClipError as err:
            raise ValueError(f"few-shot example {clip.id}: {err}; pick others with --shot-seed") from None
        out.append((clip.id, shown, shot_answer(train.labels[i], emotions)))
    return out
