"""`python -m eri_jax.query --run --chat-model omni` with the miniature Qwen2.5-Omni thinker on the synthetic
demo set (2 clips per split): it hears each clip by default, few-shot turns hold train clips with their audio,
answers are parsed and cached, and a clip without audio is reported, never asked without it."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach for a hub

import pytest

from eri_jax.query.compare import main as compare_main
from tests.eri_jax import test_query_run as query_run
from tfds_hume.records import HUME_EMOTIONS

DATASET = "hume_reaction/demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return query_run.build_demo(tmp_path_factory, "qomni")


@pytest.fixture
def seen(monkeypatch):
    """What the thinker is given: per batch the variant, the chat text of each row and the clips per row."""
    from extract.models.omni_chat import OmniChatProcessor

    calls = []
    original = OmniChatProcessor.text_inputs

    def spy(self, media_inputs, prompts):
        out = original(self, media_inputs, prompts)
        calls.append({"variant": self.variant, "texts": [self.format(p) for p in prompts],
                      "audios": len(media_inputs.get("input_features", [])),
                      "videos": len(media_inputs.get("video_grid_thw", [])), "rows": len(prompts),
                      "use_audio_in_video": out.get("use_audio_in_video", False)})
        return out

    monkeypatch.setattr(OmniChatProcessor, "text_inputs", spy)
    return calls


def _query(demo, *extra):
    return query_run._query(demo, "--chat-model", "omni", *extra)


def _meta(demo, run):
    return json.loads((demo["runs"] / run / "query_stats_dev.json").read_text())["meta"]


def test_zero_shot_omni_hears_each_clip_and_caches_its_answers(demo, seen):
    assert _query(demo) == 0
    meta = _meta(demo, "query-omni")
    assert meta["chat_model"] == "omni" and meta["model_id"] == "tiny:omni" and meta["random_weights"] is True
    assert meta["omni_input"] == "av" and meta["n_shots"] == 0 and meta["answered_now"] == 2
    assert os.path.basename(meta["cache_folder"]).startswith("omni_query-")
    assert meta["prompt"].startswith("Can you assign a score between 0 and 1")
    # Each dev clip went in with its frames and its audio track, interleaved (use_audio_in_video).
    assert seen and all(c["variant"] == "av" and c["use_audio_in_video"] for c in seen)
    assert sum(c["rows"] for c in seen) == 2 and all(c["audios"] == c["videos"] == c["rows"] for c in seen)
    assert all(t.count("<|im_start|>user") == 1 and "<|audio_bos|>" not in t for c in seen for t in c["texts"])
    stats = json.loads((demo["runs"] / "query-omni" / "query_stats_dev.json").read_text())
    assert stats["answers"] == 2 and stats["no_answer"] == 0  # gibberish from random weights: parsed as missing
    md = (demo["runs"] / "query-omni" / "query_stats_dev.md").read_text()
    assert "given frames + audio" in md
    seen.clear()
    assert _query(demo) == 0 and not seen  # rerun: every answer from the cache, the model never asked
    assert (_meta(demo, "query-omni")["answers_cached"], _meta(demo, "query-omni")["answered_now"]) == (2, 0)


def test_few_shot_omni_shows_train_clips_with_their_audio_and_scores(demo, seen):
    from eri_jax.inputs.dataset import load_split
    from eri_jax.query.shots import choose_shots, shot_answer

    assert _query(demo, "--shots", "2", "--shot-seed", "3") == 0
    meta = _meta(demo, "query-omni-2shot")
    train = load_split("train", [], DATASET, demo["data"])
    dev = [str(i) for i in load_split("dev", [], DATASET, demo["data"]).ids]
    picks = choose_shots(train.labels, 2, 3)
    assert meta["shots"]["ids"] == [str(train.ids[i]) for i in picks] and not set(meta["shots"]["ids"]) & set(dev)
    answers = [shot_answer(train.labels[i], HUME_EMOTIONS) for i in picks]
    assert meta["shots"]["answers"] == answers and meta["n_shots"] == 2
    assert meta["cache_folder"] != _meta(demo, "query-omni")["cache_folder"] and meta["answered_now"] == 2
    # Every row: two example turns answered with the examples' labels, then the asked clip; 3 clips each heard.
    assert seen and sum(c["rows"] for c in seen) == 2
    for call in seen:
        assert call["audios"] == call["videos"] == 3 * call["rows"]
        for text in call["texts"]:
            assert text.count("<|im_start|>user") == 3 and text.count("<|im_start|>assistant") == 3
            assert text.index(answers[0]) < text.index(answers[1]) < text.rindex("<|im_start|>user")
    # Side by side with zero-shot (cached when the zero-shot test ran first).
    assert _query(demo) == 0
    out = demo["runs"] / "compare.md"
    assert compare_main([str(demo["runs"] / "query-omni"), str(demo["runs"] / "query-omni-2shot"),
                         "--out", str(out)]) == 0
    text = out.read_text()
    assert "| query-omni | omni (av) | 0 |" in text and "| query-omni-2shot | omni (av) | 2 |" in text


def test_frames_only_is_its_own_run_and_cache(demo, seen):
    assert _query(demo, "--omni-input", "v") == 0
    meta = _meta(demo, "query-omni-v")
    assert meta["omni_input"] == "v" and meta["cache_folder"] != _meta(demo, "query-omni")["cache_folder"]
    assert all(c["variant"] == "v" and c["audios"] == 0 and not c["use_audio_in_video"] for c in seen)


def test_a_clip_without_audio_gets_no_answer_and_the_run_goes_on(demo, monkeypatch):
    import extract.extractors.omni as omni_extractor
    from eri_jax.inputs.dataset import load_split
    from extract.errors import NoAudioError

    silent = str(load_split("dev", [], DATASET, demo["data"]).ids[0])
    real = omni_extractor.load_audio

    def load_audio(path, rate):
        if silent in os.path.basename(str(path)):
            raise NoAudioError(path, "no audio stream")
        return real(path, rate)

    monkeypatch.setattr(omni_extractor, "load_audio", load_audio)
    assert _query(demo, "--omni-input", "a", "--max-new-tokens", "3") == 0
    stats = json.loads((demo["runs"] / "query-omni-a" / "query_stats_dev.json").read_text())
    assert stats["no_answer"] == 1 and stats["answers"] == 2
    assert "no audio for the model to hear" in stats["no_answer_reasons"][silent]


@pytest.mark.parametrize("extra, message", [
    (("--omni-input", "a", "--chat-model", "qwen2vl"), "--omni-input applies to --chat-model omni only"),
    (("--shots", "3"), "only 2 fully labelled"),
])
def test_bad_omni_options_are_usage_errors(demo, capsys, extra, message):
    assert query_run._query(demo, "--chat-model", "omni", *extra) == 2
    assert message in capsys.readouterr().err
