"""The moiré potential ``Delta(r) = -2 V sum_{j=1..3} cos(g_j . r + phi)`` (DESIGN.md section 1).

Sign convention of the Fu group's neural-network papers (Geier, Nazaryan, Zaklama, Fu,
PRB 112, 045119 (2025); QERNEL, arXiv 2604.26018): ``g_1`` is the reciprocal vector dual to
``a_1 = a_M (1, 0)`` (``g_1 . a_1 = 2 pi``, ``g_1 . a_2 = 0`` with ``a_2 = a_M (1/2, sqrt(3)/2)``),
``g_2`` and ``g_3`` are ``g_1`` rotated by 120 and 240 degrees, ``|g| = 4 pi / (sqrt(3) a_M)``.
Wu et al. (PRL 121, 026402 (2018)) write the hole band with the opposite overall sign: their
form equals this one with ``phi -> phi + 180 deg``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

__all__ = ["moire_g_vectors", "moire_potential"]


def moire_g_vectors(a_M: float = 1.0) -> np.ndarray:
    """The three first-shell vectors ``g_1, g_2, g_3`` as rows, shape (3, 2), units 1/length(a_M)."""
    g1 = (2.0 * math.pi / a_M) * np.array([1.0, -1.0 / math.sqrt(3.0)])
    rotations = [np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]) for t in (0.0, 2 * math.pi / 3, 4 * math.pi / 3)]
    return np.stack([rot @ g1 for rot in rotations])


def moire_potential(positions, V, phi_deg, a_M: float = 1.0):
    """``Delta(r) = -2 V sum_j cos(g_j . r + phi)`` at positions (..., 2).

    Args:
        positions: (..., 2) Cartesian positions, same length unit as ``a_M``.
        V: potential depth (energy unit of the result), scalar or broadcastable to ``positions[..., 0]``.
        phi_deg: phase phi in degrees.
        a_M: moiré lattice constant.

    Returns:
        (...,) potential energies in the unit of ``V``.
    """
    g = jnp.asarray(moire_g_vectors(a_M), dtype=jnp.result_type(positions, float))
    phi = jnp.asarray(phi_deg) * (jnp.pi / 180.0)
    phases = positions @ g.T + phi[..., None] if jnp.ndim(phi) else positions @ g.T + phi
    return -2.0 * V * jnp.sum(jnp.cos(phases), axis=-1)
