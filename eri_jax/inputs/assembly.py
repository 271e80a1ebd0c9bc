"""Feature selection: which dataset features a model reads, and how they become one model input.

ViPER modalities are letters; each maps to a dataset feature key (the keys `python -m extract` writes)
through the one alias table, `tfds_hume.feature_names`:

| letter | modality | dataset feature key                                         | kind  | paper dim |
|--------|----------|-------------------------------------------------------------|-------|-----------|
| V      | visual   | `vit` (ViT CLS on face crops)                               | frame | 768       |
| A      | audio    | `wavlm` (WavLM x-vector per window)                         | frame | 512       |
| T      | text     | depends on `--text-source`, below                           |       | 768       |
| F      | FAU      | `fau` (action units; shipped as `feats/FAUs/`, `FAU/`, ...) | frame | 27        |

| `--text-source` | dataset feature key    | kind  | what it is                                            |
|-----------------|------------------------|-------|-------------------------------------------------------|
| `clip`          | `clip_text`            | frame | RoBERTa of the best-matching CLIP emotion template    |
| `vllava_p1`     | `vllava_text_emb_p1`   | video | RoBERTa of the Video-LLaVA description, prompt 1      |
| `vllava_p2`     | `vllava_text_emb_p2`   | video | RoBERTa of the Video-LLaVA description, prompt 2      |
| `llava_frames`  | `llava_text_emb`       | frame | RoBERTa of each frame's LLaVA description             |
| `omni_<v>_p<i>` | `omni_<v>_text_emb_p<i>` | video | RoBERTa of the Qwen2.5-Omni description; <v> v, a, av |

Tokens are built in the paper's order V, A, T, F whatever order the letters are given in.
`--features k1,k2` picks dataset keys directly instead (e.g. `pixels,fau` on the demo dataset); a
shipped folder name or alias works too (`FAUs` -> `fau`, `DS` -> `deepspectrum`), so runs record
the dataset key and train, sweep, reproduce and the report rows agree on one name.

How selected features become one input (`assemble`):
- token models (ViPER, LSTM): frame features [N,T,D_i] are concatenated along D; a video feature
  [N,D] is replicated on every token. A token is valid only where every frame feature is valid there
  (a token with a missing part is masked out, never zero-filled). Only video features: one token.
- vector models (the probe): video features are used as they are; a frame feature is mean-pooled over
  its valid frames (this is how the probe trains on the demo dataset, which has no video feature).
- ViPER runs chosen by `--modalities` use ViPER's token layout: the F block is zero-padded to 32 columns
  (py-feat's 27 + 5, so VATF is 2080 wide), as ViPER's code pads it (inputs/token_layout.py).
- A clip missing any selected feature, or left with no valid token, is dropped from that split with a
  warning naming how many and which (so predictions files list only clips the model could see).
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Sequence

import numpy as np

from eri_jax.inputs.token_layout import block_padding
from tfds_hume.feature_names import MODALITY_KEYS, feature_key, find_key
from tfds_hume.manifest import FeatureSpec

MODALITY_FEATURES = MODALITY_KEYS
TEXT_SOURCES = {
    "clip": "clip_text",
    "vllava_p1": "vllava_text_emb_p1",
    "vllava_p2": "vllava_text_emb_p2",
    "llava_frames": "llava_text_emb",
    "omni_v_p1": "omni_v_text_emb_p1",
    "omni_v_p2": "omni_v_text_emb_p2",
    "omni_a_p1": "omni_a_text_emb_p1",
    "omni_a_p2": "omni_a_text_emb_p2",
    "omni_av_p1": "omni_av_text_emb_p1",
    "omni_av_p2": "omni_av_text_emb_p2",
}
MODALITY_ORDER = "VATF"
INPUT_KEY = "inputs"  # the single key of an assembled SplitData
TOKEN_MODELS = ("viper", "lstm")
VECTOR_MODELS = ("probe",)


def modality_features(modalities: str, text_source: str = "clip") -> list[str]:
    """Dataset feature keys for ViPER modality letters (subset of VATF), in V, A, T, F order."""
    letters = modalities.upper()
    bad = sorted(set(letters) - set(MODALITY_ORDER))
    if not letters or bad:
        raise ValueError(f"modalities {modalities!r}: use a non-empty subset of the letters "
                         f"{MODALITY_ORDER} (V=visual, A=audio, T=text, F=FAU)")
    if len(set(letters)) != len(letters):
        raise ValueError(f"modalities {modalities!r}: a letter is repeated")
    if text_source not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {text_source!r}; choose one of {', '.join(TEXT_SOURCES)}")
    keys = []
    for letter in MODALITY_ORDER:
        if letter in letters:
            keys.append(TEXT_SOURCES[text_source] if letter == "T" else MODALITY_FEATURES[letter])
    return keys


def resolve_features(*, features: Sequence[str] | None = None, modalities: str | None = None,
                     text_source: str = "clip") -> list[str]:
    """The dataset keys to load: `features` (aliases resolved: `FAUs` -> `fau`), else the keys of `modalities`."""
    if features:
        keys = [feature_key(k) for k in features if k.strip()]
        if len(set(keys)) != len(keys):
            raise ValueError(f"features {','.join(keys)}: a key is repeated")
        if keys:
            return keys
    if modalities:
        return modality_features(modalities, text_source)
    raise ValueError("no features selected: pass --features k1,k2 or (ViPER) --modalities")


# What stands in for a missing feature in the closest working --features (the demo set's pixels for ViT).
STAND_INS = {"vit": "pixels"}


def check_numeric(keys: Sequence[str], specs: dict[str, FeatureSpec], dataset: str, *, flag: str = "--features",
                  sep: str = ",") -> None:
    """Every key must be a numeric (frame or video) feature of the dataset; ValueError listing every one that
    is not (all at once) with the closest `flag` value that works (keys joined by `sep`)."""
    numeric = [k for k, s in specs.items() if s.kind in ("frame", "video")]
    absent = [k for k in keys if k not in specs]
    not_numeric = [k for k in keys if k in specs and k not in numeric]
    if not absent and not not_numeric:
        return
    closest = list(dict.fromkeys(k if k in numeric else STAND_INS.get(k) for k in keys))
    closest = [k for k in closest if k in numeric] or numeric
    problems = ([f"has no feature{'s' * (len(absent) > 1)} {', '.join(map(repr, absent))}"] if absent else []) + (
        [f"{k!r} is {specs[k].kind}, not numeric" for k in not_numeric])
    older = {k: find_key(k, specs) for k in absent}  # e.g. `faus`, from a build before the alias table
    problems += [f"its {o!r} is {k!r} under an older key: rebuild it with `python -m extract`"
                 for k, o in older.items() if o]
    raise ValueError(f"dataset {dataset}: {'; '.join(problems)}. Its numeric features: {', '.join(numeric)}. "
                     f"Closest that works: {flag} {sep.join(closest)}")


def input_dim(keys: Sequence[str], specs: dict[str, FeatureSpec],
              block_widths: dict[str, int] | None = None) -> int:
    """Width of the assembled input: the selected features' dims, each block padded to `block_widths`
    (ViPER's token layout, inputs/token_layout.py)."""
    pads = block_padding(keys, {k: specs[k].dim for k in keys}, block_widths)
    return int(sum(specs[k].dim + pads.get(k, 0) for k in keys))


def assemble(data: Any, keys: Sequence[str], specs: dict[str, FeatureSpec], model: str,
             block_widths: dict[str, int] | None = None):
    """Turn a loaded `SplitData` into a `SplitData` with the single feature `INPUT_KEY` (module docstring).

    Token models get float32 [N,T,D] with a frame mask [N,T]; the probe gets float32 [N,D].
    `block_widths` ({key: width}): blocks narrower than that get zero columns appended (ViPER's token
    layout: FAU 27 -> 32, see inputs/token_layout.py).
    """
    from eri_jax.inputs.dataset import SplitData  # the data module imports jax; keep this module light

    if model not in TOKEN_MODELS + VECTOR_MODELS:
        raise ValueError(f"unknown model {model!r}")
    n = len(data.ids)
    frame_keys = [k for k in keys if specs[k].kind == "frame"]
    missing = np.zeros(n, bool)
    for k in keys:
        missing |= np.asarray(data.missing[k], bool)
    masks = {k: np.asarray(data.frame_masks[k], bool) for k in frame_keys}
    pads = block_padding(keys, {k: specs[k].dim for k in keys}, block_widths)
    if model in TOKEN_MODELS:
        lengths = {k: data.features[k].shape[1] for k in frame_keys}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"frame features have different frame counts {lengths}; "
                             "they cannot be concatenated into tokens")
        t = next(iter(lengths.values())) if frame_keys else 1
        token_mask = np.ones((n, t), bool)
        for k in frame_keys:
            token_mask &= masks[k]
        parts = []
        for k in keys:
            v = np.asarray(data.features[k], np.float32)
            parts.append(v if v.ndim == 3 else np.repeat(v[:, None, :], t, axis=1))
            if k in pads:
                parts.append(np.zeros((n, t, pads[k]), np.float32))
        x = np.concatenate(parts, axis=-1)
        missing |= ~token_mask.any(axis=1)
    else:
        parts = []
        for k in keys:
            v = np.asarray(data.features[k], np.float32)
            if v.ndim == 3:
                m = masks[k][..., None]
                count = m.sum(axis=1)
                missing |= count[:, 0] == 0
                v = np.where(m, v, 0.0).sum(axis=1) / np.maximum(count, 1)
            parts.append(v)
            if k in pads:
                parts.append(np.zeros((n, pads[k]), np.float32))
        x = np.concatenate(parts, axis=-1).astype(np.float32)
        token_mask = None
    keep = ~missing
    if missing.any():
        dropped = [str(i) for i in np.asarray(data.ids)[missing]]
        shown = ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else "")
        warnings.warn(f"{data.split}: {len(dropped)} of {n} clips lack a selected feature "
                      f"({', '.join(keys)}) and are left out: {shown}", stacklevel=2)
    frame_masks = {INPUT_KEY: token_mask[keep]} if token_mask is not None else {}
    return SplitData(split=data.split, ids=np.asarray(data.ids)[keep],
                     labels=np.asarray(data.labels, np.float32)[keep], features={INPUT_KEY: x[keep]},
                     frame_masks=frame_masks, missing={INPUT_KEY: np.zeros(int(keep.sum()), bool)},
                     emotions=list(data.emotions))


@dataclasses.dataclass
class Standardizer:
    """Per-dimension z-scoring fitted on the train split's valid rows (sklearn StandardScaler semantics:
    population std, and a constant dimension is divided by 1, not 0)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, mask: np.ndarray | None = None) -> "Standardizer":
        rows = x.reshape(-1, x.shape[-1])
        if mask is not None:
            rows = rows[np.asarray(mask, bool).reshape(-1)]
        if len(rows) == 0:
            raise ValueError("cannot fit the standardizer: no valid rows")
        mean = rows.astype(np.float64).mean(axis=0)
        std = rows.astype(np.float64).std(axis=0)
        std[std == 0] = 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def apply(self, data: Any):
        """A copy of an assembled SplitData with `INPUT_KEY` standardised."""
        x = (data.features[INPUT_KEY] - self.mean) / self.std
        return dataclasses.replace(data, features={INPUT_KEY: x.astype(np.float32)})

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, list[float]]) -> "Standardizer":
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))
