"""Several processes (hosts) as one JAX program: joining them, and saying what a command runs on.

`eri_jax.train` and `eri_jax.sweep` join `jax.distributed` before any JAX computation when asked to:
  - flags: `--coordinator HOST:PORT --num-processes N --process-id I` (one command per process);
  - a scheduler's environment: a SLURM step with several tasks (`srun -n N ...`), an Open MPI launch
    (`mpirun -np N ...`) or a Cloud TPU slice on GKE (several `TPU_WORKER_HOSTNAMES`) is joined
    without flags, JAX reading the coordinator, the process count and index from it;
    `--join-cluster` asks for that detection where nothing here sees several processes (a Cloud TPU VM
    slice, whose hosts JAX learns from the TPU metadata server), `--no-join-cluster` turns it off.
Every process then runs the same program over the global device mesh; process 0 writes the outputs.
"""
from __future__ import annotations

import argparse
import os
from typing import Mapping

import jax


def add_process_flags(p: argparse.ArgumentParser) -> None:
    """The flags of `start_processes` (one group, the same in every command)."""
    g = p.add_argument_group("several processes / hosts (jax.distributed)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="address of process 0, to run over several processes/hosts")
    g.add_argument("--num-processes", type=int, default=None, help="with --coordinator: how many processes")
    g.add_argument("--process-id", type=int, default=None, help="with --coordinator: this process's index")
    g.add_argument("--join-cluster", action=argparse.BooleanOptionalAction, default=None,
                   help="join the processes a scheduler started (SLURM, Open MPI, Cloud TPU; default: when its "
                        "environment names several processes)")


def cluster_in_environment(env: Mapping[str, str] = os.environ) -> str | None:
    """The scheduler whose environment names several processes of this job (None if none does)."""
    def count(name: str) -> int:
        try:
            return int(env.get(name, "1"))
        except ValueError:
            return 1

    slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
    if all(k in env for k in slurm) and count("SLURM_NTASKS") > 1:
        return f"SLURM ({env['SLURM_NTASKS']} tasks)"
    if "OMPI_MCA_orte_hnp_uri" in env and count("OMPI_COMM_WORLD_SIZE") > 1:
        return f"Open MPI ({env['OMPI_COMM_WORLD_SIZE']} processes)"
    hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]
    if len(hosts) > 1:
        return f"Cloud TPU ({len(hosts)} hosts)"
    return None


def start_processes(args: argparse.Namespace, env: Mapping[str, str] = os.environ) -> str | None:
    """Join the other processes before any JAX computation, if the flags or the environment say so.

    Returns how they were found ("--coordinator", the scheduler's name) or None for a single process.
    """
    given = [args.coordinator is not None, args.num_processes is not None, args.process_id is not None]
    if any(given):
        if not all(given):
            raise ValueError("--coordinator, --num-processes and --process-id go together")
        if not 0 <= args.process_id < args.num_processes:
            raise ValueError(f"--process-id {args.process_id} is not in 0..{args.num_processes - 1}")
        if args.join_cluster:
            raise ValueError("--join-cluster reads the scheduler's environment; --coordinator names the processes "
                             "itself: pass one of the two")
        _use_gloo_on_cpu()
        jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
        return "--coordinator"
    found = cluster_in_environment(env)
    if args.join_cluster is False or (found is None and not args.join_cluster):
        return None
    _use_gloo_on_cpu()
    try:
        jax.distributed.initialize()  # JAX's cluster detection (SLURM, Open MPI, Cloud TPU, Kubernetes)
    except ValueError as e:
        raise ValueError(f"--join-cluster: JAX finds no SLURM, Open MPI, Cloud TPU or Kubernetes job here ({e}); "
                         "pass --coordinator/--num-processes/--process-id instead") from None
    return found or "the scheduler's environment"


def _use_gloo_on_cpu() -> None:
    # CPU processes exchange arrays over gloo (XLA:CPU has no collectives without it); GPUs/TPUs ignore it.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")


def describe_devices(joined: str | None = None) -> str:
    """E.g. `4 devices on 2 hosts (cpu), joined by SLURM (2 tasks)`: every device of every process, the
    backend, and how the processes were joined (`start_processes`' answer)."""
    n, hosts = jax.device_count(), jax.process_count()
    how = f", joined by {joined}" if joined else ""
    return f"{n} device{'s' * (n != 1)} on {hosts} host{'s' * (hosts != 1)} ({jax.default_backend()}){how}"


def is_writer() -> bool:
    """Whether this process writes the outputs (process 0; the others compute the same results)."""
    return jax.process_index() == 0
