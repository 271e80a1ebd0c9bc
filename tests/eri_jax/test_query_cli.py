"""`python -m eri_jax.query` on stored answers: a hand-made dataset of realistic answers with known scores.

Dev answers come in the formats chat models use (lists, JSON, prose, percentages), some leave out
emotions, one is gibberish and one clip has no stored answer; Anxiety is answered 0.4 by 7 of the 12
dev clips. The expected predictions are the planted scores with the train mean where none was given,
and the expected Pearson r comes from scipy.
"""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr

from eri_jax.query.cli import CHAT_MODELS, main
from tfds_hume.manifest import ClipEntry, FeatureSpec, Manifest, save_value
from tfds_hume.records import HUME_EMOTIONS

PROMPT = ("Can you assign a score between 0 and 1 to each of these emotions based on what is expressed by the "
          "subject in the video: adoration, amusement, anxiety, disgust, emphatic pain, fear and surprise?")
NAMES = ["adoration", "amusement", "anxiety", "disgust", "emphatic pain", "fear", "surprise"]
N = float("nan")
N_TRAIN, N_DEV = 16, 12
DROPPED = {3: (5, 6), 8: (0,)}  # dev clip -> emotions its answer leaves out
GIBBERISH, NO_ANSWER = 5, 10  # dev clips: an answer without scores, a clip without a stored answer


def _render(i: int, s: np.ndarray, keep: list[int]) -> str:
    """Dev answer i in one of four realistic formats, naming only the emotions in `keep`."""
    f = i % 4
    if f == 0:
        return "Sure! Here are the scores:\n" + "\n".join(f"- {NAMES[k].title()}: {s[k]:.1f}" for k in keep)
    if f == 1:
        return json.dumps({NAMES[k]: round(float(s[k]), 1) for k in keep})
    if f == 2:
        return "I would give " + ", ".join(f"{s[k]:.1f} for {NAMES[k]}" for k in keep) + "."
    return "; ".join(f"{NAMES[k].capitalize()}: {round(100 * s[k])}%" for k in keep)


def build(root: Path) -> dict:
    from tfds_hume.build import build as build_tfds

    rng = np.random.default_rng(7)
    e = len(HUME_EMOTIONS)
    export = root / "export"
    clips, expected, answers = [], np.full((N_DEV, e), N), {}
    train_labels = rng.uniform(size=(N_TRAIN, e)).astype(np.float32)
    train_labels[0, 1] = N  # an unlabelled train value is left out of the mean
    for i in range(N_TRAIN):
        cid = f"t{i:03d}"
        save_value(export / f"{cid}.npz", np.array("Adoration: 0.5"))
        clips.append(ClipEntry(id=cid, split="train", labels=train_labels[i].tolist(),
                               files={"query_answer": f"{cid}.npz"}))
    dev_labels = rng.uniform(size=(N_DEV, e)).astype(np.float32)
    for i in range(N_DEV):
        cid = f"d{i:03d}"
        s = rng.choice(np.arange(11) / 10, size=e)
        s[2] = 0.4 if i < 7 else [0.1, 0.2, 0.3, 0.6, 0.7][i - 7]
        keep = [k for k in range(e) if k not in DROPPED.get(i, ())]
        files = {}
        if i != NO_ANSWER:
            text = "The person looks calm and watches the screen." if i == GIBBERISH else _render(i, s, keep)
            save_value(export / f"{cid}.npz", np.array(text))
            files["query_answer"] = f"{cid}.npz"
            answers[cid] = text
            if i != GIBBERISH:
                expected[i, keep] = s[keep]
        clips.append(ClipEntry(id=cid, split="dev", labels=dev_labels[i].tolist(), files=files))
    spec = FeatureSpec("text", source="vllava_query", model_id="LanguageBind/Video-LLaVA-7B-hf", revision="abc",
                       params={"prompt": PROMPT, "max_new_tokens": 128,
                               "models": {"vllava": {"model_id": "LanguageBind/Video-LLaVA-7B-hf"}}})
    Manifest(dataset="query-test", synthetic=True, emotions=list(HUME_EMOTIONS), features={"query_answer": spec},
             clips=clips).write(export)
    data_dir = root / "tfds"
    build_tfds(export, config="full", data_dir=data_dir)
    return {"data_dir": data_dir, "expected": expected, "dev_labels": dev_labels, "answers": answers,
            "train_mean": np.nanmean(train_labels.astype(np.float64), 0)}


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return build(tmp_path_factory.mktemp("query"))


def _run(ds, runs: Path, *extra: str) -> int:
    return main(["--data-dir", str(ds["data_dir"]), "--runs-dir", str(runs), *extra])


@pytest.fixture(scope="module")
def default_run(ds, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert _run(ds, runs) == 0  # the dataset has answers: --from-dataset is the default
    return runs / "query-vllava"


def test_parsed_scores_and_pearson_match_the_planted_answers(ds, default_run):
    expected = ds["expected"]
    rows = list(csv.DictReader(open(default_run / "query_answers_dev.csv")))
    parsed = np.array([[float(r[e]) if r[e] else N for e in HUME_EMOTIONS] for r in rows])
    np.testing.assert_allclose(parsed, expected, rtol=1e-6)  # NaN at the same places
    assert [r["answer"] for r in rows if r["status"] == "answered"] == list(ds["answers"].values())
    assert rows[NO_ANSWER]["status"].startswith("no answer: query_answer missing")

    predictions = np.where(np.isnan(expected), ds["train_mean"][None], expected)
    metrics = json.loads((default_run / "metrics_dev.json").read_text())
    want = [pearsonr(predictions[:, k], ds["dev_labels"][:, k].astype(np.float64))[0] for k in range(7)]
    got = [metrics["pearson"][e] for e in HUME_EMOTIONS]
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert metrics["mean_pearson"] == pytest.approx(np.mean(want), abs=1e-6)
    with open(default_run / "predictions_dev.csv") as f:
        preds = np.array([[float(v) for v in r[1:]] for r in list(csv.reader(f))[1:]])
    np.testing.assert_allclose(preds, predictions, rtol=1e-6)
    meta = metrics["meta"]
    assert meta["model"] == "query" and meta["chat_model"] == "vllava" and meta["answers_from"] == "dataset"
    assert meta["prompt"] == PROMPT and meta["fill"] == "train-mean" and meta["run"] == "query-vllava"


def test_missing_counts_fill_values_and_planted_degeneracy(ds, default_run):
    stats = json.loads((default_run / "query_stats_dev.json").read_text())
    missing = np.isnan(ds["expected"]).sum(0)
    for k, e in enumerate(HUME_EMOTIONS):
        s = stats["per_emotion"][e]
        assert (s["parsed"], s["missing"]) == (N_DEV - missing[k], missing[k])
        assert stats["fill"]["values"][e] == pytest.approx(ds["train_mean"][k], rel=1e-6)
    anx = stats["per_emotion"]["Anxiety"]  # 0.4 planted in clips 0-6; clip 5 is gibberish
    assert (anx["most_frequent"], anx["most_frequent_count"]) == (0.4, 6)
    assert anx["share_of_answers"] == pytest.approx(6 / N_DEV)
    assert (stats["answers"], stats["no_answer"], stats["with_no_score"]) == (N_DEV, 1, 1)
    assert (stats["with_all_scores"], stats["with_some_scores"]) == (N_DEV - 4, 2)
    md = (default_run / "query_stats_dev.md").read_text()
    assert "| Anxiety | 10 | 2 |" in md and "50.0 %" in md and "train split's mean label" in md


def test_the_report_finds_the_run_as_the_querying_row(default_run):
    from eri_jax.report.runs import find_runs, matches

    rows = json.loads((Path(__file__).parents[2] / "eri_jax/report/default_rows.json").read_text())
    where = rows["table3"]["videollava_querying"]["where"]
    (run,) = find_runs(default_run.parent, ["*"], "dev")
    assert matches(run, where)


def test_constant_fill_and_run_name(ds, tmp_path):
    assert _run(ds, tmp_path, "--from-dataset", "--fill", "0.5", "--run-name", "q-half") == 0
    stats = json.loads((tmp_path / "q-half" / "query_stats_dev.json").read_text())
    assert stats["fill"] == {"method": "0.5", "values": {e: 0.5 for e in HUME_EMOTIONS}}
    with open(tmp_path / "q-half" / "predictions_dev.csv") as f:
        preds = np.array([[float(v) for v in r[1:]] for r in list(csv.reader(f))[1:]])
    np.testing.assert_allclose(preds, np.where(np.isnan(ds["expected"]), 0.5, ds["expected"]), rtol=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["--from-dataset", "--models", "tiny"], "--models only apply with --run"),
    (["--fill", "1.5"], "must lie in"),
    (["--run", "--models", "tiny", "--model-id", "org/model"], "use it with --models real"),
    (["--run", "--models", "tiny"], "is not a folder"),  # a hand-made dataset: no videos to ask about
    (["--fill", "median"], "expected train-mean or a number"),
    (["--dataset", "hume_reaction/demo"], "no dataset 'hume_reaction/demo'"),
])
def test_bad_input_is_a_message(ds, tmp_path, capsys, argv, message):
    assert _run(ds, tmp_path, *argv) == 2
    assert message in capsys.readouterr().err


def test_cli_choices_and_the_default_prompt():
    from extract.extractors.query import CHAT_KINDS, QUERY_PROMPT

    assert set(CHAT_MODELS) == set(CHAT_KINDS)
    assert QUERY_PROMPT == PROMPT  # the paper's, verbatim ("emphatic pain" included)
