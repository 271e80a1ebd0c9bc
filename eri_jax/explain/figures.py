"""The explanation figures: modality bars per emotion and frame x block heat maps (matplotlib Agg, no pyplot)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eri_jax.result_files import atomic_path


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def plot_modality_bars(values: np.ndarray, emotions: Sequence[str], blocks: Sequence[str], path: str | Path, *,
                       title: str) -> Path:
    """Grouped bars: mean |attribution| [E, K] of each block (bar) for each emotion (group)."""
    values = np.asarray(values, np.float64)
    fig = Figure(figsize=(max(6.4, 0.9 * len(emotions) * max(1, len(blocks)) / 2), 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(blocks))
    for k, name in enumerate(blocks):
        ax.bar(np.arange(len(emotions)) + (k - (len(blocks) - 1) / 2) * width, values[:, k], width, label=name)
    ax.set_xticks(range(len(emotions)), emotions, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean |attribution| (clip sum)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, Path(path))


def plot_frame_heatmaps(clips: Sequence[dict], blocks: Sequence[str], path: str | Path, *, title: str) -> Path:
    """One panel per clip: its attribution [T, K] for one emotion, blocks as rows and frames as columns.

    clips: dicts with `id`, `emotion`, `prediction` and `map` (float [T, K]).
    """
    fig = Figure(figsize=(7.0, 1.0 + 1.3 * len(clips)), dpi=100)
    FigureCanvasAgg(fig)
    for i, clip in enumerate(clips):
        ax = fig.add_subplot(len(clips), 1, i + 1)
        m = np.asarray(clip["map"], np.float64).T
        lim = float(np.nanmax(np.abs(m))) or 1.0
        image = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_yticks(range(len(blocks)), blocks, fontsize=7)
        ax.set_title(f"clip {clip['id']}: {clip['emotion']} predicted {clip['prediction']:.3f}", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    ax.set_xlabel("frame (token)")
    fig.suptitle(title, fontsize=9)
    return _save(fig, Path(path))
