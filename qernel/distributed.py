"""Multi-process runs on JAX's distributed runtime (``jax.distributed``), one process per host or GPU.

Every process runs the same program; NetKet shards the Markov chains over the global devices of
all processes, and the jitted steps (sampling, local energies, the centered natural-gradient solve)
run as one SPMD program whose reductions XLA performs across processes (gloo collectives on CPU,
NCCL on GPUs). Host-side statistics gather the per-sample local energies to every process
(:func:`to_host`), so every process computes the same numbers; checkpoints, logs and the run lock
are written by process 0 only (:func:`is_main_process`).

Settings come from ``qernel train --distributed`` flags, else from the SLURM or Open MPI
environment (detected by :func:`jax.distributed.initialize` itself).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["initialize", "is_main_process", "process_count", "to_host"]


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> tuple[int, int]:
    """Start JAX's distributed runtime (before any other JAX call); returns ``(process_id, count)``.

    Args:
        coordinator: ``host:port`` of process 0 (None: from SLURM / Open MPI).
        num_processes: total number of processes (None: from the environment).
        process_id: this process's index in ``[0, num_processes)`` (None: from the environment).

    Raises:
        ValueError: inconsistent flags (named), before anything starts.
    """
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id must lie in [0, {num_processes}), got {process_id}")
    explicit = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(explicit) and not all(explicit):
        raise ValueError("give all of --coordinator, --num-processes and --process-id, or none of them "
                         "(then SLURM or Open MPI provide them)")
    if not any(explicit) and not _cluster_environment():
        raise ValueError("--distributed: no --coordinator/--num-processes/--process-id given and no SLURM or "
                         "Open MPI environment found")
    import jax

    # CPU processes exchange data through gloo (the default CPU runtime has no cross-process collectives)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    return jax.process_index(), jax.process_count()


def _cluster_environment() -> bool:
    env = os.environ
    return "SLURM_JOB_ID" in env or "OMPI_COMM_WORLD_SIZE" in env


def process_count() -> int:
    import jax

    return jax.process_count()


def is_main_process() -> bool:
    """True on process 0 (and in every single-process run): the process that writes files."""
    import jax

    return jax.process_index() == 0


def to_host(x) -> np.ndarray:
    """A (possibly sharded over processes) array as a NumPy array, identical on every process.

    A collective when the array spans several processes: every process must call it.
    """
    import jax

    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
