"""The report's querying rows beyond the paper: Qwen2.5-Omni zero-shot and 3-shot query runs (written by the
query command's own evaluation) fill their Table 3 rows with the Pearson of the filled predictions and the
degeneracy the query stats computed, side by side, and a paired test between them."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from eri_jax.evaluation.metrics import mean_over_defined, pearson_per_emotion
from eri_jax.query.answer_files import QueryAnswers, evaluate_answers
from eri_jax.report import BootstrapSettings, build_report, load_rows
from tests.eri_jax.test_report import EMOTIONS, NAME, make_data


def _answer(scores) -> str:
    return ", ".join(f"{e.lower().replace('-', ' ')}: {v:.2f}" for e, v in zip(EMOTIONS, scores))


def _query_run(runs, data, name, answers, k):
    dev = data.splits["dev"]
    qa = QueryAnswers(split="dev", ids=list(dev.ids), answers=answers, labels=dev.labels, emotions=EMOTIONS,
                      meta={})
    meta = {"model": "query", "dataset": NAME, "chat_model": "omni", "omni_input": "av", "n_shots": k,
            "shots": {"k": k, "ids": ["00001"] * k, "seed": 0, "rule": "test"}, "synthetic": True,
            "random_weights": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_answers(runs / name, qa, fill=np.full(len(EMOTIONS), 0.5), fill_method="0.5", meta=meta)


def test_zero_and_three_shot_rows_carry_pearson_and_degeneracy(tmp_path):
    data = make_data(seed=4)
    dev = data.splits["dev"]
    rng = np.random.default_rng(5)
    n = len(dev.ids)
    # Zero-shot: 0.4 for every emotion in 60 of 80 answers (degenerate), noisy guesses in the rest, 5 say nothing.
    zero = [_answer([0.4] * len(EMOTIONS)) if i < 60 else _answer(rng.uniform(0.5, 1, size=len(EMOTIONS)))
            for i in range(n)]
    zero[75:] = ["I cannot tell."] * 5
    # Three-shot: close to the labels, every score given.
    three = [_answer(np.clip(y + 0.1 * rng.normal(size=len(EMOTIONS)), 0, 1)) for y in dev.labels]
    runs = tmp_path / "runs"
    m0, s0 = _query_run(runs, data, "query-omni", zero, 0)
    m3, s3 = _query_run(runs, data, "query-omni-3shot", three, 3)
    rows = load_rows()
    rows["table4"], rows["table6"] = {}, {}
    report = build_report(runs, tmp_path / "out", data, rows=rows, boot=BootstrapSettings(n_boot=100, seed=0))
    got = {r["key"]: r for r in report["table3"]}
    r0, r3 = got["omni_querying_zero_shot"], got["omni_querying_3shot"]
    assert r0["status"] == r3["status"] == "ok" and r0["paper"] is None
    assert got["videollava_querying"]["status"] == "not run"  # chat model and shots tell the rows apart
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row, metrics in ((r0, m0), (r3, m3)):
            pred = np.loadtxt(tmp_path / "runs" / row["setting"] / "predictions_dev.csv", delimiter=",",
                              skiprows=1, usecols=range(1, len(EMOTIONS) + 1))
            direct = mean_over_defined(pearson_per_emotion(pred, dev.labels))[0]
            assert row["mean_pearson"] == pytest.approx(direct, abs=1e-9) == metrics["mean_pearson"]
    assert r3["mean_pearson"] > 0.5 > r0["mean_pearson"]
    q0, q3 = r0["query"], r3["query"]
    assert (q0["shots"], q3["shots"], q0["chat_model"], q0["omni_input"]) == (0, 3, "omni", "av")
    assert (q0["answers"], q0["with_all_scores"], q0["with_no_score"], q3["with_all_scores"]) == (n, 75, 5, n)
    top = q0["most_degenerate"]
    assert top["most_frequent"] == pytest.approx(0.4) and top["share_of_answers"] == pytest.approx(60 / n)
    assert q0["per_emotion"]["Fear"] == {"most_frequent": s0["per_emotion"]["Fear"]["most_frequent"],
                                         "share_of_answers": s0["per_emotion"]["Fear"]["share_of_answers"]}
    assert q3["most_degenerate"]["share_of_answers"] < 0.2
    pair = next(p for p in report["paired"] if (p["a"], p["b"]) == ("omni_querying_3shot", "omni_querying_zero_shot"))
    assert pair["status"] == "ok" and pair["diff"] == pytest.approx(r3["mean_pearson"] - r0["mean_pearson"], abs=0.05)
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"| {r0['label']} | 0 | {n} | 75 | 0 | 5 | 0 | {top['emotion']}: 0.4 in 75.0 % |" in md
    assert f"| {r3['label']} | 3 | {n} | {n} | 0 | 0 | 0 |" in md
