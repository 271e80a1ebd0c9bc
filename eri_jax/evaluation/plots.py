"""PNG plots of evaluation results, drawn with matplotlib's Agg renderer.

Figures are built as `matplotlib.figure.Figure` objects, not through pyplot, so plotting needs no
display, touches no global backend state and leaks no open figures in long runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_confusion(matrix, path: str | Path, *, title: str) -> Path:
    """Save a row-normalised binned confusion matrix as a PNG heat map with each cell's value.

    matrix: float[B, B], rows = label bins, columns = prediction bins, bins of width 1/B over [0, 1].
    title: the figure title (emotion, split, prediction range). Returns the path written.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square [B, B], got shape {matrix.shape}")
    bins = matrix.shape[0]
    edges = np.linspace(0.0, 1.0, bins + 1)
    names = [f"{lo:.1f}-{hi:.1f}" for lo, hi in zip(edges[:-1], edges[1:])]

    fig = Figure(figsize=(6.4, 5.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, origin="lower")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the label bin")
    ax.set_xticks(range(bins), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(bins), names, fontsize=7)
    ax.set_xlabel("predicted intensity (clipped to [0, 1])")
    ax.set_ylabel("labelled intensity")
    if bins <= 20:  # cell values stay legible up to about 20 x 20
        for i in range(bins):
            for j in range(bins):
                value = matrix[i, j]
                if value > 0:
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if value > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path
