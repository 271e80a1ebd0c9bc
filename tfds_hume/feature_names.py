"""One alias table from the names users and datasets use to the dataset feature keys.

A shipped feature folder (`feats/<Folder>/<id>.csv`) becomes the dataset key of its folder name
looked up here in any case; a folder not listed keeps its name, lower-cased, with characters other
than letters, digits and `_` turned into `_`. ViPER's modality letters name the same keys, so
`--modalities F`, `--features fau`, `--features FAUs` and a dataset that shipped `feats/FAUs/` all
meet at `fau`:

| letter | modality              | dataset key                    | shipped folders (any case)          |
|--------|-----------------------|--------------------------------|-------------------------------------|
| V      | visual                | `vit` (ViT CLS on face crops)  |                                     |
| A      | audio                 | `wavlm` (WavLM x-vectors)      |                                     |
| T      | text                  | per `--text-source`            |                                     |
| F      | facial action units   | `fau`                          | FAU, FAUs, AU, AUs, py-feat, pyfeat |
|        | face embedding        | `vggface2`                     | VGGFace2                            |
|        | audio spectrogram CNN | `deepspectrum`                 | DeepSpectrum, DS                    |
|        | acoustic functionals  | `egemaps`                      | eGeMAPS                             |

MuSe-2022 ships `FAUs`, `VGGFace2`, `DeepSpectrum` and `eGeMAPS`; the synthetic set writes the same
folders.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

# Lower-cased folder names and user-typed aliases -> dataset key.
ALIASES = {
    "fau": "fau", "faus": "fau", "au": "fau", "aus": "fau", "py-feat": "fau", "pyfeat": "fau",
    "vggface2": "vggface2",
    "deepspectrum": "deepspectrum", "ds": "deepspectrum",
    "egemaps": "egemaps",
}
# ViPER modality letters -> dataset key (T depends on the text source, see eri_jax.inputs.assembly).
MODALITY_KEYS = {"V": "vit", "A": "wavlm", "F": "fau"}


def feature_key(name: str) -> str:
    """The dataset key for a feature folder or a user-typed feature name (`FAUs` -> `fau`)."""
    name = name.strip()
    known = ALIASES.get(name.lower())
    if known is not None:
        return known
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


def find_key(name: str, available: Iterable[str]) -> str | None:
    """The key among `available` that `name` means: itself, else the one with the same dataset key
    (so a dataset built with the older key `faus` still answers `fau`); None if there is none."""
    available = list(available)
    if name in available:
        return name
    wanted = feature_key(name)
    return next((k for k in available if feature_key(k) == wanted), None)
