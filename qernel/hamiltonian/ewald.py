"""2D Ewald summation of the 1/r Coulomb energy of point charges in a periodic plane.

Unit point charges (e = 1, eps = 1) at positions ``r_i`` in a periodic 2D cell of area ``A``
with a uniform neutralising background; the interaction is the 3D Coulomb law ``1/r``
restricted to the plane (not the 2D ``log r`` potential). Splitting
``1/r = erfc(a r)/r + erf(a r)/r`` and using the 2D Fourier transform
``FT[erf(a r)/r](G) = (2 pi / G) erfc(G / 2a)`` gives the periodic pair potential

    phi(r) = sum_L erfc(a|r+L|)/|r+L| + (2 pi/A) sum_{G!=0} cos(G.r) erfc(G/2a)/G - 2 sqrt(pi)/(a A),

where the last term is the finite remainder of the G = 0 component after the background has
cancelled its divergent ``2 pi / G`` part, ``lim_{G->0} (2 pi / A) erf(G/2a)/G = 2 sqrt(pi)/(a A)``.
The interaction of a charge with its own periodic images and the background is the Madelung term

    xi = sum_{L!=0} erfc(a L)/L + (2 pi/A) sum_{G!=0} erfc(G/2a)/G - 2 sqrt(pi)/(a A) - 2 a/sqrt(pi),

(the last term removes the ``r -> 0`` limit ``2a/sqrt(pi)`` of the self interaction
``erf(a r)/r``), and the total energy including background-background and charge-background terms is

    E = 1/2 sum_{i!=j} phi(r_i - r_j) + N xi / 2.

In the implementation the reciprocal part of the pair sum and of ``N xi / 2`` combine into
``1/2 sum_{G!=0} (2 pi/A) erfc(G/2a)/G |S(G)|^2`` with the structure factor
``S(G) = sum_i exp(i G.r_i)``, so that

    E = sum_{i<j} sum_L erfc(a|r_ij+L|)/|r_ij+L| + sum_{G in half space} (2 pi/A) erfc(G/2a)/G |S(G)|^2
        + N (1/2 sum_{L!=0} erfc(a L)/L - a/sqrt(pi)) - N^2 sqrt(pi)/(a A).

One charge per primitive cell of a Bravais lattice gives that lattice's Madelung energy; with
``pi r_s^2`` the area per charge, E/N = -1.1061025867/r_s (triangular) and -1.1002444205/r_s (square),
in agreement with Bonsall & Maradudin, PRB 15, 1959 (1977): -1.106103 and -1.100244.

Coincident charges (``r_i == r_j`` up to a lattice vector, i != j) have infinite energy: the
result is ``+inf`` and its gradient NaN. The diagonal ``i == j`` never enters (only pairs
``i < j`` are summed), so gradients are finite for any configuration of distinct charges.

Lengths are in any unit; the energy is in (charge^2 / length) of the same unit, i.e. Hartree for
bohr. Multiply by the coupling constant (e.g. ``1/eps``) outside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erfc
from scipy.special import erfc as np_erfc
from scipy.special import erfcinv

__all__ = ["EwaldSum", "ewald_energy"]

#: Default ``alpha = DEFAULT_ALPHA_FACTOR * sqrt(pi / A)``. In units of the radius
#: ``sqrt(A/pi)`` of a disc of the cell's area this puts the real-space cutoff (tolerance 1e-12)
#: at 1.7 radii, ~9 shifts per pair and ~115 reciprocal vectors: the fastest choice for
#: N ~ 36-150 on CPU (benchmarks/ewald.py, factors 1-8 within a factor 1.5 of each other).
DEFAULT_ALPHA_FACTOR: float = 3.0


def _lattice_matrix(lattice_vectors) -> np.ndarray:
    """(2, 2) float64 rows from an array or an object with ``.vectors`` (Lattice, Supercell)."""
    values = getattr(lattice_vectors, "vectors", lattice_vectors)
    try:
        array = np.asarray(values, dtype=float)
    except Exception as error:  # e.g. a JAX tracer: the cell must be a concrete constant
        raise ValueError(f"lattice_vectors must be a concrete (2, 2) array of numbers, got {type(values).__name__}") from error
    if array.shape != (2, 2):
        raise ValueError(f"lattice_vectors must have shape (2, 2) (rows are the cell vectors), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"lattice_vectors must be finite, got {array.tolist()}")
    if abs(np.linalg.det(array)) <= 1e-12 * max(np.abs(array).max(), 1e-300) ** 2:
        raise ValueError(f"lattice_vectors are singular (linearly dependent rows, zero area): {array.tolist()}")
    return array


def _reduce_basis(vectors: np.ndarray) -> np.ndarray:
    """Lagrange-Gauss reduced basis of the same lattice: |b1| <= |b2|, |b1.b2| <= |b1|^2 / 2.

    The centered parallelogram of a reduced basis is compact, which keeps the set of real-space
    shifts small for any (also strongly skewed) input cell.
    """
    b1, b2 = vectors[0].copy(), vectors[1].copy()
    if b1 @ b1 > b2 @ b2:
        b1, b2 = b2, b1
    for _ in range(10_000):
        b2 = b2 - np.rint((b1 @ b2) / (b1 @ b1)) * b1
        if b2 @ b2 >= b1 @ b1:
            break
        b1, b2 = b2, b1
    return np.stack([b1, b2])


def _integer_grid(n1: int, n2: int) -> np.ndarray:
    m1, m2 = np.meshgrid(np.arange(-n1, n1 + 1), np.arange(-n2, n2 + 1), indexing="ij")
    return np.stack([m1.ravel(), m2.ravel()], -1)


def _distance_to_parallelogram(points: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Euclidean distance of points (M, 2) to the parallelogram ``{s @ basis : s in [-1/2, 1/2]^2}``."""
    fractional = points @ np.linalg.inv(basis)
    inside = np.all(np.abs(fractional) <= 0.5, axis=-1)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) @ basis
    starts, ends = corners, np.roll(corners, -1, axis=0)
    edge = ends - starts  # (4, 2)
    rel = points[:, None, :] - starts[None]  # (M, 4, 2)
    t = np.clip(np.sum(rel * edge, -1) / np.sum(edge * edge, -1), 0.0, 1.0)
    distance = np.min(np.linalg.norm(rel - t[..., None] * edge, axis=-1), axis=-1)
    return np.where(inside, 0.0, distance)


@dataclass(frozen=True, eq=True)
class EwaldSum:
    """Ewald energy of unit point charges with a neutralising background in a periodic 2D cell.

    Everything that does not depend on the positions (real-space shifts, reciprocal vectors and
    weights, Madelung and background constants) is computed once in NumPy (float64) at
    construction; :meth:`__call__` is pure ``jax.numpy``, jit- and vmap-able, O(N^2 S + N K)
    for S real-space shifts and K reciprocal vectors, in the dtype of ``positions``.

    Instances are immutable and compare/hash by ``(lattice_vectors, alpha, tolerance)``, so they
    can be static fields of NetKet operators.

    Args:
        lattice_vectors: (2, 2) cell vectors as rows (or a :class:`~qernel.geometry.lattice.Lattice`
            / :class:`~qernel.geometry.lattice.Supercell`), length units; any basis of the
            lattice (it is reduced internally).
        alpha: Ewald splitting parameter a (1/length, > 0); default
            ``DEFAULT_ALPHA_FACTOR * sqrt(pi / A)``. The energy does not depend on it.
        tolerance: truncation threshold in (0, 0.1]: real-space terms with ``erfc(a r) < tolerance``
            and reciprocal terms with ``erfc(G / 2a) < tolerance`` are dropped. The relative
            error of the energy is of this order; 1e-12 is float64-exact, 1e-7 suffices for float32.
    """

    lattice_vectors_tuple: tuple[tuple[float, float], tuple[float, float]]
    alpha: float
    tolerance: float

    def __init__(self, lattice_vectors, alpha: float | None = None, tolerance: float = 1e-12) -> None:
        vectors = _lattice_matrix(lattice_vectors)
        area = abs(float(np.linalg.det(vectors)))
        if alpha is None:
            alpha = DEFAULT_ALPHA_FACTOR * math.sqrt(math.pi / area)
        if not (isinstance(alpha, (int, float, np.floating, np.integer)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0 (1/length), got {alpha!r}")
        if not (isinstance(tolerance, (int, float, np.floating)) and 0 < tolerance <= 0.1):
            raise ValueError(f"tolerance must be in (0, 0.1], got {tolerance!r}")
        alpha, tolerance = float(alpha), float(tolerance)
        object.__setattr__(self, "lattice_vectors_tuple", tuple(map(tuple, vectors.tolist())))
        object.__setattr__(self, "alpha", alpha)
        object.__setattr__(self, "tolerance", tolerance)

        basis = _reduce_basis(vectors)
        x_cut = float(erfcinv(tolerance))  # erfc(x_cut) = tolerance
        r_cut = x_cut / alpha
        g_cut = 2.0 * alpha * x_cut

        # Real space: after reduction into the centered parallelogram P of the reduced basis, a pair
        # displacement d needs every shift L with |d + L| <= r_cut, i.e. dist(-L, P) <= r_cut.
        # Bound on |m_i| from |L| <= r_cut + diameter: m_i = L . b_i / 2 pi, |b_1| = 2 pi |a_2| / A.
        reach = r_cut + 0.5 * max(np.linalg.norm(basis[0] + basis[1]), np.linalg.norm(basis[0] - basis[1]))
        n1 = int(math.ceil(reach * np.linalg.norm(basis[1]) / area)) + 1
        n2 = int(math.ceil(reach * np.linalg.norm(basis[0]) / area)) + 1
        points = _integer_grid(n1, n2) @ basis
        shifts = points[_distance_to_parallelogram(points, basis) <= r_cut]
        shifts = shifts[np.argsort(np.linalg.norm(shifts, axis=-1), kind="stable")]
        lengths = np.linalg.norm(points, axis=-1)
        images = lengths[(lengths > 0) & (lengths <= r_cut)]

        # Reciprocal space: half of {G != 0, |G| <= g_cut} (G and -G give the same |S(G)|^2),
        # kept as integer coordinates n with G = n @ recip so that G.r = 2 pi n.s exactly.
        recip = 2.0 * np.pi * np.linalg.inv(basis).T
        k1 = int(math.ceil(g_cut * np.linalg.norm(basis[0]) / (2 * np.pi))) + 1
        k2 = int(math.ceil(g_cut * np.linalg.norm(basis[1]) / (2 * np.pi))) + 1
        ns = _integer_grid(k1, k2)
        half = (ns[:, 0] > 0) | ((ns[:, 0] == 0) & (ns[:, 1] > 0))
        ns = ns[half]
        g = np.linalg.norm(ns @ recip, axis=-1)
        keep = g <= g_cut
        ns, g = ns[keep], g[keep]
        weights = (2.0 * np.pi / area) * np_erfc(g / (2.0 * alpha)) / g

        object.__setattr__(self, "_basis", basis)
        object.__setattr__(self, "_inverse", np.linalg.inv(basis))
        object.__setattr__(self, "_area", area)
        object.__setattr__(self, "_shifts", shifts)
        object.__setattr__(self, "_kpoints", ns.astype(float))
        object.__setattr__(self, "_kweights", weights)
        # per-charge constant: 1/2 (images of itself) - self interaction of the smeared part
        object.__setattr__(self, "_per_charge", 0.5 * float(np.sum(np_erfc(alpha * images) / images)) - alpha / math.sqrt(math.pi))
        # per N^2 constant: G = 0 remainder after cancellation by the background
        object.__setattr__(self, "_per_charge_squared", -math.sqrt(math.pi) / (alpha * area))

    # -- constants ------------------------------------------------------------------------------
    @property
    def lattice_vectors(self) -> np.ndarray:
        """(2, 2) cell vectors as rows, as given."""
        return np.array(self.lattice_vectors_tuple)

    @property
    def area(self) -> float:
        """Cell area A."""
        return self._area

    @property
    def n_shifts(self) -> int:
        """Number S of real-space lattice shifts summed per pair."""
        return len(self._shifts)

    @property
    def n_kpoints(self) -> int:
        """Number K of reciprocal vectors (half space, G and -G counted once)."""
        return len(self._kweights)

    @property
    def madelung(self) -> float:
        """Madelung term ``xi`` (see module docstring): ``E = 1/2 sum_{i!=j} phi(r_ij) + N xi / 2``.

        For one charge per cell, ``E / N = xi / 2``.
        """
        return 2.0 * self._per_charge + 2.0 * self._per_charge_squared + 2.0 * float(np.sum(self._kweights))

    # -- JAX ------------------------------------------------------------------------------------
    def _reduce(self, displacements):
        """Displacements (..., 2) mapped into the centered parallelogram of the reduced basis."""
        dtype = displacements.dtype
        fractional = displacements @ jnp.asarray(self._inverse, dtype)
        return (fractional - jnp.round(fractional)) @ jnp.asarray(self._basis, dtype)

    def _real_space(self, displacements):
        """``sum_L erfc(a|d+L|)/|d+L|`` for displacements (..., 2) -> (...,)."""
        dtype = displacements.dtype
        images = self._reduce(displacements)[..., None, :] + jnp.asarray(self._shifts, dtype)
        distance = jnp.sqrt(jnp.sum(images * images, axis=-1))
        return jnp.sum(erfc(self.alpha * distance) / distance, axis=-1)

    def _phases(self, positions):
        """``G . r`` for all kept G, positions (..., 2) -> (..., K), using wrapped fractional coordinates."""
        dtype = positions.dtype
        fractional = positions @ jnp.asarray(self._inverse, dtype)
        fractional = fractional - jnp.floor(fractional)  # exact periodicity, better float32 phases
        return (2.0 * jnp.pi) * (fractional @ jnp.asarray(self._kpoints.T, dtype))

    def pair_potential(self, displacements):
        """Periodic pair potential ``phi(r)`` (background included) at displacements (..., 2) -> (...,).

        ``phi`` diverges (``+inf``) at lattice vectors. Cost O(S + K) per displacement.
        """
        shape = jnp.shape(displacements)
        if len(shape) < 1 or shape[-1] != 2:
            raise ValueError(f"displacements must have shape (..., 2), got {tuple(shape)}")
        displacements = _as_float_array(displacements)
        dtype = displacements.dtype
        reciprocal = 2.0 * jnp.sum(jnp.asarray(self._kweights, dtype) * jnp.cos(self._phases(displacements)), axis=-1)
        return self._real_space(displacements) + reciprocal + jnp.asarray(2.0 * self._per_charge_squared, dtype)

    def __call__(self, positions):
        """Total Ewald energy of one configuration.

        Args:
            positions: (N, 2) Cartesian positions of N >= 1 unit charges (any leading batch
                dimensions (..., N, 2) are also accepted), float32 or float64.

        Returns:
            Energy, shape () (or the batch shape), in charge^2 / length, dtype of ``positions``;
            ``+inf`` if two charges coincide.
        """
        _check_positions(positions)
        positions = _as_float_array(positions)
        dtype = positions.dtype
        n = positions.shape[-2]
        i, j = np.triu_indices(n, k=1)  # i < j only: the diagonal never enters, no NaN gradients
        real = jnp.sum(self._real_space(positions[..., i, :] - positions[..., j, :]), axis=-1)
        phases = self._phases(positions)  # (..., N, K)
        structure2 = jnp.sum(jnp.cos(phases), axis=-2) ** 2 + jnp.sum(jnp.sin(phases), axis=-2) ** 2
        reciprocal = jnp.sum(jnp.asarray(self._kweights, dtype) * structure2, axis=-1)
        constant = n * self._per_charge + n * n * self._per_charge_squared
        return real + reciprocal + jnp.asarray(constant, dtype)


def _as_float_array(values):
    array = jnp.asarray(values)
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.result_type(float))
    return array


def _check_positions(positions) -> None:
    shape = jnp.shape(positions)
    if len(shape) < 2 or shape[-1] != 2 or shape[-2] < 1:
        raise ValueError(f"positions must have shape (N, 2) with N >= 1 (optionally (..., N, 2)), got {tuple(shape)}")


@lru_cache(maxsize=64)
def _cached_sum(lattice_vectors_tuple, alpha, tolerance) -> EwaldSum:
    return EwaldSum(np.array(lattice_vectors_tuple), alpha, tolerance)


def ewald_energy(positions, lattice_vectors, alpha: float | None = None, tolerance: float = 1e-12):
    """Ewald energy of unit point charges at ``positions`` in the periodic cell ``lattice_vectors``.

    Convenience wrapper around :class:`EwaldSum` (cached per cell, alpha and tolerance); includes
    the background and self terms, so one charge per primitive cell gives the Madelung energy.

    Args:
        positions: (N, 2) Cartesian positions, N >= 1 (leading batch dimensions allowed).
        lattice_vectors: (2, 2) cell vectors as rows (must be concrete, not traced).
        alpha: Ewald splitting parameter (1/length, > 0); default as in :class:`EwaldSum`.
        tolerance: truncation threshold, see :class:`EwaldSum`.

    Returns:
        Total energy (charge^2 / length), shape () or the batch shape.
    """
    _check_positions(positions)
    vectors = _lattice_matrix(lattice_vectors)
    return _cached_sum(tuple(map(tuple, vectors.tolist())), alpha, tolerance)(positions)
