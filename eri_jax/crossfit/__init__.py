"""Cross-fitted (out-of-fold) train predictions of a finished run (`python -m eri_jax.crossfit`)."""
from eri_jax.crossfit.folds import assign_folds
from eri_jax.crossfit.run import OOF_FILE, CrossfitResult, crossfit, load_run_config, work_dir

__all__ = ["OOF_FILE", "CrossfitResult", "assign_folds", "crossfit", "load_run_config", "work_dir"]
