"""The report's PNGs: Figure 1 (label densities) here; Figures 5–8 reuse `eri_jax.evaluation.plots.plot_confusion`."""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_label_density(densities: dict[str, dict], path: str | Path, *, title: str) -> Path:
    """One curve per emotion (`labels.label_density` results); an emotion without a KDE (constant or
    fewer than two labels) is a dashed vertical line at its value, named as such in the legend."""
    fig = Figure(figsize=(9.0, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for k, (emotion, d) in enumerate(densities.items()):
        color = f"C{k % 10}"  # one colour per emotion, whether drawn as a curve or a line
        if d["density"] is not None:
            ax.plot(d["grid"], d["density"], label=f"{emotion} (n={d['n']})", linewidth=1.4, color=color)
        elif d["constant"] is not None:
            ax.axvline(d["constant"], linestyle="--", linewidth=1.2, color=color,
                       label=f"{emotion}: constant {d['constant']:.3g} (n={d['n']}, no density)")
        else:
            ax.plot([], [], label=f"{emotion}: no labelled clip", color=color)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("labelled intensity")
    ax.set_ylabel("density (Gaussian KDE, Scott's bandwidth)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path
