"""The explanation figures: modality bars per emotion and frame x block heat maps (matplotlib Agg, no pyplot)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eri_jax.result_files import atomic_path


def _save(fig: Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:
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
    """One panel per clip: its attribution [T, K] for one emotion, blocks as rows and frames as columns, and
    under it, when the clip has one, ViPER's cross-attention over the same frames (the same for every emotion).

    clips: dicts with `id`, `emotion`, `prediction`, `map` (float [T, K]) and `attention` (float [T] or None).
    """
    heights = []
    for clip in clips:
        heights += [max(2, len(blocks))] + ([1] if clip.get("attention") is not None else [])
    # Constrained layout: it places a colour bar that spans a heat map and its attention row (tight_layout cannot).
    fig = Figure(figsize=(7.0, 1.0 + 0.45 * sum(heights) + 0.4 * len(clips)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(max(1, len(heights)), 1, height_ratios=heights or [1])
    row = 0
    for clip in clips:
        ax = fig.add_subplot(grid[row])
        row += 1
        m = np.asarray(clip["map"], np.float64).T
        lim = float(np.nanmax(np.abs(m))) or 1.0
        image = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_yticks(range(len(blocks)), blocks, fontsize=7)
        ax.set_title(f"clip {clip['id']}: {clip['emotion']} predicted {clip['prediction']:.3f}", fontsize=8)
        axes = [ax]
        if clip.get("attention") is not None:
            att = np.asarray(clip["attention"], np.float64)
            below = fig.add_subplot(grid[row], sharex=ax)
            ax.tick_params(labelbottom=False)
            row += 1
            below.bar(np.arange(len(att)), att, width=0.9, color="0.35")
            below.set_ylabel("attention", fontsize=7)
            below.tick_params(labelsize=6)
            axes.append(below)
        fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02)  # both axes give way: frames stay aligned
    if clips:
        axes[-1].set_xlabel("frame (token)")
    fig.suptitle(title, fontsize=9)
    return _save(fig, Path(path))


def plot_attention_vs_attribution(attention: np.ndarray, attribution: np.ndarray, path: str | Path, *,
                                  title: str) -> Path:
    """Two curves over the frames, each as a share of its total: the split's mean cross-attention [T] and
    its mean |attribution| summed over emotions and blocks [T]."""
    fig = Figure(figsize=(7.0, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    frames = np.arange(len(attention))
    for values, label in ((attention, "cross-attention (mean over heads, latents, clips)"),
                          (attribution, "|integrated gradients| (sum over emotions and blocks, mean over clips)")):
        v = np.asarray(values, np.float64)
        ax.plot(frames, v / (v.sum() or 1.0), marker="o", markersize=3, linewidth=1.2, label=label)
    ax.set_xlabel("frame (token)")
    ax.set_ylabel("share of its total over the frames")
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, Path(path))
