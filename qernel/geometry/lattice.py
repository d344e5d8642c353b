"""2D Bravais lattices, supercells, wrapping, minimum image and commensurate k-points.

Conventions: lattice vectors are the *rows* of a (2, 2) array ``A``; a position is
``r = s @ A`` with fractional coordinates ``s``. Reciprocal vectors are the rows of
``B = 2 pi (A^-1)^T`` so that ``a_i . b_j = 2 pi delta_ij``. Lengths are in whatever unit the
caller uses (Hamiltonians use their internal unit, see :mod:`qernel.units`).

All geometry objects are immutable and hashable (they are static fields of NetKet operators);
array-valued properties return fresh NumPy arrays. Functions that act on positions
(:meth:`Supercell.wrap`, :meth:`Supercell.minimum_image`) are pure ``jax.numpy`` and can be
jitted and vmapped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

__all__ = ["Lattice", "Supercell", "triangular_lattice", "square_lattice"]


def _as_matrix(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.shape != (2, 2):
        raise ValueError(f"{name} must have shape (2, 2) (rows are vectors), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


@dataclass(frozen=True)
class Lattice:
    """A 2D Bravais lattice.

    Args:
        vectors: (2, 2) primitive vectors as rows, in length units.
    """

    vectors_tuple: tuple[tuple[float, float], tuple[float, float]]

    def __init__(self, vectors) -> None:
        array = _as_matrix(vectors, "lattice vectors")
        if abs(np.linalg.det(array)) < 1e-12 * max(1.0, np.abs(array).max() ** 2):
            raise ValueError(f"lattice vectors are linearly dependent: {array.tolist()}")
        object.__setattr__(self, "vectors_tuple", tuple(map(tuple, array.tolist())))

    @property
    def vectors(self) -> np.ndarray:
        """(2, 2) primitive vectors as rows."""
        return np.array(self.vectors_tuple)

    @property
    def reciprocal_vectors(self) -> np.ndarray:
        """(2, 2) reciprocal vectors ``b_j`` as rows with ``a_i . b_j = 2 pi delta_ij``."""
        return 2.0 * np.pi * np.linalg.inv(self.vectors).T

    @property
    def area(self) -> float:
        """Area of the primitive cell."""
        return float(abs(np.linalg.det(self.vectors)))

    def supercell(self, matrix) -> "Supercell":
        """The supercell spanned by the integer combinations ``matrix @ vectors``."""
        return Supercell(self, matrix)


def triangular_lattice(a: float = 1.0) -> Lattice:
    """Triangular lattice, ``a_1 = a (1, 0)``, ``a_2 = a (1/2, sqrt(3)/2)`` (DESIGN.md section 1)."""
    if not a > 0:
        raise ValueError(f"lattice constant a must be > 0, got {a}")
    return Lattice([[a, 0.0], [0.5 * a, 0.5 * math.sqrt(3.0) * a]])


def square_lattice(a: float = 1.0) -> Lattice:
    """Square lattice with lattice constant ``a``."""
    if not a > 0:
        raise ValueError(f"lattice constant a must be > 0, got {a}")
    return Lattice([[a, 0.0], [0.0, a]])


def _integer_matrix(matrix) -> tuple[tuple[int, int], tuple[int, int]]:
    array = np.asarray(matrix)
    if array.shape == ():  # n -> n x n supercell
        array = np.eye(2) * array
    if array.shape != (2, 2):
        raise ValueError(f"supercell matrix must be an integer or a 2x2 integer matrix, got shape {array.shape}")
    rounded = np.rint(np.asarray(array, dtype=float))
    if not np.allclose(array, rounded):
        raise ValueError(f"supercell matrix must have integer entries, got {np.asarray(array).tolist()}")
    det = int(round(np.linalg.det(rounded)))
    if det == 0:
        raise ValueError(f"supercell matrix is singular (determinant 0): {rounded.astype(int).tolist()}")
    return tuple(map(tuple, rounded.astype(int).tolist()))


@dataclass(frozen=True)
class Supercell:
    """A periodic simulation cell made of integer combinations of a primitive lattice's vectors.

    ``vectors = matrix @ primitive.vectors``: row i of the supercell is
    ``sum_j matrix[i, j] a_j``. Examples: ``matrix = 3`` (3 x 3), ``[[2, 1], [-1, 1]]``
    (sqrt(3) x sqrt(3) R30 of the triangular lattice), ``[[1, 0], [-1, 2]]`` (rectangular
    2-cell supercell of the triangular lattice).

    Args:
        primitive: the primitive (e.g. moiré) lattice.
        matrix: an integer ``n`` (n x n supercell) or a (2, 2) integer, non-singular matrix.
    """

    primitive: Lattice
    matrix_tuple: tuple[tuple[int, int], tuple[int, int]]

    def __init__(self, primitive: Lattice, matrix) -> None:
        if not isinstance(primitive, Lattice):
            raise TypeError(f"primitive must be a qernel Lattice, got {type(primitive).__name__}")
        object.__setattr__(self, "primitive", primitive)
        object.__setattr__(self, "matrix_tuple", _integer_matrix(matrix))

    # -- geometry -----------------------------------------------------------------------------
    @property
    def matrix(self) -> np.ndarray:
        """(2, 2) integer supercell matrix."""
        return np.array(self.matrix_tuple, dtype=int)

    @property
    def vectors(self) -> np.ndarray:
        """(2, 2) supercell vectors as rows (length units)."""
        return self.matrix @ self.primitive.vectors

    @property
    def reciprocal_vectors(self) -> np.ndarray:
        """(2, 2) supercell reciprocal vectors as rows (inverse length units)."""
        return 2.0 * np.pi * np.linalg.inv(self.vectors).T

    @property
    def n_cells(self) -> int:
        """Number of primitive cells in the supercell, ``|det matrix|``."""
        return int(abs(round(np.linalg.det(self.matrix))))

    @property
    def area(self) -> float:
        """Supercell area."""
        return float(abs(np.linalg.det(self.vectors)))

    @property
    def inscribed_radius(self) -> float:
        """Radius of the largest disc that fits in the Wigner-Seitz cell (half the shortest lattice vector)."""
        return 0.5 * float(np.min(np.linalg.norm(self.lattice_points(2)[1:], axis=-1)))

    def lattice_points(self, n_max: int) -> np.ndarray:
        """Supercell lattice vectors ``m1 L1 + m2 L2`` with ``|m_i| <= n_max``, sorted by length, (M, 2)."""
        ms = np.arange(-n_max, n_max + 1)
        m1, m2 = np.meshgrid(ms, ms, indexing="ij")
        points = np.stack([m1.ravel(), m2.ravel()], -1) @ self.vectors
        return points[np.argsort(np.linalg.norm(points, axis=-1), kind="stable")]

    # -- positions (JAX) ----------------------------------------------------------------------
    def to_fractional(self, positions):
        """Fractional supercell coordinates ``s`` with ``r = s @ vectors``; shape (..., 2)."""
        inverse = jnp.asarray(np.linalg.inv(self.vectors), dtype=jnp.result_type(positions, float))
        return positions @ inverse

    def to_cartesian(self, fractional):
        """Cartesian positions from fractional coordinates; shape (..., 2)."""
        return fractional @ jnp.asarray(self.vectors, dtype=jnp.result_type(fractional, float))

    def wrap(self, positions):
        """Map positions (..., 2) into the supercell parallelogram (fractional coordinates in [0, 1))."""
        fractional = self.to_fractional(positions)
        return self.to_cartesian(fractional - jnp.floor(fractional))

    def minimum_image(self, displacements):
        """Shortest periodic image of displacement vectors, shape (..., 2).

        Reduces fractional coordinates to [-1/2, 1/2) and then checks the 9 neighbouring images,
        which is exact for any (also strongly skewed, Minkowski-reduced or not too far from it)
        2D cell.
        """
        fractional = self.to_fractional(displacements)
        reduced = self.to_cartesian(fractional - jnp.round(fractional))
        shifts = jnp.asarray(self.lattice_points(1), dtype=reduced.dtype)  # (9, 2)
        candidates = reduced[..., None, :] + shifts  # (..., 9, 2)
        best = jnp.argmin(jnp.sum(candidates**2, axis=-1), axis=-1)
        return jnp.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]

    # -- k-points -----------------------------------------------------------------------------
    def commensurate_kpoints(self, twist=(0.0, 0.0)) -> np.ndarray:
        """The ``n_cells`` k-points of the primitive Brillouin zone commensurate with the supercell.

        They are the supercell reciprocal-lattice points (shifted by ``twist``, in fractional
        supercell reciprocal units) reduced into the primitive reciprocal cell, returned as
        Cartesian (n_cells, 2) vectors folded into the first Brillouin zone (shortest image).

        Args:
            twist: twist angle of the boundary condition as a fraction of the supercell
                reciprocal vectors, ``(0, 0)`` for periodic boundary conditions.
        """
        B_prim = self.primitive.reciprocal_vectors
        # k = n @ B_super for integer n; its primitive fractional coordinate is
        # n @ B_super @ inv(B_prim) = n @ inv(M)^T. Enumerate the n that land in [0, 1)^2.
        inv_mt = np.linalg.inv(self.matrix).T
        span = int(np.abs(self.matrix).sum()) + 1
        ns = np.arange(-span, span + 1)
        n1, n2 = np.meshgrid(ns, ns, indexing="ij")
        n = np.stack([n1.ravel(), n2.ravel()], -1).astype(float) + np.asarray(twist, dtype=float)
        frac = n @ inv_mt
        frac = np.round(frac, 12)
        frac = frac - np.floor(frac)
        frac = np.unique(np.round(frac, 10), axis=0)
        if len(frac) != self.n_cells:
            raise RuntimeError(f"found {len(frac)} commensurate k-points, expected {self.n_cells}")
        k = frac @ B_prim
        # fold into the first Brillouin zone
        shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=float) @ B_prim
        candidates = k[:, None, :] + shifts[None]
        best = np.argmin(np.linalg.norm(candidates, axis=-1), axis=-1)
        return candidates[np.arange(len(k)), best]
