"""Input features of electron tokens: periodic (supercell) and open-boundary embeddings, spin.

All functions act on positions of shape (B, N, 2) (Cartesian, internal length units) and return
per-electron features (B, N, F). They are smooth (C-infinity) in the positions, so the network
built on them is smooth too; the periodic variants are *exactly* periodic under every supercell
lattice vector because they depend on positions only through ``exp(2 pi i m s)`` with ``s`` the
fractional supercell coordinates and ``m`` an integer harmonic.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from qernel.geometry.lattice import Supercell

__all__ = [
    "periodic_features",
    "open_features",
    "spin_features",
    "periodic_distance",
    "safe_norm",
]


def periodic_features(positions, supercell: Supercell, n_harmonics: int = 1):
    """``[sin(2 pi m s), cos(2 pi m s)]`` for ``m = 1..n_harmonics`` and both fractional axes.

    Args:
        positions: (..., N, 2) Cartesian positions.
        supercell: the periodic cell; ``s = positions @ inv(supercell.vectors)``.
        n_harmonics: number of harmonics M >= 1 (PeriodicWave uses M = 1).

    Returns:
        (..., N, 4 M) features, invariant under ``r_i -> r_i + L`` for any supercell vector L.
    """
    if int(n_harmonics) != n_harmonics or n_harmonics < 1:
        raise ValueError(f"n_harmonics must be an integer >= 1, got {n_harmonics}")
    dtype = positions.dtype
    inverse = jnp.asarray(np.linalg.inv(supercell.vectors), dtype=dtype)
    s = positions @ inverse  # (..., N, 2)
    m = jnp.arange(1, int(n_harmonics) + 1, dtype=dtype)
    omega = 2.0 * jnp.pi * s[..., None, :] * m[:, None]  # (..., N, M, 2)
    omega = omega.reshape(*omega.shape[:-2], -1)
    return jnp.concatenate([jnp.sin(omega), jnp.cos(omega)], axis=-1)


def open_features(positions, length_scale: float = 1.0):
    """Smooth features for open boundaries (harmonic trap), centered at the origin.

    With ``u = r / length_scale``: ``[u / sqrt(1 + |u|^2), log(1 + |u|^2)]``: bounded direction
    features plus a slowly growing radial one, all C-infinity (no ``|r|`` kink at the origin).

    Args:
        positions: (..., N, 2) Cartesian positions.
        length_scale: > 0, e.g. the oscillator length ``1/sqrt(omega)``.

    Returns:
        (..., N, 3) features.
    """
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale}")
    u = positions / jnp.asarray(length_scale, dtype=positions.dtype)
    u2 = jnp.sum(u**2, axis=-1, keepdims=True)
    return jnp.concatenate([u / jnp.sqrt(1.0 + u2), jnp.log1p(u2)], axis=-1)


def spin_features(n_up: int, n_down: int, dtype) -> jnp.ndarray:
    """Spin channel ``+1`` (up, first ``n_up`` electrons) / ``-1`` (down), shape (N, 1)."""
    return jnp.concatenate(
        [jnp.ones((n_up, 1), dtype=dtype), -jnp.ones((n_down, 1), dtype=dtype)], axis=0
    )


def safe_norm(vectors, axis: int = -1):
    """Euclidean norm with a finite (zero) gradient at the zero vector (double-``where`` trick)."""
    squared = jnp.sum(vectors**2, axis=axis)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def periodic_distance(displacements, supercell: Supercell):
    """Smooth periodic distance ``f(d)`` with ``f(d) = |d| (1 + O(|d|^2))`` near every lattice point.

    ``f(d) = |sum_i a_i (1 - exp(i w_i))| / (2 pi)`` with ``w = 2 pi s(d)`` and ``a_i`` the
    supercell vectors (Cassella et al., PRL 130, 036401 (2023)). It vanishes only on the
    supercell lattice, is C-infinity elsewhere and behaves like ``|d|`` at short distance, so a
    Jastrow ``u(f)`` with ``u'(0) = c`` has the exact cusp ``c``.

    Args:
        displacements: (..., 2) Cartesian displacement vectors.
        supercell: the periodic cell.

    Returns:
        (...,) periodic distances (internal length units).
    """
    dtype = displacements.dtype
    vectors = jnp.asarray(supercell.vectors, dtype=dtype)
    inverse = jnp.asarray(np.linalg.inv(supercell.vectors), dtype=dtype)
    omega = 2.0 * jnp.pi * (displacements @ inverse)  # (..., 2)
    real = (1.0 - jnp.cos(omega)) @ vectors  # (..., 2)
    imag = jnp.sin(omega) @ vectors
    return safe_norm(jnp.concatenate([real, imag], axis=-1)) / (2.0 * jnp.pi)
