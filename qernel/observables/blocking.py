"""Blocking (Flyvbjerg-Petersen) error analysis of Markov-chain series, per chain and pooled.

Flyvbjerg and Petersen, J. Chem. Phys. 91, 461 (1989): averaging neighbouring pairs of a
correlated series ("blocking") leaves the mean unchanged; the naive error of the mean computed
from the block means grows with the block size and reaches a plateau, the true error, once the
blocks are longer than the autocorrelation time.

Here the input is one series per Markov chain, shape (n_chains, n_steps) (e.g. the local
energies of one parameter group). Every chain is blocked along its own time axis (never across
chains); at level ``k`` each chain contributes ``n_steps // 2**k`` block means of ``2**k``
samples, and the error of the overall mean is the standard error of all block means pooled over
the chains (the chains are independent). The plateau is the first level whose error is not
exceeded, by more than its own statistical uncertainty ``e_j / sqrt(2 (M_j - 1))`` (``M_j`` pooled
blocks), by any later level with at least :data:`MIN_BLOCKS` blocks.

Returned quantities:

* ``error``: error of the mean at the plateau;
* ``tau``: integrated autocorrelation time in the convention ``var(mean) = tau sigma^2 / n``,
  ``tau = 1 + 2 sum_{t>=1} rho(t)`` (= (1 + rho) / (1 - rho) for an AR(1) chain with lag-1
  correlation ``rho``); NetKet's ``tau_corr`` is ``(tau - 1) / 2`` in this convention;
* ``n_effective = n / tau``: the number of independent samples the estimate is worth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BlockingEstimate", "blocking", "MIN_BLOCKS"]

#: pooled blocks a level needs to enter the plateau search (its error is then known to ~13 %)
MIN_BLOCKS = 32


@dataclass(frozen=True)
class BlockingEstimate:
    """Result of :func:`blocking` (scalars, in the units of the input series).

    Attributes:
        mean: mean over all samples.
        error: error of the mean at the blocking plateau (0 for a constant series).
        tau: integrated autocorrelation time in samples (``var(mean) = tau var / n``).
        n_effective: effective number of independent samples ``n / tau``.
        level: blocking level of the plateau (block length ``2**level`` samples).
        errors: the error estimate at every level, shape (n_levels,) (the blocking curve).
        converged: False if no level had :data:`MIN_BLOCKS` blocks, or the curve was still
            rising at the last usable level (then ``error`` is a lower bound: sample longer).
    """

    mean: float
    error: float
    tau: float
    n_effective: float
    level: int
    errors: np.ndarray
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean, "error": self.error, "tau": self.tau, "n_effective": self.n_effective,
            "level": self.level, "converged": self.converged,
        }


def _level_errors(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Errors of the mean and pooled block counts at levels 0, 1, ... (while >= 2 blocks)."""
    errors, counts = [], []
    blocks = data
    while blocks.shape[1] >= 1 and blocks.size >= 2:
        m = blocks.size
        errors.append(np.sqrt(np.var(blocks, ddof=1) / m))
        counts.append(m)
        if blocks.shape[1] < 2:
            break
        even = blocks.shape[1] // 2 * 2
        blocks = 0.5 * (blocks[:, 0:even:2] + blocks[:, 1:even:2])
    return np.asarray(errors), np.asarray(counts)


def blocking(data) -> BlockingEstimate:
    """Blocking analysis of one real series per Markov chain.

    Args:
        data: real array (n_chains, n_steps), chains independent, ``n_chains * n_steps >= 2``.
            Steps that do not fill a block at a level are dropped at that level (tail of each chain).

    Returns:
        :class:`BlockingEstimate`.
    """
    data = np.asarray(data)
    if np.iscomplexobj(data):
        raise ValueError("blocking takes real data; analyse real and imaginary parts separately")
    if data.ndim != 2 or data.size < 2:
        raise ValueError(f"data must have shape (n_chains, n_steps) with at least 2 samples, got {data.shape}")
    data = data.astype(float)
    if not np.all(np.isfinite(data)):
        raise ValueError("data must be finite")
    n = data.size
    mean = float(np.mean(data))
    errors, counts = _level_errors(data)
    naive = errors[0]
    if naive <= np.finfo(float).eps * max(abs(mean), 1.0):  # constant series: exact mean
        return BlockingEstimate(mean, 0.0, 1.0, float(n), 0, errors, True)
    usable = np.flatnonzero(counts >= MIN_BLOCKS)
    if usable.size == 0:
        return BlockingEstimate(mean, float(naive), 1.0, float(n), 0, errors, False)
    uncertainty = errors / np.sqrt(2.0 * (counts - 1))
    level, converged = int(usable[-1]), False
    for k in usable:
        later = usable[usable > k]
        if np.all(errors[later] <= errors[k] + uncertainty[later]):
            level, converged = int(k), bool(later.size > 0)
            break
    error = float(errors[level])
    tau = float((error / naive) ** 2)
    return BlockingEstimate(mean, error, tau, float(n / tau), level, errors, converged)
