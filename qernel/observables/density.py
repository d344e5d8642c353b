"""Charge density on the supercell: a histogram on a grid of fractional coordinates, per group.

The supercell ``r = s @ L`` (rows of ``L`` = supercell vectors, :mod:`qernel.geometry.lattice`)
is cut into ``n_bins x n_bins`` equal parallelograms in the fractional coordinates
``s = (s_1, s_2) in [0, 1)^2``; bin ``[i, j]`` holds ``i/n <= s_1 < (i+1)/n``, ``j/n <= s_2 < (j+1)/n``.
The density of a bin is the mean number of electrons in it divided by its area
``A / n_bins^2`` (internal length units, so electrons per ``a_M^2`` for moiré systems): it
integrates to N (``sum density * bin_area = N``). Each bin's error bar comes from the per-sample
counts (autocorrelation-aware, :mod:`qernel.observables.estimates`).

Memory: per-sample counts of ``bin_chunk`` bins at a time are kept, i.e.
``n_samples x bin_chunk`` floats.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..geometry.lattice import Supercell
from .estimates import Estimate, estimate, to_json_value
from .groups import (
    ParameterGroups,
    auto_batch_size,
    check_samples,
    groups_from_state,
    map_samples,
    resolve_groups,
)

__all__ = ["DensityMap", "density_map", "density_samples", "measure_density_map", "spin_slice", "require_supercell"]


def require_supercell(hamiltonian) -> Supercell:
    """The Hamiltonian's periodic supercell; ValueError for open systems."""
    cell = hamiltonian.supercell
    if cell is None:
        raise ValueError(f"this observable needs a periodic supercell; {hamiltonian!r} has open boundaries")
    return cell


def spin_slice(hamiltonian, spin: str | None) -> tuple[int, int]:
    """(first electron, number of electrons) of ``spin`` in {None (all), "up", "down"}."""
    if spin is None:
        return 0, hamiltonian.n_electrons
    if spin == "up":
        return 0, hamiltonian.n_up
    if spin == "down":
        return hamiltonian.n_up, hamiltonian.n_down
    raise ValueError(f"spin must be None, 'up' or 'down', got {spin!r}")


@dataclass(frozen=True)
class DensityMap:
    """Electron density histogram of one parameter group.

    Attributes:
        parameters: the group's carried parameter values (user units).
        spin: ``None`` (all electrons), ``"up"`` or ``"down"``.
        n_electrons: electrons counted (the map integrates to this number).
        density: :class:`Estimate` of shape (n_bins, n_bins), electrons per internal area unit;
            ``density.mean[i, j]`` is the bin at fractional coordinates ``((i+1/2)/n, (j+1/2)/n)``.
        bin_area: area of one bin (internal units).
        supercell_vectors: (2, 2) supercell vectors as rows (internal length units), to map bins
            to Cartesian positions ``r = s @ supercell_vectors``.
        n_samples: number of samples of the group.
    """

    parameters: dict[str, float]
    spin: str | None
    n_electrons: int
    density: Estimate
    bin_area: float
    supercell_vectors: np.ndarray
    n_samples: int

    @property
    def n_bins(self) -> int:
        return int(self.density.shape[0])

    @property
    def fractional_centers(self) -> np.ndarray:
        """(n_bins,) fractional coordinate of the bin centers along each supercell vector."""
        return (np.arange(self.n_bins) + 0.5) / self.n_bins

    @property
    def cartesian_centers(self) -> np.ndarray:
        """(n_bins, n_bins, 2) Cartesian bin centers (internal length units)."""
        s = self.fractional_centers
        grid = np.stack(np.meshgrid(s, s, indexing="ij"), axis=-1)
        return grid @ self.supercell_vectors

    @property
    def fractional_centres(self) -> np.ndarray:
        """Deprecated spelling of :attr:`fractional_centers`."""
        _warn_spelling("fractional_centres", "fractional_centers")
        return self.fractional_centers

    @property
    def cartesian_centres(self) -> np.ndarray:
        """Deprecated spelling of :attr:`cartesian_centers`."""
        _warn_spelling("cartesian_centres", "cartesian_centers")
        return self.cartesian_centers

    @property
    def contrast(self) -> float:
        """``(max - min) / mean`` of the mean density map (a quick, error-free summary)."""
        mean = np.asarray(self.density.mean)
        return float((mean.max() - mean.min()) / mean.mean())

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": dict(self.parameters),
            "spin": self.spin,
            "n_electrons": self.n_electrons,
            "n_bins": self.n_bins,
            "bin_area": self.bin_area,
            "supercell_vectors": to_json_value(self.supercell_vectors),
            "density": self.density.to_dict(),
            "n_samples": self.n_samples,
        }


@dataclass(frozen=True)
class _CountsKernel:
    """One sample -> electron counts of bins ``start .. start + chunk - 1`` (flat index i * n + j)."""

    supercell: Supercell
    first: int
    count: int
    n_bins: int
    chunk: int

    def __call__(self, x, start):
        positions = x[2 * self.first : 2 * (self.first + self.count)].reshape(self.count, 2)
        s = self.supercell.to_fractional(positions)
        s = s - jnp.floor(s)  # robust to samples a rounding error outside [0, 1)
        index = jnp.clip(jnp.floor(s * self.n_bins).astype(jnp.int32), 0, self.n_bins - 1)
        flat = index[:, 0] * self.n_bins + index[:, 1]
        bins = start + jnp.arange(self.chunk, dtype=jnp.int32)
        return jnp.sum(flat[:, None] == bins[None, :], axis=0).astype(x.dtype)


def density_map(
    samples,
    hamiltonian,
    *,
    n_bins: int = 24,
    spin: str | None = None,
    groups: ParameterGroups | None = None,
    bin_chunk: int = 256,
    batch_size: int | None = None,
) -> dict[tuple[float, ...], DensityMap]:
    """Histogram of electron positions on an ``n_bins x n_bins`` fractional grid, per group.

    Args:
        samples: (n_chains, chain_length, 2N + P) samples (NetKet layout).
        hamiltonian: the periodic :class:`~qernel.hamiltonian.base.ContinuumHamiltonian`.
        n_bins: bins per supercell vector (>= 1).
        spin: count all electrons (None), only ``"up"`` or only ``"down"``.
        groups: chain groups (default: from the carried-parameter columns).
        bin_chunk: bins evaluated per pass (bounds memory at ``n_samples x bin_chunk``).
        batch_size: samples per jitted batch (default automatic).

    Returns:
        ``{group key: DensityMap}``.
    """
    samples = check_samples(samples, hamiltonian)
    cell = require_supercell(hamiltonian)
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    if int(bin_chunk) != bin_chunk or bin_chunk < 1:
        raise ValueError(f"bin_chunk must be a positive integer, got {bin_chunk}")
    first, count = spin_slice(hamiltonian, spin)
    if count == 0:
        raise ValueError(f"there are no {spin} electrons in {hamiltonian!r}")
    groups = resolve_groups(samples, hamiltonian, groups)
    n_bins, total = int(n_bins), int(n_bins) ** 2
    chunk = min(int(bin_chunk), total)
    if batch_size is None:
        batch_size = auto_batch_size(count * chunk)
    kernel = _CountsKernel(cell, first, count, n_bins, chunk)
    bin_area = cell.area / total

    pieces: dict[int, list[Estimate]] = {g: [] for g in groups.present}
    for start in range(0, total, chunk):
        counts = map_samples(kernel, samples, jnp.int32(start), batch_size=batch_size)
        counts = counts[..., : min(chunk, total - start)] / bin_area
        for g in groups.present:
            pieces[g].append(estimate(counts[np.flatnonzero(groups.members(g))]))

    results = {}
    for g in groups.present:
        parts = pieces[g]
        density = Estimate(*(np.concatenate([getattr(p, f) for p in parts]).reshape(n_bins, n_bins)
                             for f in ("mean", "error", "tau_corr", "variance")))
        results[groups.key(g)] = DensityMap(
            parameters=groups.parameters(g),
            spin=spin,
            n_electrons=count,
            density=density,
            bin_area=bin_area,
            supercell_vectors=cell.vectors,
            n_samples=int(groups.members(g).sum() * samples.shape[1]),
        )
    return results


def density_samples(samples, hamiltonian, *, n_bins: int = 24, spin: str | None = None,
                    batch_size: int | None = None) -> jnp.ndarray:
    """Per-sample density of every bin (what :func:`density_map` averages), for streaming it block
    by block: (n_chains, chain_length, n_bins * n_bins), flat index ``i * n_bins + j``, electrons
    per internal area unit. Memory: the whole per-sample array (use blocks of samples)."""
    samples = check_samples(samples, hamiltonian)
    cell = require_supercell(hamiltonian)
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins}")
    first, count = spin_slice(hamiltonian, spin)
    total = int(n_bins) ** 2
    if batch_size is None:
        batch_size = auto_batch_size(count * total)
    kernel = _CountsKernel(cell, first, count, int(n_bins), total)
    return map_samples(kernel, samples, jnp.int32(0), batch_size=batch_size) / (cell.area / total)


def measure_density_map(vstate, hamiltonian, **options) -> dict[tuple[float, ...], DensityMap]:
    """:func:`density_map` of ``vstate.samples`` with the groups of its sampler."""
    return density_map(vstate.samples, hamiltonian, groups=groups_from_state(vstate, hamiltonian), **options)


def _warn_spelling(old: str, new: str) -> None:
    warnings.warn(f"qernel.observables.DensityMap.{old} is deprecated and will be removed in qernel 0.3.0: "
                  f"use DensityMap.{new}", DeprecationWarning, stacklevel=3)
