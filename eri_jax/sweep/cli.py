"""`python -m eri_jax.sweep`: seeds x learning rates x activations x inputs, vmapped, one program per shape.

    python -m eri_jax.sweep --table 4                                   # probe, 7 activations, 3 seeds
    python -m eri_jax.sweep --table 6 --modality-map V=pixels,F=fau,A=vggface2,T=vggface2   # on the demo
    python -m eri_jax.sweep --model probe --seeds 0,1,2 --lrs 1e-4,3e-4 --activations all \\
        --feature-sets fau,vggface2 --epochs 20 --out runs/sweep-probe
    python -m eri_jax.sweep --model viper --modality-sets V,V+A,V+A+T+F --text-source vllava_p2

Inputs: `--modality-sets` (ViPER letters joined by '+', mapped to dataset keys as in inputs/assembly.py, or as
`--modality-map` says) and/or `--feature-sets` (dataset keys joined by '+'; the probe mean-pools a frame
feature over time). Unset options take the preset's values (`paper` for real data, `demo` for synthetic
data; see training/presets.py). Outputs in `--out`: summary.md / summary.csv / per_emotion.csv / runs.csv /
sweep.json, and runs/<run_id>/ with dev predictions (MuSe CSV), best parameters (npz) and run.json.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from eri_jax.sweep import grid
from eri_jax.sweep.runner import SweepConfig, run_sweep
from eri_jax.training.presets import OPTIMIZERS, PRESETS, SCHEDULES, resolve_preset
from eri_jax.training.processes import add_process_flags, describe_devices, is_writer, start_processes
from tfds_hume.cli_errors import cli_main

SWEEP_MODELS = ("probe", "viper")
# The flags of `python -m eri_jax.sweep` that override a preset setting of the same name (None = not given).
PRESET_FLAGS = ("optimizer", "weight_decay", "batch_size", "epochs", "schedule", "halve_every")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eri_jax.sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", type=int, choices=sorted(grid.TABLES), default=None,
                   help="paper layout: 4 = probe activations, 6 = ViPER modality ablation")
    p.add_argument("--model", choices=SWEEP_MODELS, default=None, help="default: the table's, else probe")
    p.add_argument("--dataset", default="hume_reaction/demo", help="TFDS name/config (default hume_reaction/demo)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: $TFDS_DATA_DIR or TFDS's)")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="defaults per model (training/presets.py); default: paper for real data, demo for synthetic")
    p.add_argument("--seeds", default="0,1,2", help="e.g. 0,1,2 or 0-4 (default 0,1,2)")
    p.add_argument("--lrs", default=None, help="learning rates, e.g. 1e-4,3e-4 (default: the preset's)")
    p.add_argument("--activations", default=None,
                   help="probe: 'all' or names (linear,relu,leaky_relu,tanh,sigmoid,gelu,elu)")
    p.add_argument("--modality-sets", default=None, help="ViPER letters per set, e.g. V,V+A,V+A+T+F")
    p.add_argument("--modality-map", default=None,
                   help="letters → dataset keys, e.g. V=pixels,F=fau (default V=vit A=wavlm T=<text> F=fau)")
    p.add_argument("--text-source", choices=("clip", "vllava_p1", "vllava_p2", "llava_frames"), default=None,
                   help="what T maps to (inputs/assembly.py); default clip, vllava_p2 for --table 6 on real data")
    p.add_argument("--feature-sets", default=None, help="dataset keys per set, e.g. fau,pixels+fau")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--eval-batch-size", type=int, default=256, help="rows per dev prediction chunk")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--schedule", choices=SCHEDULES, default=None)
    p.add_argument("--halve-every", type=int, default=None, help="epochs between LR halvings (step schedule)")
    p.add_argument("--hidden", type=int, default=None, help="probe hidden width (default: the preset's)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--chunk", type=int, default=0,
                   help="at most this many runs per vmapped program (0 = a whole group; lower it for memory)")
    p.add_argument("--fast-compile", action="store_true",
                   help="compile with XLA backend optimisation level 0: much quicker compiles, slower steps "
                        "(for tiny models on CPU, e.g. tests)")
    p.add_argument("--out", default=None, help="output folder (default runs/sweep-<model>[-table<N>])")
    p.add_argument("--no-progress", action="store_true")
    add_process_flags(p)
    return p


def make_config(args: argparse.Namespace, meta) -> SweepConfig:
    """Resolve every option against the table preset, the model preset and the dataset's features."""
    table = grid.TABLES.get(args.table) if args.table else None
    model = args.model or (table.model if table else "probe")
    if table and model != table.model:
        raise ValueError(f"--table {args.table} is a {table.model} table; drop --model {model}")
    preset_name = args.preset or ("demo" if meta.synthetic else "paper")
    use_paper_table = table is not None and preset_name == "paper"
    text_source = args.text_source or (table.paper_text_source if use_paper_table else None)
    p = resolve_preset(model, preset_name, text_source=text_source,
                       **{k: getattr(args, k) for k in PRESET_FLAGS})
    seeds = grid.parse_ints(args.seeds, "seeds")
    if table and len(seeds) < table.min_seeds:
        raise ValueError(f"--table {args.table} needs at least {table.min_seeds} seeds, got --seeds {args.seeds}")
    lrs = grid.parse_floats(args.lrs, "lrs") if args.lrs else [p.lr]

    if model == "probe":
        if args.activations:
            activations: list[str | None] = list(grid.parse_activations(args.activations))
        elif table and table.activations:
            activations = list(table.activations)
        else:
            activations = [p.model_kwargs.get("activation", "relu")]
    else:
        if args.activations:
            raise ValueError("--activations is the probe's; ViPER has none to sweep")
        activations = [None]

    mapping = grid.default_modality_map(p.text_source)
    mapping.update(grid.parse_modality_map(args.modality_map))
    numeric = [k for k, s in meta.features.items() if s.kind in ("frame", "video")]

    inputs: list[grid.Inputs] = []
    mod_sets = [s for s in (args.modality_sets or "").split(",") if s.strip()]
    feature_sets = [s for s in (args.feature_sets or "").split(",") if s.strip()]
    if not mod_sets and not feature_sets:
        if table and table.modality_sets:
            mod_sets = list(table.modality_sets)
        elif use_paper_table and table.paper_features:
            feature_sets = ["+".join(table.paper_features)]
        elif p.features:
            feature_sets = ["+".join(p.features)]
        elif p.modalities:
            mod_sets = ["+".join(p.modalities)]
    if mod_sets and model != "viper":
        raise ValueError("--modality-sets are ViPER's; pass --feature-sets for the probe")
    if len(mod_sets) > 1:  # every letter the dataset lacks, named at once (not one set at a time)
        grid.resolve_modality_set("+".join(dict.fromkeys(c for s in mod_sets for c in s.replace("+", "").upper())),
                                  mapping, numeric, dataset=args.dataset)
    for s in mod_sets:
        inputs.append(grid.resolve_modality_set(s, mapping, numeric, dataset=args.dataset))
    for s in feature_sets:
        inputs.append(grid.feature_inputs(s))
    if not inputs:
        raise ValueError("no inputs: pass --feature-sets or (ViPER) --modality-sets")

    model_kwargs = dict(p.model_kwargs)
    if model == "probe":
        model_kwargs.pop("activation", None)
        if args.hidden:
            model_kwargs["hidden"] = args.hidden
    elif args.hidden:
        raise ValueError("--hidden is the probe's")
    out = args.out or f"runs/sweep-{model}" + (f"-table{args.table}" if args.table else "")
    used_letters = {c for i in inputs if i.modalities for c in i.modalities}
    return SweepConfig(
        model=model, dataset=args.dataset, data_dir=args.data_dir, preset=preset_name, inputs=inputs,
        seeds=seeds, lrs=lrs, activations=activations, epochs=p.epochs, batch_size=p.batch_size,
        eval_batch_size=args.eval_batch_size, optimizer=p.optimizer, weight_decay=p.weight_decay,
        halve_every=p.halve_epochs, model_kwargs=model_kwargs, precision=args.precision, chunk=args.chunk, out=out,
        table=args.table, fast_compile=args.fast_compile,
        modality_map={k: v for k, v in mapping.items() if k in used_letters})


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    joined = start_processes(args)
    # deferred: imports tensorflow_datasets
    from eri_jax.inputs.dataset import dataset_meta

    meta = dataset_meta(args.dataset, args.data_dir)
    cfg = make_config(args, meta)
    n_runs = len(cfg.inputs) * len(cfg.activations) * len(cfg.lrs) * len(cfg.seeds)
    print(f"sweep: {cfg.model} ({cfg.preset} preset) on {cfg.dataset} "
          f"[{'synthetic' if meta.synthetic else meta.dataset}]: {n_runs} runs = "
          f"{len(cfg.inputs)} input set(s) x {len(cfg.activations)} activation(s) x {len(cfg.lrs)} lr(s) "
          f"x {len(cfg.seeds)} seed(s), {cfg.epochs} epochs", file=sys.stderr)
    print(f"{describe_devices(joined)}; the runs are split over them", file=sys.stderr)
    result = run_sweep(cfg, progress=not args.no_progress)

    if not is_writer():  # process 0 wrote the outputs
        return 0
    print((Path(cfg.out) / "summary.md").read_text())
    print(f"{len(result.results)} runs in {len(result.groups)} group(s); outputs in {cfg.out}", file=sys.stderr)
    return 0
