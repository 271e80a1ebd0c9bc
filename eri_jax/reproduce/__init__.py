"""`python -m eri_jax.reproduce`: every step of the paper reproduction as one resumable command.

plan.py builds the steps (commands, the run folders they write and the attributes those record),
execute.py runs them as subprocesses with timings, cli.py is the command line.
"""
from eri_jax.reproduce.execute import StepFailed, run_plan, timing_table
from eri_jax.reproduce.plan import Options, PlannedRun, Step, build_plan, planned_runs

__all__ = ["Options", "PlannedRun", "Step", "StepFailed", "build_plan", "planned_runs", "run_plan", "timing_table"]
