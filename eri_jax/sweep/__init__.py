"""Compiled sweeps (`python -m eri_jax.sweep`): seeds x learning rates x activations x inputs.

Runs that share an input shape train together under `jax.vmap` in one compiled program, whole epochs
on the device (engine.py); grid.py builds the runs and groups, tables.py the mean ± std tables,
outputs.py the per-run files (predictions, best parameters) retrievable by run id.
"""
from eri_jax.sweep.engine import Engine, EngineConfig, SplitArrays, probe_builder, run_epochs, viper_builder
from eri_jax.sweep.grid import TABLES, Inputs, RunSpec, Setting, expand_grid, group_runs
from eri_jax.sweep.outputs import load_run, restore_model
from eri_jax.sweep.runner import SweepConfig, run_sweep, train_runs
from eri_jax.sweep.tables import aggregate, write_tables

__all__ = ["Engine", "EngineConfig", "SplitArrays", "probe_builder", "viper_builder", "run_epochs",
           "TABLES", "Inputs", "RunSpec", "Setting", "expand_grid", "group_runs", "load_run",
           "restore_model", "SweepConfig", "run_sweep", "train_runs", "aggregate", "write_tables"]
