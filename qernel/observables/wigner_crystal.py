"""Order parameter of the honeycomb generalized Wigner crystal (moiré filling 2/3), per group.

At filling 2/3 of a triangular moiré lattice the crystal puts two electrons on every three moiré
sites: the sites split into three sublattices of a ``sqrt3 x sqrt3`` superlattice (the value of
``exp(i K . R)`` in ``{1, w, w^2}``, ``w = exp(2 pi i / 3)``), two are occupied (a honeycomb) and
one is empty. Its Bragg peaks sit at the moiré Brillouin-zone corners K, ``|K| = |g| / sqrt3``,
where the moiré potential (harmonics at the ``g`` only) has no Fourier component: unlike
``|<rho(g)>|`` (:mod:`qernel.observables.fourier`), ``|<rho(K)>|`` is zero in the liquid and
nonzero only if the crystal breaks the moiré translation symmetry. For point charges on the
honeycomb, ``|rho(K)| = |1 + w| / 2 = 1/2``; for one sublattice (filling 1/3), 1.

Caveat: MCMC averages over ``|psi|^2``. A finite system's ground state is a superposition of the
three degenerate crystal positions, so ``|<rho(K)>|`` stays nonzero only while the chains do not
tunnel between them (long chains would average it to zero); ``S(K) = N <|rho(K)|^2>`` (the
structure factor at K, reported alongside) has no such ambiguity: ``~ 1`` in a liquid,
``~ N |rho(K)|^2`` (``N / 4`` for the point-charge honeycomb) in the crystal.

K is a Fourier component of a function periodic on the supercell only if it is a reciprocal
vector of the supercell: true for ``n x n`` cells with ``n`` a multiple of 3 (3x3, 6x6, ...),
false e.g. for 2x2; :func:`require_commensurate` says so before any sampling work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry.lattice import Supercell
from .density import require_supercell
from .fourier import OrderParameter, crystal_order_parameter, first_shell
from .groups import ParameterGroups
from .structure_factor import structure_factor

__all__ = [
    "brillouin_zone_corners",
    "is_commensurate",
    "require_commensurate",
    "moire_k_points",
    "k_point_order_parameter",
    "k_point_structure_factor",
]


def brillouin_zone_corners(lattice) -> np.ndarray:
    """Three Brillouin-zone corners of a triangular lattice, one of each ``+-K`` pair, (3, 2).

    ``K_j = R(30 deg) g_j / sqrt3`` for the first-shell reciprocal vectors ``g_j``
    (:func:`qernel.observables.fourier.first_shell`); same units as the lattice's reciprocal
    vectors (internal inverse length). ValueError if the lattice is not triangular.
    """
    shell = first_shell(lattice)
    if len(shell) != 3:
        raise ValueError(f"Brillouin-zone corners K need a triangular lattice (3 shortest +-g), got {len(shell)}")
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rotation = np.array([[c, -s], [s, c]])
    return shell @ rotation.T / np.sqrt(3.0)


def is_commensurate(supercell: Supercell, q, tol: float = 1e-9) -> np.ndarray:
    """(M,) bool: is each ``q`` (M, 2) a reciprocal vector of ``supercell`` (``L_i . q / 2 pi``
    integer for both supercell vectors ``L_i``)?"""
    q = np.atleast_2d(np.asarray(q, dtype=float))
    m = q @ np.asarray(supercell.vectors).T / (2 * np.pi)
    return np.all(np.abs(m - np.round(m)) < tol, axis=1)


def require_commensurate(supercell: Supercell, q, name: str = "K") -> None:
    """ValueError naming the supercell if some ``q`` is not one of its reciprocal vectors."""
    bad = ~is_commensurate(supercell, q)
    if np.any(bad):
        matrix = np.asarray(supercell.matrix).astype(int).tolist()
        raise ValueError(
            f"the moiré {name} points are not reciprocal vectors of the supercell {matrix} (in moiré cells), "
            f"so rho({name}) is not defined there; the sqrt3 x sqrt3 crystal needs an n x n supercell with n a "
            f"multiple of 3 (3x3, 6x6, ...)"
        )


def moire_k_points(hamiltonian) -> np.ndarray:
    """(3, 2) moiré K points of a periodic Hamiltonian (internal units), checked commensurate."""
    cell = require_supercell(hamiltonian)
    k = brillouin_zone_corners(cell.primitive)
    require_commensurate(cell, k)
    return k


def k_point_order_parameter(
    samples, hamiltonian, *, groups: ParameterGroups | None = None, batch_size: int | None = None
) -> dict[tuple[float, ...], OrderParameter]:
    """``(1/3) sum_j |<rho(K_j)>|`` with error bar and noise floor, per group.

    Args:
        samples: (n_chains, chain_length, 2N + P).
        hamiltonian: the periodic (moiré) Hamiltonian; its supercell must contain the K points.

    Returns:
        ``{group key: OrderParameter}`` (dimensionless; 1/2 for point charges on the honeycomb;
        ``noise_floor`` is the mean modulus pure Monte Carlo noise of the same samples would give).
    """
    return crystal_order_parameter(
        samples, hamiltonian, moire_k_points(hamiltonian), groups=groups, batch_size=batch_size
    )


def k_point_structure_factor(
    samples, hamiltonian, *, groups: ParameterGroups | None = None, batch_size: int | None = None
) -> dict[tuple[float, ...], dict[str, Any]]:
    """``S(K)`` and ``S_connected(K)`` averaged over the three K points, per group.

    Returns:
        ``{group key: {"S": Estimate, "S_connected": Estimate}}`` (scalar, dimensionless
        :class:`~qernel.observables.Estimate` objects).
    """
    k = moire_k_points(hamiltonian)
    factors = structure_factor(samples, hamiltonian, q=k, groups=groups, batch_size=batch_size)
    return {key: {"S": sq.S_shells[0], "S_connected": sq.S_connected_shells[0]} for key, sq in factors.items()}
