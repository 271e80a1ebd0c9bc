"""Config `full` with the miniature models on the four real test videos, two broken files and two made-up
clips without usable audio, end to end: `python -m extract --data-root D --config full --models tiny` on a
generic-CSV dataset."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from extract.cli import main
from extract.extractors.vit import DETECTOR
from extract.faces import FaceDetector, crop_faces
from extract.media import audio_windows, load_audio, probe, sample_frames
from tests.extract.media_factory import write_video
from tfds_hume.manifest import Manifest, load_value

pytestmark = pytest.mark.slow  # whole extraction runs (about a minute on 2 cores)

MEDIA = Path(__file__).resolve().parents[1] / "data" / "media"
REAL = {"single_face": "single_face.mp4", "WolfgangLanger_Pexels": "WolfgangLanger_Pexels.mp4",
        "no_face": "no_face.mp4", "face_noface": "face_noface.mov"}
MODEL_KEYS = {"vit", "face_found", "wavlm", "clip_text", "clip_template", "llava_text", "llava_text_emb",
              "query_answer"} | {f"vllava_{k}_p{i}" for k in ("text", "emb", "text_emb") for i in (1, 2)}
NO_AUDIO = {"silent"}
SHORT = "blip"  # 0.15 s: its audio windows are shorter than the model needs, so they are widened
T = 16  # frames per clip: fewer than the default 32 keeps this test quick; the synthetic tests use 32


def extract_real_media(tmp: Path, tiny_cache) -> None:
    root = tmp / "mydata"
    media = root / "media"
    media.mkdir(parents=True)
    for cid, name in REAL.items():
        (media / f"{cid}{Path(name).suffix}").symlink_to(MEDIA / name)
    (media / "empty.mp4").write_bytes(b"")
    (media / "truncated.mp4").write_bytes((MEDIA / "single_face.mp4").read_bytes()[:60000])
    write_video(media / "silent.mp4", num_frames=20, fps=10, size=(64, 64))  # no audio track at all
    # 0.15 s of video and audio: 16 windows of 18 ms (282 samples), under the tiny WavLM's receptive field
    # (340 samples): the windows are widened around their centres.
    write_video(media / "blip.mp4", num_frames=3, fps=20, size=(64, 64), audio_seconds=0.15)
    rows = ["single_face,train,0.1,0.2", "WolfgangLanger_Pexels,train,0.5,0.1", "no_face,dev,0.3,0.3",
            "face_noface,dev,0.7,0.0", "empty,train,0.2,0.2", "truncated,test,,", "silent,train,0.4,0.6",
            "blip,dev,0.9,0.1"]
    (root / "labels.csv").write_text("id,split,Joy,Fear\n" + "\n".join(rows) + "\n")
    cache = tiny_cache(tmp / "cache")
    argv = ["--data-root", str(root), "--cache-dir", str(cache), "--data-dir", str(tmp / "tfds"), "--config", "full",
            "--models", "tiny", "--max-new-tokens", "4", "--num-frames", str(T), "--no-progress"]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def run(run_once, tiny_cache):
    tmp = run_once("full-real-media", lambda folder: extract_real_media(folder, tiny_cache))
    export = tmp / "cache" / "exports" / "mydata-full"
    return SimpleNamespace(root=tmp / "mydata", cache=tmp / "cache", tfds=tmp / "tfds", export=export,
                           manifest=Manifest.read(export),
                           summary=json.loads((export / "summary.json").read_text()))


def value(run, cid, key):
    clip = next(c for c in run.manifest.clips if c.id == cid)
    return load_value(run.export / clip.files[key], run.manifest.features[key])


def test_every_feature_present_with_the_right_shapes(run, tiny_models):
    m = run.manifest
    assert set(m.features) == MODEL_KEYS | {"pixels"}  # the generic layout ships no CSV features
    assert {c.id for c in m.clips} == set(REAL) | NO_AUDIO | {SHORT}
    dims = {"vit": 32, "face_found": 1, "wavlm": 24, "clip_text": 32, "llava_text_emb": 32,
            "vllava_emb_p1": 64, "vllava_emb_p2": 64, "vllava_text_emb_p1": 32, "vllava_text_emb_p2": 32}
    for key, spec in m.features.items():
        assert spec.dim == dims.get(key, spec.dim) and spec.num_frames in (None, T), key
    kinds = {k: s.kind for k, s in m.features.items()}
    assert kinds["clip_template"] == kinds["llava_text"] == "frame_text"
    assert kinds["query_answer"] == kinds["vllava_text_p1"] == "text" and kinds["vllava_emb_p2"] == "video"
    from extract.models import template_texts

    for clip in m.clips:
        assert set(clip.files) == set(m.features) - ({"wavlm"} if clip.id in NO_AUDIO else set()), clip.id
        for key in clip.files:
            spec = m.features[key]
            v, _ = load_value(run.export / clip.files[key], spec)
            if spec.kind in ("frame", "video"):
                assert v.dtype == np.float32 and np.isfinite(v).all()
        templates, _ = value(run, clip.id, "clip_template")
        assert set(templates.tolist()) <= set(template_texts())
    # Video-LLaVA's two prompts give two different pooled states; ViT rows differ across clips.
    assert not np.allclose(value(run, "single_face", "vllava_emb_p1")[0], value(run, "single_face", "vllava_emb_p2")[0])
    assert not np.allclose(value(run, "single_face", "vit")[0], value(run, "no_face", "vit")[0])


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # inside transformers' WavLM
def test_audio_windows_masked_where_the_audio_is_absent(run, tiny_models):
    from extract.models import load_model, wavlm_xvector

    v, mask = value(run, "face_noface", "wavlm")  # its audio lasts 3.97 s of the 6.4 s video
    path = MEDIA / REAL["face_noface"]
    track = load_audio(path)
    want = audio_windows(track.wave, track.sr, T, 0.5, duration=probe(path).duration, start=track.start)
    assert mask is not None and np.array_equal(mask, want.mask) and 0 < mask.sum() < T
    assert np.all(v[~mask] == 0) and np.all(np.abs(v[mask]).sum(axis=1) > 0)
    model, proc = load_model("wavlm", tiny_models / "wavlm")
    assert np.allclose(v[mask], wavlm_xvector(model, proc, want.windows[want.mask]), atol=1e-5)
    _, full = value(run, "single_face", "wavlm")
    assert full.all()


def test_short_clip_windows_are_widened_to_the_models_minimum(run, tiny_models):
    from extract.models import load_model, wavlm_xvector

    v, mask = value(run, SHORT, "wavlm")
    path = run.root / "media" / f"{SHORT}.mp4"
    track, dur = load_audio(path), probe(path).duration
    plain = audio_windows(track.wave, track.sr, T, 0.5, duration=dur, start=track.start)
    wide = audio_windows(track.wave, track.sr, T, 0.5, duration=dur, start=track.start, min_samples=340)
    assert plain.windows.shape[1] < 340 == wide.windows.shape[1]
    # same centres as the plain tiling
    np.testing.assert_allclose(wide.starts + wide.length / 2, plain.starts + plain.length / 2, atol=1e-9)
    assert mask is not None and np.array_equal(mask, wide.mask) and mask.any()
    model, proc = load_model("wavlm", tiny_models / "wavlm")
    assert np.allclose(v[mask], wavlm_xvector(model, proc, wide.windows[wide.mask]), atol=1e-5)


def test_no_audio_is_missing_never_zeros(run):
    missing = {c.id: c for c in run.manifest.clips if "wavlm" not in c.files}
    assert set(missing) == NO_AUDIO
    folder = Path(run.summary["extractors"]["wavlm"]["folder"])
    silent = json.loads((folder / "silent.missing.json").read_text())["reason"]
    assert "no audio track" in silent and "silent.mp4" in silent
    ds = tfds.data_source("hume_reaction/full", data_dir=str(run.tfds))
    ex = next(ds["train"][i] for i in range(len(ds["train"])) if ds["train"][i]["id"] == b"silent")
    assert ex["missing"]["wavlm"] and not ex["frame_mask"]["wavlm"].any() and not ex["missing"]["vit"]


def test_no_face_video_falls_back_to_the_whole_frame(run, tiny_models):
    from extract.models import load_model, vit_cls

    found, _ = value(run, "no_face", "face_found")
    assert found.shape == (T, 1) and set(np.unique(found)) <= {0.0, 1.0}
    assert found.sum() <= 2  # the Haar cascade's rare false positive (1 in 10 frames checked, see DESIGN)
    assert value(run, "single_face", "face_found")[0].sum() >= T - 2
    # A frame without a face is the whole frame, resized: recompute those rows from scratch.
    frames = sample_frames(MEDIA / REAL["no_face"], T).frames
    crops = crop_faces(frames, FaceDetector(**DETECTOR))
    assert np.array_equal(crops.found, found[:, 0] > 0)
    rows = ~crops.found
    whole = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in frames[rows]])
    assert np.array_equal(crops.crops[rows], whole)
    model, proc = load_model("vit", tiny_models / "vit")
    vit, mask = value(run, "no_face", "vit")
    assert mask is None  # every row is a real embedding (face crop or whole frame)
    assert np.allclose(vit[rows], vit_cls(model, proc, whole), atol=1e-5)
    notes = [n["note"] for n in run.summary["extractors"]["vit"]["notes"] if n["id"] == "no_face"]
    assert notes and "no face found" in notes[0]


def test_random_weights_flag_everywhere(run):
    m = run.manifest
    assert m.random_weights
    assert all(m.features[k].random_weights for k in MODEL_KEYS - {"face_found"})
    assert not m.features["pixels"].random_weights and not m.features["face_found"].random_weights
    assert m.features["vit"].model_id == "tiny:vit" and m.features["clip_text"].params["models"]["roberta"][
        "random_weights"]
    assert run.summary["random_weights"] is True
    assert {k: v["random_weights"] for k, v in run.summary["models"].items()} == {
        k: True for k in ("clip", "llava", "roberta", "vit", "vllava", "wavlm")}
    info = tfds.builder_from_directory(str(run.tfds / "hume_reaction" / "full" / "1.0.0")).info
    assert info.metadata["random_weights"] is True
    assert info.metadata["features"]["query_answer"]["params"]["prompt"].endswith("emphatic pain, fear and surprise?")


def test_broken_files_are_reported_and_the_run_goes_on(run):
    s = run.summary
    assert s["clips"]["exported"] == 6 and s["clips"]["failed"] == 2 and set(s["failed"]) == {"empty", "truncated"}
    assert "empty file (0 bytes)" in s["failed"]["empty"][0]
    assert "truncated" in s["failed"]["truncated"][0] or "cannot open" in s["failed"]["truncated"][0]
    for name, ex in s["extractors"].items():
        assert ex["done"] == 6 and ex["failed"] == 2, name
        assert ex["missing"] == (len(NO_AUDIO) if name == "wavlm" else 0), name
        lines = [json.loads(x) for x in (Path(ex["folder"]) / "failures.jsonl").read_text().splitlines()]
        assert {x["id"] for x in lines} == {"empty", "truncated"}
        assert all(x["file"].endswith((".mp4",)) and x["reason"] for x in lines)


def test_tfds_full_holds_the_text_features(run):
    ds = tfds.data_source("hume_reaction/full", data_dir=str(run.tfds))
    ex = next(ds["dev"][i] for i in range(len(ds["dev"])) if ds["dev"][i]["id"] == b"no_face")
    for key in ("query_answer", "vllava_text_p1", "llava_text", "clip_template"):
        want, _ = value(run, "no_face", key)
        got = ex["features"][key]
        if want.ndim == 0:
            assert got.decode() == str(want)
        else:
            assert [g.decode() for g in got] == want.tolist()
        assert not ex["missing"][key]
    assert ex["frame_mask"]["llava_text"].all() and ex["features"]["vit"].shape == (T, 32)
    v, mask = value(run, "face_noface", "wavlm")
    ex = next(ds["dev"][i] for i in range(len(ds["dev"])) if ds["dev"][i]["id"] == b"face_noface")
    assert np.array_equal(ex["frame_mask"]["wavlm"], mask) and np.array_equal(ex["features"]["wavlm"], v)
