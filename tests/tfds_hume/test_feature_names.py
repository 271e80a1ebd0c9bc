"""The one alias table: shipped folder names and typed names meet at one dataset key, used by eri_jax too."""
import pytest

from eri_jax.inputs import assembly as feats
from tfds_hume.feature_names import MODALITY_KEYS, feature_key, find_key
from tfds_hume.manifest import FeatureSpec


@pytest.mark.parametrize("name,key", [
    ("FAUs", "fau"), ("FAU", "fau"), ("faus", "fau"), ("AUs", "fau"), ("py-feat", "fau"), (" fau ", "fau"),
    ("VGGFace2", "vggface2"), ("DeepSpectrum", "deepspectrum"), ("DS", "deepspectrum"), ("eGeMAPS", "egemaps"),
    ("pixels", "pixels"), ("vllava_text_emb_p1", "vllava_text_emb_p1"),
    ("early-fusion-VGGFace2+DeepSpectrum", "early_fusion_vggface2_deepspectrum"),
])
def test_feature_key(name, key):
    assert feature_key(name) == key


def test_find_key_accepts_older_keys():
    assert find_key("fau", ["pixels", "fau"]) == "fau"
    assert find_key("fau", ["pixels", "faus"]) == "faus"
    assert find_key("FAUs", ["fau"]) == "fau"
    assert find_key("fau", ["pixels", "vggface2"]) is None


def test_letters_and_feature_names_resolve_through_the_table():
    assert feats.MODALITY_FEATURES == MODALITY_KEYS and MODALITY_KEYS["F"] == "fau"
    assert feats.modality_features("VATF") == ["vit", "wavlm", "clip_text", "fau"]
    assert feats.resolve_features(features=["FAUs", "VGGFace2"]) == ["fau", "vggface2"]
    with pytest.raises(ValueError, match="repeated"):
        feats.resolve_features(features=["fau", "FAUs"])  # the same feature twice


def test_a_dataset_built_with_an_older_key_says_how_to_fix_it():
    spec = FeatureSpec(kind="frame", dim=20, num_frames=4, source="shipped:FAUs")
    feats.check_numeric(["fau"], {"fau": spec}, "hume_reaction/shipped")
    with pytest.raises(ValueError, match=r"no feature 'fau'; its 'faus' is 'fau' under an older key: "
                                         r"rebuild it with `python -m extract`"):
        feats.check_numeric(["fau"], {"faus": spec, "pixels": spec}, "hume_reaction/shipped")


def test_sweep_feature_sets_and_modality_maps_resolve_aliases():
    from eri_jax.sweep import grid

    assert grid.feature_inputs("pixels+FAUs").features == ("pixels", "fau")
    assert grid.parse_modality_map("V=pixels,F=FAUs") == {"V": "pixels", "F": "fau"}
