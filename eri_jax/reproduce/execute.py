"""Running the plan: one subprocess per step, timed, stopping at the first failure.

Each step runs as `<python> -m <module> <args>` in its own process (torch and jax never share one, and
each command's own resume applies). Its output streams through unchanged. A step whose `done` files
exist is skipped. A failing step raises `StepFailed` naming the step, its command and exit code; the
steps after it do not run.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eri_jax.reproduce.plan import Step
from eri_jax.result_files import write_json

Runner = Callable[[list[str]], int]  # argv -> exit code


class StepFailed(RuntimeError):
    """A step exited with a non-zero code; `timings` holds the steps up to and including it."""

    def __init__(self, step: Step, command: list[str], code: int, timings: list[dict[str, Any]]):
        self.step, self.command, self.code, self.timings = step, command, code, timings
        super().__init__(f"step {step.name!r} failed with exit code {code} (its own messages above); fix the "
                         f"cause and rerun the same command (finished steps are skipped). The step:\n"
                         f"  {shlex.join(command)}")


def command(step: Step, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", step.module, *step.args]


def subprocess_runner(argv: list[str]) -> int:
    """Run `argv`, output straight to this process's stdout/stderr; its exit code."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # keep the steps' output in order with ours when piped
    return subprocess.run(argv, env=env, check=False).returncode


@dataclasses.dataclass
class Timing:
    name: str
    command: str
    status: str  # "ran", "skipped" or "failed"
    wall_s: float
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_plan(plan: Sequence[Step], *, runner: Runner = subprocess_runner, python: str | None = None,
             log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run (or skip) every step in order; the timing entries. Raises StepFailed at the first failure."""
    timings: list[dict[str, Any]] = []
    for k, step in enumerate(plan, 1):
        argv = command(step, python)
        shown = shlex.join(argv)
        if step.is_done():
            log(f"[{k}/{len(plan)}] {step.name}: skipped ({', '.join(map(str, step.done))} exists)")
            timings.append(Timing(step.name, shown, "skipped", 0.0).to_json())
            continue
        log(f"[{k}/{len(plan)}] {step.name}\n  $ {shown}")
        t0 = time.perf_counter()
        code = runner(argv)
        wall = round(time.perf_counter() - t0, 2)
        if code != 0:
            timings.append(Timing(step.name, shown, "failed", wall, code).to_json())
            raise StepFailed(step, argv, code, timings)
        log(f"[{k}/{len(plan)}] {step.name}: done in {wall:.1f} s")
        timings.append(Timing(step.name, shown, "ran", wall, code).to_json())
    return timings


def timing_table(timings: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the steps' wall times with the total."""
    width = max([len(t["name"]) for t in timings] + [4])
    lines = [f"| {'step':<{width}} | status  | wall s |", f"|{'-' * (width + 2)}|---------|-------:|"]
    for t in timings:
        lines.append(f"| {t['name']:<{width}} | {t['status']:<7} | {t['wall_s']:6.1f} |")
    total = sum(t["wall_s"] for t in timings)
    lines.append(f"| {'total':<{width}} |         | {total:6.1f} |")
    return "\n".join(lines)


def write_timings(path: Path, timings: Sequence[dict[str, Any]], info: dict[str, Any]) -> None:
    """`timings.json`: the options, each step's command / status / wall time, and the total."""
    write_json(path, {**info, "steps": list(timings), "total_wall_s": round(sum(t["wall_s"] for t in timings), 2)})
