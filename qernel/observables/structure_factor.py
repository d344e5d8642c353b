"""Static structure factor on the supercell's reciprocal lattice, per group.

    S(q) = (1/N) < |sum_i exp(-i q . r_i)|^2 > = N < |rho(q)|^2 >,   rho(q) = (1/N) sum_i exp(-i q . r_i)

at the supercell reciprocal-lattice vectors ``q != 0`` with ``|q| <= q_max`` (the only wavevectors
compatible with the periodic boundary conditions; ``S(0) = N`` trivially at fixed N). For
uncorrelated particles ``S = 1``; free fermions have ``S < 1`` below ``2 k_F`` (Pauli); a crystal has
Bragg peaks ``S(G) ~ N`` at its reciprocal vectors.

The connected structure factor ``S_c(q) = S(q) - N |<rho(q)>|^2 = N <|rho(q) - <rho(q)>|^2>``
removes the Bragg part of a density pinned by an external potential (it is evaluated per sample
as ``N |rho(q) - m|^2`` with ``m`` the group's sample mean, whose relative bias ``1/n_samples`` is
negligible). In a translation-invariant system ``<rho(q)> = 0`` and ``S_c = S``
(:mod:`qernel.observables.fourier` explains when ``<rho>`` is nonzero).

Shells: ``S`` averaged over the ``q`` of equal length (per sample, so the shell error bars include
the correlations between its members) -- the natural 1D curve ``S(|q|)`` to plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..geometry.lattice import Supercell
from .density import require_supercell
from .estimates import Estimate, estimate, to_json_value
from .fourier import density_fourier_samples
from .groups import ParameterGroups, check_samples, groups_from_state, resolve_groups

__all__ = [
    "StructureFactor",
    "reciprocal_points",
    "default_q_max",
    "structure_factor",
    "structure_factor_shell_samples",
    "measure_structure_factor",
]


def reciprocal_points(supercell: Supercell, q_max: float) -> np.ndarray:
    """Supercell reciprocal-lattice vectors with ``0 < |q| <= q_max``, (M, 2), sorted by length
    then angle (internal inverse length units)."""
    if not (math.isfinite(q_max) and q_max > 0):
        raise ValueError(f"q_max must be finite and > 0, got {q_max}")
    B = supercell.reciprocal_vectors
    # |m1 b1 + m2 b2| >= |m_i| * (distance of b_i from the line of the other) = |m_i| * 2 pi / |L_i|
    heights = 2 * np.pi / np.linalg.norm(supercell.vectors, axis=1)
    n_max = (np.ceil(q_max / heights) + 1).astype(int)
    m1, m2 = np.meshgrid(np.arange(-n_max[0], n_max[0] + 1), np.arange(-n_max[1], n_max[1] + 1), indexing="ij")
    q = np.stack([m1.ravel(), m2.ravel()], -1) @ B
    length = np.linalg.norm(q, axis=1)
    scale = np.linalg.norm(B, axis=1).min()
    keep = (length > 1e-9 * scale) & (length <= q_max * (1 + 1e-12))
    q, length = q[keep], length[keep]
    angle = np.mod(np.arctan2(q[:, 1], q[:, 0]), 2 * np.pi)
    order = np.lexsort((np.round(angle, 9), np.round(length / scale, 9)))
    return q[order]


def default_q_max(hamiltonian) -> float:
    """``2.1 |G_WC|``: past the second harmonic of the triangular Wigner crystal at the system's
    density, ``|G_WC| = 4 pi / (sqrt(3) a)``, ``sqrt(3) a^2 / 2 = area / N`` (at moiré filling 1
    ``G_WC`` are the moiré ``g_j``)."""
    cell = require_supercell(hamiltonian)
    a = math.sqrt(2.0 * cell.area / (math.sqrt(3.0) * hamiltonian.n_electrons))
    return 2.1 * 4.0 * math.pi / (math.sqrt(3.0) * a)


def _shells(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct lengths (n_s,) and averaging matrix (n_s, M) of the shells of equal |q|."""
    length = np.linalg.norm(q, axis=1)
    scale = length.min()
    labels = np.round(length / scale, 7)
    unique, inverse = np.unique(labels, return_inverse=True)
    weights = (inverse.reshape(-1)[None, :] == np.arange(len(unique))[:, None]).astype(float)
    weights /= weights.sum(1, keepdims=True)
    return weights @ length, weights


@dataclass(frozen=True)
class StructureFactor:
    """Static structure factor of one group.

    Attributes:
        parameters: the group's carried parameter values (user units).
        q: (M, 2) wavevectors (internal inverse length units), sorted by length.
        S: :class:`Estimate` (M,) of ``S(q)``.
        S_connected: :class:`Estimate` (M,) of ``S(q) - N |<rho(q)>|^2``.
        q_shells: (n_s,) distinct ``|q|``.
        S_shells, S_connected_shells: :class:`Estimate` (n_s,) shell averages.
        n_electrons: N.
        n_samples: number of samples of the group.
    """

    parameters: dict[str, float]
    q: np.ndarray
    S: Estimate
    S_connected: Estimate
    q_shells: np.ndarray
    S_shells: Estimate
    S_connected_shells: Estimate
    n_electrons: int
    n_samples: int

    def peak(self, connected: bool = False) -> tuple[float, Estimate]:
        """``(|q|, estimate)`` of the shell with the largest mean S (or S_connected)."""
        shells = self.S_connected_shells if connected else self.S_shells
        i = int(np.nanargmax(np.asarray(shells.mean)))
        return float(self.q_shells[i]), shells[i]

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": dict(self.parameters),
            "q": to_json_value(self.q),
            "S": self.S.to_dict(),
            "S_connected": self.S_connected.to_dict(),
            "q_shells": to_json_value(self.q_shells),
            "S_shells": self.S_shells.to_dict(),
            "S_connected_shells": self.S_connected_shells.to_dict(),
            "n_electrons": self.n_electrons,
            "n_samples": self.n_samples,
        }


def _concat(parts: list[Estimate]) -> Estimate:
    return Estimate(*(np.concatenate([np.atleast_1d(getattr(p, f)) for p in parts])
                      for f in ("mean", "error", "tau_corr", "variance")))


def structure_factor(
    samples,
    hamiltonian,
    *,
    q=None,
    q_max: float | None = None,
    groups: ParameterGroups | None = None,
    q_chunk: int = 128,
    batch_size: int | None = None,
) -> dict[tuple[float, ...], StructureFactor]:
    """``S(q)`` and its connected part with error bars, per group.

    Args:
        samples: (n_chains, chain_length, 2N + P).
        hamiltonian: the periodic Hamiltonian of the samples.
        q: (M, 2) wavevectors (internal units); default :func:`reciprocal_points` up to ``q_max``.
            Only supercell reciprocal-lattice vectors are physical for a periodic system.
        q_max: cutoff for the default q (default :func:`default_q_max`).
        groups: chain groups (default: from the carried-parameter columns).
        q_chunk: wavevectors evaluated per pass (bounds memory at ``n_samples x q_chunk``).
        batch_size: samples per jitted batch (default automatic).

    Returns:
        ``{group key: StructureFactor}``.
    """
    samples = check_samples(samples, hamiltonian)
    cell = require_supercell(hamiltonian)
    if q is None:
        q = reciprocal_points(cell, default_q_max(hamiltonian) if q_max is None else float(q_max))
    q = np.asarray(q, dtype=float)
    if q.ndim != 2 or q.shape[1] != 2 or len(q) < 1 or not np.all(np.isfinite(q)):
        raise ValueError(f"q must be a finite array of shape (M >= 1, 2), got shape {q.shape}")
    if np.any(np.linalg.norm(q, axis=1) == 0):
        raise ValueError("q must not contain q = 0 (S(0) = N at fixed particle number)")
    if int(q_chunk) != q_chunk or q_chunk < 1:
        raise ValueError(f"q_chunk must be a positive integer, got {q_chunk}")
    groups = resolve_groups(samples, hamiltonian, groups)
    n = hamiltonian.n_electrons
    q_shells, weights = _shells(q)
    chain_ids = jnp.asarray(groups.chain_ids)
    counts = np.bincount(groups.chain_ids, minlength=groups.n_groups).astype(float)

    shell_sums = jnp.zeros((*samples.shape[:2], 2, len(q_shells)), samples.dtype)
    pieces: dict[int, list[tuple[Estimate, Estimate]]] = {g: [] for g in groups.present}
    for start in range(0, len(q), int(q_chunk)):
        stop = min(start + int(q_chunk), len(q))
        rho = density_fourier_samples(samples, hamiltonian, q[start:stop], batch_size=batch_size)
        # group means of rho, broadcast back to the chains
        chain_means = jnp.mean(rho, axis=1)  # (n_chains, k)
        group_sums = jnp.zeros((groups.n_groups, stop - start), rho.dtype).at[chain_ids].add(chain_means)
        group_means = group_sums / jnp.asarray(np.maximum(counts, 1.0), rho.real.dtype)[:, None]
        S = n * jnp.abs(rho) ** 2
        S_c = n * jnp.abs(rho - group_means[chain_ids][:, None, :]) ** 2
        both = jnp.stack([S, S_c], axis=-2)  # (n_chains, L, 2, k)
        shell_sums = shell_sums + both @ jnp.asarray(weights[:, start:stop].T, samples.dtype)
        for g in groups.present:
            est = estimate(both[np.flatnonzero(groups.members(g))])
            pieces[g].append((est[0], est[1]))

    results = {}
    for g in groups.present:
        members = np.flatnonzero(groups.members(g))
        shells = estimate(shell_sums[members])
        results[groups.key(g)] = StructureFactor(
            parameters=groups.parameters(g),
            q=q,
            S=_concat([p[0] for p in pieces[g]]),
            S_connected=_concat([p[1] for p in pieces[g]]),
            q_shells=q_shells,
            S_shells=shells[0],
            S_connected_shells=shells[1],
            n_electrons=n,
            n_samples=int(len(members) * samples.shape[1]),
        )
    return results


def structure_factor_shell_samples(
    samples, hamiltonian, q, *, q_chunk: int = 128, batch_size: int | None = None
) -> tuple[np.ndarray, jnp.ndarray]:
    """Per-sample shell averages of ``S(q) = N |rho(q)|^2`` (what :func:`structure_factor` averages
    into ``S_shells``), for streaming them block by block.

    Args:
        samples: (n_chains, chain_length, 2N + P).
        q: (M, 2) nonzero wavevectors (internal units).

    Returns:
        ``(q_shells, values)``: (n_s,) distinct ``|q|`` and (n_chains, chain_length, n_s) values.
    """
    samples = check_samples(samples, hamiltonian)
    q = np.asarray(q, dtype=float)
    q_shells, weights = _shells(q)
    n = hamiltonian.n_electrons
    values = jnp.zeros((*samples.shape[:2], len(q_shells)), samples.dtype)
    for start in range(0, len(q), int(q_chunk)):
        stop = min(start + int(q_chunk), len(q))
        rho = density_fourier_samples(samples, hamiltonian, q[start:stop], batch_size=batch_size)
        values = values + (n * jnp.abs(rho) ** 2) @ jnp.asarray(weights[:, start:stop].T, samples.dtype)
    return q_shells, values


def measure_structure_factor(vstate, hamiltonian, **options) -> dict[tuple[float, ...], StructureFactor]:
    """:func:`structure_factor` of ``vstate.samples`` with the groups of its sampler."""
    return structure_factor(vstate.samples, hamiltonian, groups=groups_from_state(vstate, hamiltonian), **options)
