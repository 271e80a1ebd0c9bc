"""`python -m eri_jax.train`: train ViPER, the probe or the MuSe LSTM on a built TFDS dataset.

    python -m eri_jax.train --model viper --preset demo                  # demo dataset, small ViPER
    python -m eri_jax.train --model viper --modalities VATF --text-source vllava_p2
    python -m eri_jax.train --model probe --features vllava_emb_p1
    python -m eri_jax.train --model lstm --features fau

Each epoch trains on `train` (seeded shuffle per epoch, fixed batch shape, padded last batch), then
predicts `dev` and computes the mean Pearson r; orbax keeps the best epoch and the last one under
`<workdir>/<run>/`. Rerunning the same command resumes from the last checkpoint (and only evaluates if
training is complete). Afterwards the best epoch is evaluated on dev (and on test when it has labels)
into `<runs-dir>/<run>/` with `train_log.json` and `config.json`.

Defaults: `--preset` is `paper` for real data and `demo` for synthetic data; every unset option takes
the preset's value (training/presets.py, resolved in training/config.py); features are chosen as
described in inputs/assembly.py. The loop itself is eri_jax/training/loop.py.

Losses stay on the device during an epoch (no per-step host sync); at the end of the epoch a NaN or
infinite loss stops the run with the epoch and step where it first appeared, before that epoch is
saved. Each batch is split over every device (training/sharding.py), also over several processes or hosts
(`--coordinator/--num-processes/--process-id`, or a SLURM / Open MPI / Cloud TPU launch:
training/processes.py); the result equals the single-device run up to float rounding. A rerun under the
same run name with other settings is refused; only `--epochs` may change, and only to as many epochs as the
run holds or more (to train further). A kept checkpoint that no longer restores (a truncated file) is named
in one line; training resumes from the newest kept one that restores (training/checkpoints.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from eri_jax.inputs import assembly as feats
from eri_jax.models.factory import OUTPUT_BIAS_INITS
from eri_jax.models.probe import ACTIVATION_NAMES
from eri_jax.training.config import make_config
from eri_jax.training.loop import TrainingDiverged, train
from eri_jax.training.presets import MODELS, OPTIMIZERS, PRESETS, SCHEDULES
from eri_jax.training.processes import add_process_flags, describe_devices, is_writer, start_processes
from tfds_hume.cli_errors import cli_main


def _activation_name(text: str) -> str:
    return text.strip().lower().replace("-", "_")




def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eri_jax.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="hume_reaction/demo", help="TFDS name/config (default hume_reaction/demo)")
    p.add_argument("--data-dir", default=None, help="TFDS data dir (default: $TFDS_DATA_DIR or TFDS's)")
    p.add_argument("--model", choices=MODELS, default="viper")
    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="defaults per model (training/presets.py); default: paper for real data, demo for synthetic")
    p.add_argument("--features", default=None, help="comma-separated dataset feature keys, e.g. pixels,fau")
    p.add_argument("--modalities", default=None, help="ViPER modality letters, subset of VATF")
    p.add_argument("--text-source", choices=list(feats.TEXT_SOURCES), default=None,
                   help="what T means for --modalities (inputs/assembly.py)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="step: halve the LR every --halve-every epochs; constant")
    p.add_argument("--halve-every", type=int, default=None)
    p.add_argument("--activation", type=_activation_name, choices=ACTIVATION_NAMES, default=None,
                   help="probe activation (paper Table 4; default: the preset's, relu)")
    p.add_argument("--hidden", type=int, default=None,
                   help="probe / LSTM hidden width (default: the preset's)")
    p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                   help="z-score inputs with train-split statistics (default: the preset's)")
    p.add_argument("--output-bias", choices=OUTPUT_BIAS_INITS, default=None,
                   help="initial output bias: zero (the models' own init) or the train-label mean "
                        "(default: the preset's)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="compute dtype (parameters stay float32)")
    p.add_argument("--workdir", default="checkpoints", help="checkpoints go to <workdir>/<run>/")
    p.add_argument("--run-name", default=None, help="default: model-preset-features-seed")
    p.add_argument("--runs-dir", default="runs", help="evaluation outputs go to <runs-dir>/<run>/")
    p.add_argument("--init-from", default=None, help="ViPER: Hugging Face Perceiver weights to start from")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow --init-from to unpickle a whole model (only for files you trust)")
    p.add_argument("--perceiver-config", default=None, metavar="CONFIG.JSON",
                   help="Hugging Face PerceiverConfig of an --init-from state dict (default: the pickled "
                        "model's own config, else ViPER's published one where the shapes are ViPER's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_process_flags(p)
    return p


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    joined = start_processes(args)  # before any JAX computation
    from eri_jax.inputs.dataset import dataset_meta  # deferred: imports tensorflow_datasets (after --help)

    try:
        meta = dataset_meta(args.dataset, args.data_dir)
        cfg = make_config(args, synthetic=meta.synthetic)
        print(f"run {cfg.run_name}: {cfg.model} ({cfg.preset} preset) on {cfg.dataset} "
              f"[{'synthetic' if meta.synthetic else meta.dataset}], features {','.join(cfg.features)}",
              file=sys.stderr)
        print(f"{describe_devices(joined)}; each batch is split over them", file=sys.stderr)
        result = train(cfg, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not is_writer():  # process 0 wrote the outputs and reports them
        return 0
    mean = result.metrics["dev"].get("mean_pearson")
    print(f"best epoch {result.best_epoch}/{result.last_epoch}: dev mean Pearson "
          f"{'undefined' if mean is None else format(mean, '.4g')}; outputs in {Path(cfg.runs_dir) / cfg.run_name}, "
          f"checkpoints in {cfg.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
