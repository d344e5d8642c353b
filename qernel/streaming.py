"""Evaluation in blocks: peak memory independent of the number of samples.

A measurement of ``n_samples`` draws ``n_blocks`` blocks of ``block_size`` samples from the same
Markov chains (each block continues where the last one stopped) and keeps only the per-sample
local energies, in chain order ``(n_chains, n_steps)``, plus the per-group acceptance; samples and
the local-energy intermediates of one block are freed before the next. The per-chain series is
what an autocorrelation-aware error analysis (NetKet's statistics, blocking) consumes.

Observables with many components per sample (a density map's bins, S(q) on many shells) are not
kept per sample: :class:`ChainSums` keeps per-chain sums over the fixed time bins NetKet's error
estimator uses, so their memory is independent of the number of samples and their estimates equal
those of the whole series (:func:`qernel.observables.estimate`) up to rounding.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["stream_local_energies", "check_fits_in_memory", "available_memory_bytes", "n_blocks_for",
           "ChainSums"]


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

    Kept: ``bytes_per_sample_kept`` per sample (evaluate: one complex local energy, 16 bytes; the
    scan: :attr:`qernel.scan.ScanObservables.BYTES_PER_SAMPLE`); one block of samples and its
    intermediates is bounded separately by ``block_size`` and the local-energy ``chunk_size``.

    Raises:
        MemoryError: naming the estimate and the options that bound it.
    """
    available = available_memory_bytes() if available is None else available
    need = int(n_samples) * bytes_per_sample_kept
    if available is not None and need > available // 2:
        raise MemoryError(
            f"n_samples={n_samples} keeps {need / 2**30:.1f} GiB of per-sample values, more than half the "
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
    from .distributed import to_host
    from .sampler import per_group_acceptance

    if int(n_blocks) != n_blocks or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks}")
    series, acceptance = [], []
    for _ in range(int(n_blocks)):
        vstate.sample()
        # to_host: in a multi-process run every process gets all chains (a collective)
        series.append(to_host(vstate.local_estimators(operator).data))
        acceptance.append(to_host(per_group_acceptance(vstate)))
        vstate.reset()  # drop this block's samples before drawing the next
    return np.concatenate(series, axis=1), np.mean(acceptance, axis=0)


def n_blocks_for(n_samples: int, block_samples: int) -> int:
    """Blocks of ``block_samples`` needed for at least ``n_samples`` samples."""
    return max(1, math.ceil(int(n_samples) / int(block_samples)))


#: Number of time bins per chain of NetKet's error estimator (``nk.stats.statistics``, whose
#: fallback for fewer than 32 chains averages blocks of ``chain_length // 32`` samples).
_NETKET_BLOCKS = 32


class ChainSums:
    """Streaming estimate of a per-sample vector observable from per-chain bin sums.

    Blocks of the series ``(n_chains, block_length, K)`` arrive in chain order (each block
    continues the chains of the previous one); the total chain length ``L`` is known in advance.
    Kept: per chain, the sum of every time bin of ``max(1, L // 32)`` samples (NetKet's blocks),
    the sum of the trailing samples no bin holds, and the sum of squares: ``(n_chains, 34, K)``
    numbers whatever the number of samples. :meth:`estimate` applies the formulas of NetKet's
    default ``nk.stats.statistics`` (chain-mean spread for >= 32 chains, else block means; NaN
    when neither is reliable) and qernel's exact-constant rule, so it equals
    :func:`qernel.observables.estimate` of the whole series up to rounding. Sums are taken
    relative to the first block's mean per chain and component (stable, and exact for constant
    series).

    Args:
        n_chains: chains of the series (rows).
        chain_length: total samples per chain ``L`` once every block is added.
        shape: per-sample shape of the observable (``()`` for a scalar).
    """

    def __init__(self, n_chains: int, chain_length: int, shape: tuple[int, ...] = ()) -> None:
        if n_chains < 1 or chain_length < 1:
            raise ValueError(f"n_chains and chain_length must be >= 1, got {n_chains}, {chain_length}")
        self.shape = tuple(shape)
        self.n_chains, self.chain_length = int(n_chains), int(chain_length)
        self.bin_length = max(1, self.chain_length // _NETKET_BLOCKS)
        self.n_bins = self.chain_length // self.bin_length
        k = int(np.prod(self.shape, dtype=int))
        self._bins = np.zeros((self.n_chains, self.n_bins + 1, k))  # last: samples past the last bin
        self._squares = np.zeros((self.n_chains, k))
        self._shift: np.ndarray | None = None
        self.position = 0

    def add(self, block) -> None:
        """Add the next ``(n_chains, block_length, *shape)`` samples of every chain."""
        block = np.asarray(block, dtype=float)
        if block.shape[:1] != (self.n_chains,) or block.shape[2:] != self.shape:
            raise ValueError(f"block must have shape ({self.n_chains}, length, *{self.shape}), got {block.shape}")
        length = block.shape[1]
        if self.position + length > self.chain_length:
            raise ValueError(f"{self.position + length} samples per chain exceed chain_length={self.chain_length}")
        flat = block.reshape(self.n_chains, length, -1)
        if self._shift is None:
            self._shift = flat.mean(axis=1)  # (n_chains, K)
        flat = flat - self._shift[:, None, :]
        index = np.minimum((self.position + np.arange(length)) // self.bin_length, self.n_bins)
        for b in np.unique(index):
            self._bins[:, b] += flat[:, index == b].sum(axis=1)
        self._squares += np.square(flat).sum(axis=1)
        self.position += length

    def estimate(self, chains=None):
        """:class:`~qernel.observables.Estimate` (fields of ``shape``) over ``chains`` (indices;
        default all), once ``chain_length`` samples per chain were added."""
        from .observables.estimates import Estimate

        if self.position != self.chain_length:
            raise ValueError(f"{self.position} of chain_length={self.chain_length} samples per chain added")
        chains = np.arange(self.n_chains) if chains is None else np.asarray(chains)
        bins, squares, shift = self._bins[chains], self._squares[chains], self._shift[chains]
        n_chains, length = len(chains), self.chain_length
        size = n_chains * length
        chain_sums = bins.sum(axis=1)  # (n_chains, K), relative to shift
        chain_means = chain_sums / length + shift
        mean = chain_means.mean(axis=0)
        # population variance of all samples from each chain's squares about its own shift
        centered = shift - mean
        total_squares = (squares + 2 * centered * chain_sums + length * centered**2).sum(axis=0)
        variance = np.maximum(total_squares / size, 0.0)
        batch_var = chain_means.var(axis=0)
        block_means = bins[:, : self.n_bins] / self.bin_length + shift[:, None, :]
        n_blocks = n_chains * self.n_bins
        block_var = block_means.reshape(n_blocks, -1).var(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tau_batch = ((size / n_chains) * batch_var / variance - 1) * 0.5
            tau_block = ((size / n_blocks) * block_var / variance - 1) * 0.5
        batch_good = (tau_batch < 6 * length) & (n_chains >= _NETKET_BLOCKS)
        block_good = (tau_block < 6 * self.bin_length) & (n_blocks >= _NETKET_BLOCKS)
        error = np.where(batch_good, np.sqrt(batch_var / n_chains),
                         np.where(block_good, np.sqrt(block_var / n_blocks), np.nan))
        tau = np.where(batch_good, np.clip(tau_batch, 0, None), np.where(block_good, np.clip(tau_block, 0, None), np.nan))
        constant = variance <= (np.finfo(float).eps * np.abs(mean)) ** 2  # as qernel.observables.estimate
        error, tau = np.where(constant, 0.0, error), np.where(constant, 0.0, tau)
        return Estimate(*(a.reshape(self.shape) for a in (mean, error, tau, variance)))
