"""A run's config: `TrainConfig`, and `make_config`, the preset with the user's flags applied over it.

A setting is decided in one place: `presets.resolve_preset` takes the (model, preset) defaults and
replaces every one the user gave; `make_config` adds what the presets do not hold (features, seed, run
name, folders, the model settings of `--activation` / `--hidden` / `--init-from`). Derived values
(`halve_steps`, `run_dir`) are methods of the config. The config is saved as the run's `config.json`,
from which `eri_jax.evaluate` and `eri_jax.crossfit` rebuild it (`from_json`).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Sequence

from eri_jax.inputs import assembly as feats
from eri_jax.inputs.token_layout import viper_block_widths
from eri_jax.models.viper_import import checkpoint_config
from eri_jax.training.presets import resolve_preset

# Marks a field that defines a run: a rerun with another value under the same run name is refused, not resumed.
_IDENTITY = {"identity": True}


def _identity(default: Any = dataclasses.MISSING) -> Any:
    return dataclasses.field(default=default, metadata=_IDENTITY)

@dataclasses.dataclass
class TrainConfig:
    """Everything that determines a run (saved as `config.json`; `evaluate.py` rebuilds from it)."""

    model: str = _identity()
    preset: str = _identity()
    dataset: str = _identity()
    features: list[str] = _identity()
    model_kwargs: dict[str, Any] = _identity()
    optimizer: str = _identity()
    lr: float = _identity()
    weight_decay: float = _identity()
    batch_size: int = _identity()
    epochs: int = dataclasses.field()  # may grow on a rerun (train further)
    schedule: str = _identity()
    halve_every: int = _identity()  # epochs between LR halvings; 0 = constant LR
    standardize: bool = _identity()
    precision: str = _identity()
    seed: int = _identity()
    run_name: str = dataclasses.field()
    data_dir: str | None = None
    workdir: str = "checkpoints"
    runs_dir: str = "runs"
    init_from: str | None = _identity(None)
    trust_pickle: bool = False
    output_bias: str = _identity("zero")
    modalities: str | None = None
    text_source: str | None = None
    # ViPER's token layout: {feature key: width its block is zero-padded to} (inputs/token_layout.py).
    block_widths: dict[str, int] | None = _identity(None)
    perceiver_config: str | None = None  # --perceiver-config: the HF config of an --init-from state dict
    model_source: str | None = None  # with --init-from: where model_kwargs came from

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def run_dir(self) -> Path:
        return Path(self.workdir) / self.run_name

    def halve_steps(self, steps_per_epoch: int) -> int:
        """Optimizer updates between LR halvings (0 = constant LR)."""
        return self.halve_every * steps_per_epoch


# Fields that define a run: a rerun with other values under the same run name is refused, not resumed.
IDENTITY_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("identity"))

def default_run_name(model: str, preset: str, features: Sequence[str], seed: int,
                     modalities: str | None = None, text_source: str | None = None,
                     changed: Sequence[str] = ()) -> str:
    """`changed`: tags of model settings that differ from the preset's (e.g. `tanh`, `h128`)."""
    tag = f"{modalities.upper()}-{text_source}" if modalities else "+".join(features)
    return "-".join([model, preset, tag, *changed, f"s{seed}"])

def model_settings(args: argparse.Namespace, preset_kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The preset's model kwargs with `--activation` (probe) and `--hidden` (probe, LSTM) applied, and the
    run-name tags of those that differ from the preset."""
    kwargs, changed = dict(preset_kwargs), []
    activation = getattr(args, "activation", None)
    hidden = getattr(args, "hidden", None)
    if activation is not None:
        if args.model != "probe":
            raise ValueError(f"--activation is the probe's; the {args.model} has a fixed one")
        if activation != kwargs.get("activation"):
            changed.append(activation)
        kwargs["activation"] = activation
    if hidden is not None:
        if args.model == "viper":
            raise ValueError("--hidden is the probe's and the LSTM's; the ViPER size comes from its preset")
        if hidden < 1:
            raise ValueError(f"--hidden {hidden}: must be at least 1")
        if hidden != kwargs.get("hidden"):
            changed.append(f"h{hidden}")
        kwargs["hidden"] = hidden
    return kwargs, changed


# The flags of `python -m eri_jax.train` that override a preset setting of the same name (None = not given).
PRESET_FLAGS = ("optimizer", "lr", "weight_decay", "batch_size", "epochs", "schedule", "halve_every",
                "standardize", "text_source")


def make_config(args: argparse.Namespace, *, synthetic: bool) -> TrainConfig:
    """The run's config: the preset (paper for real data, demo for synthetic) with the user's flags over it."""
    preset_name = args.preset or ("demo" if synthetic else "paper")
    # Loaded weights keep their own output bias unless the user asks for the train mean.
    output_bias = args.output_bias or ("zero" if args.init_from else None)
    p = resolve_preset(args.model, preset_name, output_bias=output_bias,
                       **{k: getattr(args, k) for k in PRESET_FLAGS})
    explicit = [k for k in (args.features or "").split(",") if k.strip()]
    if explicit and args.modalities:
        raise ValueError("pass either --features (dataset keys) or --modalities (ViPER letters), not both")
    modalities = args.modalities
    text_source = p.text_source
    if args.model != "viper" and modalities:
        raise ValueError("--modalities is ViPER's; pass --features for the probe and the LSTM")
    if explicit:
        keys = feats.resolve_features(features=explicit)
    elif modalities:
        keys = feats.resolve_features(modalities=modalities, text_source=text_source)
    elif p.features:
        keys = list(p.features)
    else:
        modalities = p.modalities
        keys = feats.resolve_features(modalities=modalities, text_source=text_source)
    if not modalities:
        text_source = None
    seed = args.seed if args.seed is not None else 0
    model_kwargs, model_source = dict(p.model_kwargs), None
    if args.init_from and args.model == "viper":
        if p.standardize:
            raise ValueError("--init-from with --standardize: a ViPER checkpoint was trained on raw tokens, and "
                             "z-scored inputs would not reproduce it; drop --standardize")
        model_kwargs, model_source = checkpoint_model_kwargs(args, p.model_kwargs, preset_name)
    elif args.perceiver_config:
        raise ValueError("--perceiver-config describes the state dict of --init-from (ViPER); pass --init-from too")
    model_kwargs, changed = model_settings(args, model_kwargs)  # over the checkpoint's, with --init-from
    return TrainConfig(
        model=args.model, preset=preset_name, dataset=args.dataset, features=keys,
        model_kwargs=model_kwargs, optimizer=p.optimizer, lr=p.lr, weight_decay=p.weight_decay,
        batch_size=p.batch_size, epochs=p.epochs, schedule=p.schedule, halve_every=p.halve_epochs,
        standardize=p.standardize, output_bias=p.output_bias, precision=args.precision, seed=seed,
        run_name=args.run_name or default_run_name(args.model, preset_name, keys, seed, modalities,
                                                    text_source, changed),
        data_dir=args.data_dir, workdir=args.workdir, runs_dir=args.runs_dir, init_from=args.init_from,
        trust_pickle=args.trust_pickle, modalities=modalities, text_source=text_source,
        block_widths=viper_block_widths(modalities, keys) if args.model == "viper" and modalities else None,
        perceiver_config=args.perceiver_config, model_source=model_source)


def checkpoint_model_kwargs(args: argparse.Namespace, preset_kwargs: dict[str, Any],
                            preset_name: str) -> tuple[dict[str, Any], str]:
    """ViPER's settings from the --init-from checkpoint (they override the preset's, said aloud)."""
    vcfg, source = checkpoint_config(args.init_from, trust_pickle=args.trust_pickle,
                                     perceiver_config=args.perceiver_config)
    kwargs = {f.name: getattr(vcfg, f.name) for f in dataclasses.fields(vcfg)
              if f.name not in ("d_model", "num_outputs")}  # these come from the data
    print(f"--init-from: the model is the checkpoint's, from {source}: d_model {vcfg.d_model}, "
          f"{vcfg.num_latents} latents x {vcfg.d_latents}, {vcfg.num_blocks} block(s) x "
          f"{vcfg.num_self_attends_per_block} layers, {vcfg.num_self_attention_heads} self-/"
          f"{vcfg.num_cross_attention_heads} cross-attention heads", file=sys.stderr)
    overridden = [f"{k} {v} -> {kwargs[k]}" for k, v in preset_kwargs.items() if kwargs.get(k) != v]
    if overridden:
        print(f"  (overrides the {preset_name} preset's {', '.join(overridden)})", file=sys.stderr)
    return kwargs, source


