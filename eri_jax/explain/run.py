"""Explain a finished run on one split: integrated gradients per block and frame, and for ViPER the latents'
cross-attention over the frames, written as JSON and PNGs.

ViPER is explained in the space of its per-token standardised inputs (models/viper.py `normalize_tokens`):
its first operation is a LayerNorm over each token, so on raw tokens every point of the straight path from
a zero baseline is the same input scaled, and the attribution would be degenerate. The baseline there is a
token at its own mean. The probe and the LSTM are explained on their (standardised, if the run was) inputs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np
from flax import nnx

from eri_jax.evaluation.run import open_run
from eri_jax.explain.attention import frame_attention
from eri_jax.explain.attribution import completeness_error, feature_blocks, make_block_ig
from eri_jax.explain.figures import plot_attention_vs_attribution, plot_frame_heatmaps, plot_modality_bars
from eri_jax.inputs import assembly as feats
from eri_jax.models.viper import normalize_tokens
from eri_jax.report.labels import data_tags
from eri_jax.result_files import write_json
from eri_jax.training.inputs import load_inputs
from eri_jax.training.restore import abstract_state, restore


def explain_arrays(model: Any, model_name: str, x: np.ndarray, mask: np.ndarray | None, blocks, *,
                   steps: int, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(attr [N,E,T,K], f(x) [N,E], f(baseline) [N,E]) over the rows of x, `batch_size` rows at a time."""
    if model_name == "viper":
        space = np.asarray(normalize_tokens(jnp.asarray(x)))
        ig = make_block_ig(lambda u, m: model(u, m, inputs_normalized=True), blocks, steps)
    else:
        space = x
        ig = make_block_ig(lambda v, m: model(v, m).astype(jnp.float32), blocks, steps)
    parts = []
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        m = None if mask is None else jnp.asarray(mask[rows])
        parts.append([np.asarray(a) for a in ig(jnp.asarray(space[rows]), m)])
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def extreme_clips(pred: np.ndarray, top: int) -> list[tuple[int, int]]:
    """(row, emotion) of the `top` clips whose prediction lies furthest from the split's mean (in std units)."""
    z = np.abs(pred - pred.mean(0)) / np.maximum(pred.std(0), 1e-12)
    best = z.max(axis=1)
    rows = np.argsort(-best, kind="stable")[:top]
    return [(int(r), int(z[r].argmax())) for r in rows]


def explain_run(run_dir: str | Path, *, split: str = "dev", clips: Sequence[str] = (), runs_dir: str | None = None,
                steps: int = 32, top: int = 3, checkpoint: str = "best", dataset: str | None = None,
                data_dir: str | None = None) -> tuple[dict[str, Any], Path]:
    """Explain checkpoint `checkpoint` of the run in `run_dir` on `split`; write the files into
    <runs_dir>/<run>/; return (the JSON written, that folder). dataset / data_dir: as `eri_jax.evaluate`'s."""
    cfg, run_info, meta = open_run(run_dir, dataset=dataset, data_dir=data_dir, runs_dir=runs_dir)
    _, state, epoch, standardizer, mesh = restore(cfg, run_info, checkpoint)
    graphdef, _ = abstract_state(cfg, run_info, mesh)
    model, _ = nnx.merge(graphdef, state)
    model.eval()
    data = load_inputs(cfg, split, meta, standardizer)
    ids = [str(i) for i in data.ids]
    unknown = [c for c in clips if c not in ids]
    if unknown:
        raise ValueError(f"--clips: {', '.join(unknown)} not among the {len(ids)} clips of split {split} "
                         f"the run can see (a clip missing a feature is left out)")
    blocks = feature_blocks(cfg.features, {k: meta.features[k].dim for k in cfg.features}, cfg.block_widths,
                            cfg.modalities)
    x = np.asarray(data.features[feats.INPUT_KEY], np.float32)
    mask = data.frame_masks.get(feats.INPUT_KEY)
    attr, fx, f0 = explain_arrays(model, cfg.model, x, mask, blocks, steps=steps, batch_size=cfg.batch_size)
    att = frame_attention(model, x, mask, batch_size=cfg.batch_size) if cfg.model == "viper" else None
    err = completeness_error(attr, fx, f0)
    emotions, names = list(run_info["emotions"]), [b.name for b in blocks]
    tags = data_tags(meta.synthetic, meta.random_weights)
    modality = np.abs(attr.sum(axis=2)).mean(axis=0)  # [E, K]: mean over clips of |a block's clip total|
    chosen = extreme_clips(fx, top) + [(ids.index(c), None) for c in clips]
    clip_rows = []
    for row, e in chosen:
        e = int(np.abs(fx[row] - fx.mean(0)).argmax()) if e is None else e
        clip_rows.append({"id": ids[row], "emotion": emotions[e], "prediction": float(fx[row, e]),
                          "chosen": "extreme" if len(clip_rows) < min(top, len(ids)) else "asked",
                          "map": attr[row, e].tolist(), "attribution": attr[row].tolist(),
                          "attention": None if att is None else att[row].tolist(),
                          "frame_mask": None if mask is None else np.asarray(mask[row]).tolist()})
    out = {
        "run": cfg.run_name, "model": cfg.model, "dataset": cfg.dataset, "tags": tags, "split": split,
        "checkpoint": checkpoint, "epoch": epoch,
        "method": "integrated gradients, zero baseline, midpoint rule"
                  + (" on per-token standardised inputs" if cfg.model == "viper" else ""),
        "steps": steps, "emotions": emotions,
        "blocks": [{"name": b.name, "start": b.start, "stop": b.stop} for b in blocks],
        "n_clips": len(ids),
        "modality_mean_abs": {em: dict(zip(names, map(float, modality[i]))) for i, em in enumerate(emotions)},
        "modality_rank": {em: [names[k] for k in np.argsort(-modality[i], kind="stable")]
                          for i, em in enumerate(emotions)},
        "frame_mean_abs": np.abs(attr).mean(axis=0).tolist(),  # [E][T][K]
        "completeness": {"max_abs_error": float(err.max()), "max_abs_change": float(np.abs(fx - f0).max())},
        "attention": None if att is None else {
            "method": "the latents' cross-attention weights over the frames (tokens), averaged over the "
                      f"{_count(model.config.num_cross_attention_heads, 'head')} and "
                      f"{_count(model.config.num_latents, 'latent')}; "
                      "per clip they sum to 1 over its unmasked frames (a masked frame gets 0); split_mean is "
                      "their mean over the clips. Attention is not attribution: the same weights serve every "
                      "emotion, and they say what the latents read, not what the prediction rests on",
            "split_mean": att.mean(axis=0).tolist(), "clips": dict(zip(ids, att.tolist()))},
        "clips": clip_rows,
    }
    out_dir = Path(cfg.runs_dir) / cfg.run_name
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{cfg.run_name} ({cfg.model}), {split}, epoch {epoch}" + (f"\n({', '.join(tags)})" if tags else "")
    plot_modality_bars(modality, emotions, names, out_dir / f"explain_{split}_modalities.png", title=title)
    plot_frame_heatmaps(clip_rows, names, out_dir / f"explain_{split}_frames.png", title=title)
    if att is not None:
        plot_attention_vs_attribution(att.mean(axis=0), np.abs(attr).sum(axis=(1, 3)).mean(axis=0),
                                      out_dir / f"explain_{split}_attention.png", title=title)
    write_json(out_dir / f"explain_{split}.json", out)
    return out, out_dir
