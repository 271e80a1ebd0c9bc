"""ViPER's token layout: the zero columns ViPER's code appends to a modality block of each token.

ViPER's `train_perceiver.py` concatenates the per-frame blocks in the order V, A, T, F and appends 5 zero
columns to the 27 FAU columns (py-feat: 20 AU intensities + 7 emotion probabilities):

    token_size = V*768 + A*512 + T*768 + F*32        # 2080 for VATF, divisible by the 8 heads

The zero columns are not neutral: they enter the mean and variance of the cross-attention LayerNorm
over the token, so a ViPER checkpoint reproduces its outputs only on tokens padded the same way. A block
narrower than its ViPER width gets zero columns up to it; a block already at or above it is used as it
is (ViPER's width was chosen for py-feat's 27 columns and has no meaning for another FAU set). The rule
keys on the modality letter, never on a dataset folder name.
"""
from __future__ import annotations

from typing import Mapping, Sequence

# Width ViPER pads each modality block to (only F is padded; V, A and T enter as they are).
VIPER_BLOCK_WIDTHS = {"F": 32}
MODALITY_ORDER = "VATF"


def viper_block_widths(modalities: str, keys: Sequence[str]) -> dict[str, int] | None:
    """{dataset key: width its block is padded to} for the run's modality letters, or None if none is padded.

    `keys` are the letters' dataset keys in V, A, T, F order (as `features.modality_features` returns them).
    """
    letters = [c for c in MODALITY_ORDER if c in modalities.upper()]
    if len(letters) != len(keys):
        raise ValueError(f"modalities {modalities!r} name {len(letters)} blocks but {len(keys)} features "
                         f"were selected ({', '.join(keys)})")
    # A key that stands for several letters (a sweep's `--modality-map A=fau,F=fau`) is not ViPER's layout:
    # padding it would pad every block it fills, so it is left as it is.
    widths = {k: VIPER_BLOCK_WIDTHS[c] for c, k in zip(letters, keys)
              if c in VIPER_BLOCK_WIDTHS and list(keys).count(k) == 1}
    return widths or None


def block_padding(keys: Sequence[str], dims: Mapping[str, int],
                  block_widths: Mapping[str, int] | None) -> dict[str, int]:
    """{key: zero columns appended after its block} (only keys that get any)."""
    pads = {}
    for k in keys:
        width = (block_widths or {}).get(k)
        if width is not None and dims[k] < width:
            pads[k] = int(width) - int(dims[k])
    return pads
