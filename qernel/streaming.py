"""Evaluation in blocks: peak memory independent of the number of samples.

A measurement of ``n_samples`` draws ``n_blocks`` blocks of ``block_size`` samples from the same
Markov chains (each block continues where the last one stopped) and keeps only the per-sample
local energies, in chain order ``(n_chains, n_steps)``, plus the per-group acceptance; samples and
the local-energy intermediates of one block are freed before the next. The per-chain series is
what an autocorrelation-aware error analysis (NetKet's statistics, blocking) consumes.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["stream_local_energies", "check_fits_in_memory", "available_memory_bytes", "n_blocks_for"]


def available_memory_bytes() -> int | None:
    """Memory available to this process now (``MemAvailable`` of ``/proc/meminfo``), or None."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(n_samples: int, block_size: int, bytes_per_sample_kept: int = 16,
                         available: int | None = None) -> None:
    """Refuse, before any compute, a request whose kept per-sample series cannot fit in memory.

    Kept: one complex local energy (16 bytes) per sample; one block of samples and its
    intermediates is bounded separately by ``block_size`` and the local-energy ``chunk_size``.

    Raises:
        MemoryError: naming the estimate and the options that bound it.
    """
    available = available_memory_bytes() if available is None else available
    need = int(n_samples) * bytes_per_sample_kept
    if available is not None and need > available // 2:
        raise MemoryError(
            f"n_samples={n_samples} keeps {need / 2**30:.1f} GiB of local energies, more than half the "
            f"{available / 2**30:.1f} GiB available: use fewer samples (memory per block is bounded by "
            f"block_size={block_size} and sampler.chunk_size)"
        )


def stream_local_energies(vstate, operator, n_blocks: int):
    """Sample ``n_blocks`` blocks of ``vstate.n_samples`` and return the kept series.

    Args:
        vstate: an ``MCState`` whose ``n_samples`` is the block size (its ``chunk_size`` bounds
            the local-energy memory within a block).
        operator: the energy operator.
        n_blocks: number of blocks (>= 1).

    Returns:
        ``(local_energies, acceptance)``: (n_chains, n_blocks * chain_length) local energies in
        internal units, chain order (NumPy, on the host), and the (n_groups,) acceptance averaged
        over the blocks.
    """
    from .sampler import per_group_acceptance

    if int(n_blocks) != n_blocks or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks}")
    series, acceptance = [], []
    for _ in range(int(n_blocks)):
        vstate.sample()
        series.append(np.asarray(vstate.local_estimators(operator).data))
        acceptance.append(np.asarray(per_group_acceptance(vstate)))
        vstate.reset()  # drop this block's samples before drawing the next
    return np.concatenate(series, axis=1), np.mean(acceptance, axis=0)


def n_blocks_for(n_samples: int, block_samples: int) -> int:
    """Blocks of ``block_samples`` needed for at least ``n_samples`` samples."""
    return max(1, math.ceil(int(n_samples) / int(block_samples)))
