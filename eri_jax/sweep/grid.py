"""The sweep grid: settings (model, inputs, activation, learning rate) x seeds, run ids, and shape groups.

A *setting* is everything that defines a run except its seed; a *run* is a setting with a seed. Tables
report mean ± std over the seeds of each setting. *Inputs* are either ViPER modality sets (`V+A`: the
letters map to dataset feature keys, see `resolve_modality_set`) or explicit dataset keys
(`pixels+fau`).

Runs that read the same inputs share one data tensor and one input shape; they form a *group* and
train together under `jax.vmap` in one compiled program. Groups of equal shape reuse that program.

Paper presets (`TABLES`), each >= 3 seeds:
  4  probe, the 7 activations of Table 4; on real data it reads the pooled Video-LLaVA embedding of
     prompt 2 (`vllava_emb_p2`, the prompt of the paper's Table 4)
  6  ViPER modality ablation of Table 6: V, V+A, V+T, V+F, V+A+T, V+T+F, V+A+F, V+A+T+F; on real data
     T is the RoBERTa embedding of the Video-LLaVA prompt-2 description (`vllava_p2`: the paper's
     V+A+T+F row, 0.3011, is that model)
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Hashable, Iterable, Sequence

from eri_jax.inputs.assembly import MODALITY_FEATURES, MODALITY_ORDER, TEXT_SOURCES
from eri_jax.models.probe import ACTIVATION_NAMES
from tfds_hume.feature_names import feature_key

TABLE6_SETS = ("V", "V+A", "V+T", "V+F", "V+A+T", "V+T+F", "V+A+F", "V+A+T+F")


@dataclasses.dataclass(frozen=True)
class TablePreset:
    """What `--table N` fixes: the model, the swept axis, the minimum number of seeds, and what the paper
    used on real data (`paper_features` for the probe, `paper_text_source` for ViPER's T) with its
    dev mean Pearson per row (`paper`, single runs, shown beside our tables for comparison)."""

    model: str
    description: str
    activations: tuple[str, ...] | None = None
    modality_sets: tuple[str, ...] | None = None
    min_seeds: int = 3
    paper_features: tuple[str, ...] = ()
    paper_text_source: str = "clip"
    paper: dict[str, float] = dataclasses.field(default_factory=dict)


TABLES = {
    4: TablePreset(
        model="probe", activations=ACTIVATION_NAMES, paper_features=("vllava_emb_p2",),
        description="Table 4 layout: probe activations (paper: on the pooled Video-LLaVA embedding, prompt 2)",
        paper={"linear": 0.2338, "relu": 0.2351, "leaky_relu": 0.2353, "tanh": 0.2332, "sigmoid": 0.2343,
               "gelu": 0.2315, "elu": 0.2326}),
    6: TablePreset(
        model="viper", modality_sets=TABLE6_SETS, paper_text_source="vllava_p2",
        description="Table 6 layout: ViPER modality ablation (V visual, A audio, T text, F FAU)",
        paper={"V": 0.2712, "V+A": 0.2748, "V+T": 0.2758, "V+F": 0.2978, "V+A+T": 0.2758, "V+T+F": 0.3011,
               "V+A+F": 0.2924, "V+A+T+F": 0.3011}),
}


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a run reads. label: `V+A` (modality set) or `pixels+fau` (keys); features: dataset keys."""

    label: str
    features: tuple[str, ...]
    modalities: str | None = None  # the letters, e.g. "VA", when given as a modality set

    @property
    def token(self) -> str:
        """File-name-safe form of the label: `VA` for a modality set, `pixels.fau` for keys."""
        if self.modalities:
            return self.modalities
        return re.sub(r"[^A-Za-z0-9_.-]+", ".", self.label)


@dataclasses.dataclass(frozen=True)
class Setting:
    """A run's definition without its seed. `activation` is None for models without one (ViPER)."""

    model: str
    inputs: Inputs
    activation: str | None
    lr: float

    def key(self) -> tuple:
        return (self.model, self.inputs.label, self.activation, self.lr)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of the sweep: a setting and a seed; `run_id` names its output folder."""

    setting: Setting
    seed: int

    @property
    def run_id(self) -> str:
        s = self.setting
        parts = [s.model, s.inputs.token]
        if s.activation is not None:
            parts.append(s.activation)
        parts += [f"lr{s.lr:g}", f"s{self.seed}"]
        return "-".join(parts)


# ------------------------------------------------------------------------------------------- parsing


def parse_ints(text: str, what: str = "seeds") -> list[int]:
    """`"0,1,2"` or a range `"0-4"` (inclusive) → ints; ValueError naming `what` otherwise."""
    out: list[int] = []
    for part in _parts(text, what):
        m = re.fullmatch(r"(-?\d+)-(\d+)", part)
        try:
            out += list(range(int(m[1]), int(m[2]) + 1)) if m else [int(part)]
        except ValueError:
            raise ValueError(f"--{what} {text!r}: {part!r} is not an integer or a range a-b") from None
    _no_repeats(out, what)
    return out


def parse_floats(text: str, what: str = "lrs") -> list[float]:
    """`"1e-4,3e-4"` → positive floats; ValueError naming `what` otherwise."""
    out = []
    for part in _parts(text, what):
        try:
            v = float(part)
        except ValueError:
            raise ValueError(f"--{what} {text!r}: {part!r} is not a number") from None
        if not v > 0:
            raise ValueError(f"--{what} {text!r}: {part!r} must be positive")
        out.append(v)
    _no_repeats(out, what)
    return out


def parse_activations(text: str) -> list[str]:
    """`"all"` (the 7 of Table 4) or names from `ACTIVATION_NAMES`, comma-separated."""
    if text.strip().lower() == "all":
        return list(ACTIVATION_NAMES)
    out = []
    for part in _parts(text, "activations"):
        name = part.lower().replace("-", "_")
        if name not in ACTIVATION_NAMES:
            raise ValueError(f"--activations: unknown activation {part!r}; choose 'all' or from "
                             f"{', '.join(ACTIVATION_NAMES)}")
        out.append(name)
    _no_repeats(out, "activations")
    return out


def parse_modality_map(text: str | None) -> dict[str, str]:
    """`"V=pixels,F=fau"` → {"V": "pixels", "F": "fau"} (letters of VATF → dataset keys)."""
    if not text:
        return {}
    out = {}
    for part in _parts(text, "modality-map"):
        letter, sep, key = part.partition("=")
        letter, key = letter.strip().upper(), key.strip()
        if not sep or len(letter) != 1 or letter not in MODALITY_ORDER or not key:
            raise ValueError(f"--modality-map {text!r}: {part!r} is not LETTER=feature_key with a letter "
                             f"of {MODALITY_ORDER}")
        if letter in out:
            raise ValueError(f"--modality-map {text!r}: letter {letter} is mapped twice")
        out[letter] = feature_key(key)
    return out


def default_modality_map(text_source: str = "clip") -> dict[str, str]:
    """The paper's letters → dataset keys (inputs/assembly.py): V=vit, A=wavlm, T=<text source>, F=fau."""
    if text_source not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {text_source!r}; choose one of {', '.join(TEXT_SOURCES)}")
    return {**MODALITY_FEATURES, "T": TEXT_SOURCES[text_source]}


def resolve_modality_set(text: str, mapping: dict[str, str], available: Iterable[str] | None = None,
                         *, dataset: str = "the dataset") -> Inputs:
    """`"V+A"` (or `"VA"`) → Inputs with the mapped keys in V, A, T, F order.

    available: the dataset's numeric feature keys; a letter whose key is absent is a ValueError naming
    the letter, the key, what the dataset has, and the `--modality-map` way out.
    """
    letters = text.replace("+", "").replace(" ", "").upper()
    bad = sorted(set(letters) - set(MODALITY_ORDER))
    if not letters or bad or len(set(letters)) != len(letters):
        raise ValueError(f"modality set {text!r}: use distinct letters of {MODALITY_ORDER} joined by '+' "
                         "(V=visual, A=audio, T=text, F=FAU), e.g. V+A+T+F")
    ordered = "".join(c for c in MODALITY_ORDER if c in letters)
    keys = []
    for c in ordered:
        if c not in mapping:
            raise ValueError(f"modality set {text!r}: letter {c} has no feature; add {c}=<key> to "
                             "--modality-map")
        keys.append(mapping[c])
    if available is not None:
        have = sorted(available)
        absent = [(c, mapping[c]) for c in ordered if mapping[c] not in have]
        if absent:
            what = ", ".join(f"{c} (feature {k!r})" for c, k in absent)
            raise ValueError(f"modality set {text!r}: {dataset} lacks {what}; it has {', '.join(have)}. "
                             "Pass --modality-map to say which features stand for the letters, e.g. "
                             "--modality-map V=pixels,F=fau")
    return Inputs(label="+".join(ordered), features=tuple(keys), modalities=ordered)


def feature_inputs(text: str) -> Inputs:
    """`"pixels+fau"` or `"pixels,fau"` → Inputs reading those dataset keys (concatenated in that order)."""
    keys = [feature_key(k) for k in re.split(r"[+,]", text) if k.strip()]  # aliases: FAUs -> fau
    if not keys:
        raise ValueError(f"feature set {text!r} is empty")
    _no_repeats(keys, "features")
    return Inputs(label="+".join(keys), features=tuple(keys))


# ------------------------------------------------------------------------------------------ the grid


def expand_grid(model: str, *, inputs: Sequence[Inputs], lrs: Sequence[float], seeds: Sequence[int],
                activations: Sequence[str | None] = (None,)) -> list[RunSpec]:
    """Every run of the grid, ordered by inputs, activation, lr, seed. Run ids must be unique."""
    if model != "probe" and any(a is not None for a in activations):
        raise ValueError(f"--activations applies to the probe only, not to {model}")
    for what, seq in (("inputs", inputs), ("lrs", lrs), ("seeds", seeds), ("activations", activations)):
        if not seq:
            raise ValueError(f"the sweep has no {what}")
    runs = [RunSpec(Setting(model, inp, act, float(lr)), int(seed))
            for inp in inputs for act in activations for lr in lrs for seed in seeds]
    seen: dict[str, RunSpec] = {}
    for r in runs:
        if r.run_id in seen:
            raise ValueError(f"two runs share the id {r.run_id!r}: {seen[r.run_id]} and {r}")
        seen[r.run_id] = r
    return runs


def group_runs(runs: Sequence[RunSpec],
               shape_of: Callable[[RunSpec], Hashable]) -> list[tuple[Hashable, list[RunSpec]]]:
    """Runs grouped by (input shape, inputs), in first-appearance order; runs keep their order.

    shape_of(run) gives the static shape of the run's program (e.g. `(in_dim, tokens)`); runs of a
    group share the data tensor, so a group is also keyed by the inputs it reads.
    """
    groups: dict[Hashable, list[RunSpec]] = {}
    for r in runs:
        groups.setdefault((shape_of(r), r.setting.model, r.setting.inputs.features), []).append(r)
    return list(groups.items())


def chunks(runs: Sequence[RunSpec], size: int) -> list[list[RunSpec]]:
    """Split a group into vmapped launches of at most `size` runs (0 = all at once, memory permitting)."""
    if size < 0:
        raise ValueError(f"chunk size must be >= 0, got {size}")
    if size == 0 or size >= len(runs):
        return [list(runs)]
    return [list(runs[i:i + size]) for i in range(0, len(runs), size)]


def _parts(text: str, what: str) -> list[str]:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ValueError(f"--{what} is empty")
    return parts


def _no_repeats(values: Sequence, what: str) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"--{what}: {v!r} is given twice")
        seen.add(v)
