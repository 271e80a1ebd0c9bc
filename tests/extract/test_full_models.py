"""Model choice for config `full`: real ids and folders resolved and checked up front, clean CLI errors,
what goes into the cache key, the WavLM receptive-field limit, and the offline switch of `--models tiny`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from extract.cli import MODEL_FLAGS, main
from extract.configs import ModelOptions
from extract.extractors.base import Media
from extract.extractors.model_choice import ModelRequest, ModelUnavailable, resolve_models, resolve_real
from extract.extractors.model_pool import ModelPool
from extract.extractors.vit import VitExtractor
from extract.extractors.wavlm import WavlmExtractor, min_window_samples
from extract.media import probe
from tests.extract.media_factory import write_video
from tfds_hume.records import ClipRecord

MEDIA = Path(__file__).resolve().parents[1] / "data" / "media"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def one_clip(tmp_path):
    root = tmp_path / "one"
    (root / "media").mkdir(parents=True)
    (root / "media" / "single_face.mp4").symlink_to(MEDIA / "single_face.mp4")
    (root / "labels.csv").write_text("id,split,Joy\nsingle_face,train,0.5\n")
    return root


def test_cli_model_flags_are_the_registrys():
    from extract.configs import MODEL_EXTRACTORS, kinds_needed
    from extract.models.registry import KINDS

    assert {k: KINDS[k].cli_flag for k in MODEL_FLAGS} == MODEL_FLAGS
    assert kinds_needed(list(MODEL_EXTRACTORS)) == set(MODEL_FLAGS)  # every model config full loads has a flag


def test_help_imports_neither_torch_nor_transformers():
    code = ("import sys, extract.cli; "
            "print(sorted(m for m in ('torch', 'transformers', 'huggingface_hub') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # so `--models tiny` can switch the hub off before anything reads the setting


def test_unavailable_model_is_a_clean_error_before_any_work(one_clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "cache"
    code = main(["--data-root", str(one_clip), "--cache-dir", str(cache), "--config", "full", "--extractors",
                 "pixels,vit", "--vit-model", "no-such-org/no-such-vit", "--no-progress", "--no-build"])
    err = capsys.readouterr().err
    assert code == 2 and "'no-such-org/no-such-vit' is not available" in err and "--vit-model" in err
    assert "Traceback" not in err
    assert not (cache / "features").exists()  # nothing was extracted, not even the model-free pixels


def test_wrong_kind_of_folder_and_tiny_with_ids(one_clip, tmp_path, tiny_models, capsys):
    base = ["--data-root", str(one_clip), "--cache-dir", str(tmp_path / "c"), "--config", "full", "--no-build",
            "--no-progress"]
    assert main(base + ["--extractors", "vit", "--vit-model", str(tiny_models / "wavlm")]) == 2
    assert "holds a 'wavlm' model but --vit-model needs a 'vit' one" in capsys.readouterr().err
    assert main(base + ["--extractors", "vit", "--vit-model", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(base + ["--models", "tiny", "--vit-model", "x/y"]) == 2
    assert "error: --vit-model name real models: use them with --models real" in capsys.readouterr().err
    assert main(base + ["--models", "tiny", "--extractors", "vit,bogus"]) == 2
    assert "--extractors bogus: not in config 'full'" in capsys.readouterr().err
    assert main(base + ["--shard", "1of2"]) == 2
    assert "expected i/N" in capsys.readouterr().err


def test_local_folder_as_a_real_model_keys_the_cache_on_its_content(tiny_models, tmp_path):
    folder = shutil.copytree(tiny_models / "vit", tmp_path / "my-vit")
    c = resolve_real("vit", str(folder))
    assert c.model_id == str(folder.resolve()) and c.revision.startswith("local:") and c.dims == {"hidden": 32}
    assert c.random_weights  # the folder carries the RANDOM_WEIGHTS marker, whatever --models says
    ex = VitExtractor(ModelPool({"vit": c}, "cpu"))
    before = ex.settings()
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    after = VitExtractor(ModelPool({"vit": resolve_real("vit", str(folder))}, "cpu")).settings()
    assert before["models"]["vit"]["revision"] != after["models"]["vit"]["revision"]
    assert before["dtype"] == "float32" and before["models"]["vit"]["model_id"] == str(folder.resolve())


def test_hub_id_from_the_local_cache_records_its_commit(tiny_models, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--some-org--tiny-vit"
    snapshot = shutil.copytree(tiny_models / "vit", repo / "snapshots" / commit)
    (snapshot / "RANDOM_WEIGHTS").unlink()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    c = resolve_real("vit", "some-org/tiny-vit")
    assert (c.model_id, c.revision, c.random_weights) == ("some-org/tiny-vit", commit, False)
    model, _ = ModelPool({"vit": c}, "cpu").get("vit")
    assert model.config.hidden_size == 32
    (snapshot / "model.safetensors").unlink()  # a half-downloaded model: config there, weights not
    with pytest.raises(ModelUnavailable, match="its weights are not.*--vit-model PATH"):
        resolve_real("vit", "some-org/tiny-vit")


def test_tiny_request_marks_random_weights_and_goes_offline(tiny_cache, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    choices = resolve_models({"vit", "roberta"}, ModelRequest(mode="tiny"), tiny_cache(tmp_path / "c"))
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert {k: (c.model_id, c.random_weights) for k, c in choices.items()} == {
        "vit": ("tiny:vit", True), "roberta": ("tiny:roberta", True)}
    assert "tiny-models" not in json.dumps([c.settings() for c in choices.values()])  # no path in the cache key


def test_model_options_validation():
    assert ModelOptions().max_new_tokens == 128
    assert ModelOptions(request=ModelRequest(mode="tiny")).max_new_tokens == 16
    with pytest.raises(ValueError, match="unknown batch size keys"):
        ModelOptions(batch={"gpu": 3})
    with pytest.raises(ValueError, match="at least 1"):
        ModelOptions(batch={"vit": 0})
    with pytest.raises(ValueError, match="--models must be one of"):
        ModelRequest(mode="huge")


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # inside transformers' WavLM
def test_wavlm_window_limit_is_the_models_receptive_field(tiny_models):
    """`min_window_samples` is exact: one sample less and the x-vector's std pooling has a single frame."""
    from transformers import WavLMConfig

    from extract.models import load_model, wavlm_xvector

    assert min_window_samples(WavLMConfig()) == 5200  # wavlm-base(-plus-sv): 0.325 s at 16 kHz
    model, proc = load_model("wavlm", tiny_models / "wavlm")
    n = min_window_samples(model.config)
    x = np.random.default_rng(0).standard_normal((2, n)).astype(np.float32)
    assert np.isfinite(wavlm_xvector(model, proc, x)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the degenerate std
        assert not np.isfinite(wavlm_xvector(model, proc, x[:, :-1])).all()


def test_wavlm_extractor_reads_its_rules_from_the_resolved_config(tiny_models, tmp_path):
    """The generic resolver keeps the config; the WavLM extractor derives its width and shortest window."""
    choice = resolve_real("wavlm", str(tiny_models / "wavlm"))
    assert choice.dims == {"hidden": choice.config.hidden_size}  # nothing WavLM-specific in the resolver
    ex = WavlmExtractor(ModelPool({"wavlm": choice}, "cpu"))
    assert ex.specs()["wavlm"].dim == choice.config.xvector_output_dim
    # A 0.2 s clip tiled by 32 half-overlapping windows: about 194 samples each, shorter than the
    # model's receptive field, so every window is widened to it.
    need = min_window_samples(choice.config)
    assert need > 0.2 * 16000 / 16.5
    video = write_video(tmp_path / "short.mp4", num_frames=2, fps=10, audio_seconds=0.2)
    clip = ClipRecord(id="short", split="train", labels=np.zeros(1, np.float32), video=video)
    w = ex.prepare(clip, Media(probe=probe))
    assert w.windows.shape == (32, need)
