"""Pair correlation function g(r) with minimum-image distances, spin-resolved, per group.

For each sample the minimum-image distances ``|r_i - r_j|`` of all pairs ``i < j``
(:meth:`~qernel.geometry.lattice.Supercell.minimum_image`) are histogrammed in radial bins up to
``r_max <=`` the inscribed radius of the supercell's Wigner-Seitz cell (beyond it a circle no
longer fits in the cell and the shell area below is wrong). The normalisation

    g_ab(bin) = <pairs of species (a, b) in the bin> / (n_pairs_ab * pi (r_hi^2 - r_lo^2) / A)

with ``n_pairs = N_a (N_a - 1) / 2`` for like spins and ``N_a N_b`` for unlike spins makes
``g = 1`` exactly for uncorrelated particles uniform in the cell (the minimum-image displacement
of two such particles is uniform on the Wigner-Seitz cell). Channels: ``"total"`` (all pairs, with
``n_pairs = N (N - 1) / 2``) and, when both spins are present, ``"up_up"``, ``"up_down"``,
``"down_down"`` (like-spin channels only if they have at least one pair).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..geometry.hilbert import split_sample
from ..geometry.lattice import Supercell
from .density import require_supercell
from .estimates import Estimate, estimate, to_json_value
from .groups import ParameterGroups, auto_batch_size, check_samples, groups_from_state, map_samples, resolve_groups

__all__ = ["PairCorrelation", "pair_correlation", "measure_pair_correlation", "PAIR_CHANNELS"]

#: spin channels, in the order of the kernel's output rows
PAIR_CHANNELS = ("up_up", "up_down", "down_down")


@dataclass(frozen=True)
class _PairKernel:
    """One sample -> (3, n_bins) pair counts per spin channel (up-up, up-down, down-down)."""

    supercell: Supercell
    n_up: int
    n_electrons: int
    n_bins: int
    r_max: float

    def __call__(self, x):
        n = self.n_electrons
        positions, _ = split_sample(x, n)
        i, j = np.triu_indices(n, k=1)  # static
        channel = (i >= self.n_up).astype(np.int32) + (j >= self.n_up).astype(np.int32)  # 0, 1, 2
        distance = jnp.linalg.norm(self.supercell.minimum_image(positions[i] - positions[j]), axis=-1)
        index = jnp.floor(distance * (self.n_bins / self.r_max)).astype(jnp.int32)
        inside = index < self.n_bins
        flat = jnp.where(inside, jnp.asarray(channel) * self.n_bins + index, 3 * self.n_bins)
        counts = jnp.zeros(3 * self.n_bins + 1, x.dtype).at[flat].add(1.0)
        return counts[:-1].reshape(3, self.n_bins)


@dataclass(frozen=True)
class PairCorrelation:
    """g(r) of one group.

    Attributes:
        parameters: the group's carried parameter values (user units).
        r_edges: (n_bins + 1,) bin edges (internal length units).
        g: ``{channel: Estimate (n_bins,)}``, channels as in the module docstring.
        n_samples: number of samples of the group.
    """

    parameters: dict[str, float]
    r_edges: np.ndarray
    g: dict[str, Estimate]
    n_samples: int

    @property
    def r(self) -> np.ndarray:
        """(n_bins,) bin centers."""
        return 0.5 * (self.r_edges[1:] + self.r_edges[:-1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": dict(self.parameters),
            "r_edges": to_json_value(self.r_edges),
            "r": to_json_value(self.r),
            "g": {name: est.to_dict() for name, est in self.g.items()},
            "n_samples": self.n_samples,
        }


def pair_correlation(
    samples,
    hamiltonian,
    *,
    n_bins: int = 40,
    r_max: float | None = None,
    groups: ParameterGroups | None = None,
    batch_size: int | None = None,
) -> dict[tuple[float, ...], PairCorrelation]:
    """Radial pair correlation ``g(r)`` (total and spin-resolved) with error bars, per group.

    Args:
        samples: (n_chains, chain_length, 2N + P).
        hamiltonian: the periodic Hamiltonian of the samples (N >= 2).
        n_bins: radial bins (>= 1) on ``[0, r_max)``.
        r_max: outer radius, ``0 < r_max <= supercell.inscribed_radius`` (default: that radius).
        groups: chain groups (default: from the carried-parameter columns).
        batch_size: samples per jitted batch (default automatic).

    Returns:
        ``{group key: PairCorrelation}``.
    """
    samples = check_samples(samples, hamiltonian)
    cell = require_supercell(hamiltonian)
    n, n_up, n_down = hamiltonian.n_electrons, hamiltonian.n_up, hamiltonian.n_down
    if n < 2:
        raise ValueError(f"g(r) needs at least 2 electrons, got N={n}")
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    inscribed = cell.inscribed_radius
    r_max = inscribed if r_max is None else float(r_max)
    if not (math.isfinite(r_max) and 0 < r_max <= inscribed * (1 + 1e-12)):
        raise ValueError(f"r_max must lie in (0, inscribed radius {inscribed:.6g}], got {r_max}")
    groups = resolve_groups(samples, hamiltonian, groups)
    n_pairs_sample = n * (n - 1) // 2
    if batch_size is None:
        batch_size = auto_batch_size(40 * n_pairs_sample)
    counts = map_samples(_PairKernel(cell, n_up, n, int(n_bins), r_max), samples, batch_size=batch_size)

    edges = np.linspace(0.0, r_max, int(n_bins) + 1)
    shell = np.pi * np.diff(edges**2) / cell.area  # fraction of the cell in each annulus
    n_pairs = {"up_up": n_up * (n_up - 1) / 2, "up_down": n_up * n_down, "down_down": n_down * (n_down - 1) / 2}
    channels = {"total": (counts.sum(axis=-2), n_pairs_sample)}
    if n_up and n_down:
        for c, name in enumerate(PAIR_CHANNELS):
            if n_pairs[name] > 0:
                channels[name] = (counts[..., c, :], n_pairs[name])
    names = list(channels)
    normalised = jnp.stack(
        [channels[name][0] / jnp.asarray(channels[name][1] * shell, counts.dtype) for name in names], axis=-2
    )  # (n_chains, L, n_channels, n_bins)

    results = {}
    for g in groups.present:
        members = np.flatnonzero(groups.members(g))
        est = estimate(normalised[members])
        results[groups.key(g)] = PairCorrelation(
            parameters=groups.parameters(g),
            r_edges=edges,
            g={name: est[k] for k, name in enumerate(names)},
            n_samples=int(len(members) * samples.shape[1]),
        )
    return results


def measure_pair_correlation(vstate, hamiltonian, **options) -> dict[tuple[float, ...], PairCorrelation]:
    """:func:`pair_correlation` of ``vstate.samples`` with the groups of its sampler."""
    return pair_correlation(vstate.samples, hamiltonian, groups=groups_from_state(vstate, hamiltonian), **options)
