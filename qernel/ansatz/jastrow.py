"""Two-body Jastrow factor with the exact 2D electron-electron cusps.

    J(R) = sum_{i<j} [ c_s d_ij / (1 + d_ij / l_s)  +  v_s(r_ij) ],      psi -> psi * exp(J)

* ``d_ij``: periodic distance :func:`~qernel.ansatz.features.periodic_distance` (smooth,
  supercell-periodic, ``= |r_ij| (1 + O(r^2))``) or ``|r_ij|`` for open boundaries.
* ``s`` is parallel or antiparallel spin. The cusp slopes are the 2D Kato conditions for
  ``H = -1/2 sum nabla^2 + kappa sum 1/r``: ``dJ/dr(0) = kappa / (d - 1) = kappa``
  (antiparallel) and ``kappa / (d + 1) = kappa / 3`` (parallel), d = 2 (Rajagopal, Kimball,
  PRB 15, 2819 (1977); Drummond, Towler, Needs, PRB 70, 235119 (2004)). ``kappa`` is the Coulomb
  coupling in internal units (e.g. :func:`qernel.units.moire_coulomb_strength`; 1 in Hartree
  units); ``kappa = 0`` removes the cusp term.
* ``l_s > 0`` learnable ranges; ``v_s`` a learnable smooth even function, zero at init:
  periodic ``sum_G w_sG cos(G . r)`` over the shortest supercell reciprocal vectors (one per
  +-G pair), open ``sum_m w_sm exp(-(r / sigma_m)^2)``.

Exchange of two same-spin electrons leaves J unchanged (pair terms are symmetric).
"""

from __future__ import annotations

import functools
import itertools

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from qernel._deprecation import positional_deprecated
from qernel.geometry.lattice import Supercell

from .features import periodic_distance, safe_norm
from .fused import PairSum
from .orbitals import real_plane_wave_basis

__all__ = ["Jastrow", "cusp_slopes"]


def cusp_slopes(coupling: float) -> tuple[float, float]:
    """2D cusp slopes ``(parallel, antiparallel) = (kappa / 3, kappa)`` for coupling ``kappa``."""
    return coupling / 3.0, coupling


class Jastrow(hk.Module):
    """Spin-resolved two-body Jastrow, positions (B, N, 2) -> J (B,).

    ``Jastrow(n_up, n_down, supercell, *, cusp_coupling=..., length=..., n_smooth=..., name=...)``:
    the arguments after the cell are keyword-only (by position: deprecated, with a warning).

    Args:
        n_up, n_down: spin sector (spin-up first).
        supercell: periodic cell or None (open boundaries).
        cusp_coupling: Coulomb coupling ``kappa >= 0`` of the Hamiltonian (internal units).
        length: initial cusp range ``l`` (default: half the inscribed radius of the cell, or 1).
        n_smooth: number of smooth basis functions per spin channel (0 disables them).
    """

    @positional_deprecated("cusp_coupling", "length", "n_smooth", "name")
    def __init__(
        self,
        n_up: int,
        n_down: int,
        supercell: Supercell | None,
        *,
        cusp_coupling: float = 1.0,
        length: float | None = None,
        n_smooth: int = 8,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if not cusp_coupling >= 0:
            raise ValueError(f"cusp_coupling (Coulomb coupling kappa) must be >= 0, got {cusp_coupling}")
        if n_smooth < 0:
            raise ValueError(f"n_smooth must be >= 0, got {n_smooth}")
        if length is None:
            length = 0.5 * supercell.inscribed_radius if supercell is not None else 1.0
        if not length > 0:
            raise ValueError(f"Jastrow length must be > 0, got {length}")
        self.n_up, self.n_down = int(n_up), int(n_down)
        self.supercell = supercell
        self.coupling = float(cusp_coupling)
        self.length = float(length)
        self.n_smooth = int(n_smooth)

    def __call__(self, positions: jnp.ndarray) -> jnp.ndarray:
        dtype = positions.dtype
        n = self.n_up + self.n_down
        if n < 2:
            return jnp.zeros(positions.shape[0], dtype)
        inv_length = jnp.zeros((2,), dtype)
        if self.coupling > 0:
            raw = hk.get_parameter(
                "length_raw", (2,), dtype, init=hk.initializers.Constant(np.log(np.expm1(self.length)))
            )
            inv_length = 1.0 / jax.nn.softplus(raw)
        weights = jnp.zeros((2, 0), dtype)
        if self.n_smooth > 0:
            weights = hk.get_parameter("smooth_weights", (2, self.n_smooth), dtype, init=jnp.zeros)
        pairs = _jastrow_pair_sum(self.n_up, self.n_down, self.supercell, self.coupling, self.length, self.n_smooth)
        return pairs(positions, inv_length, weights)


def _pair_terms(d, inv_length, weights, *, parallel, supercell, coupling, g, sigma):
    """Jastrow terms ``u_p`` (..., P) of the pairs ``i < j`` (``np.triu_indices`` order).

    Args:
        d: (..., P, 2) displacements ``r_i - r_j``.
        inv_length: (2,) inverse cusp ranges [parallel, antiparallel].
        weights: (2, M) smooth-basis weights [parallel, antiparallel].
        parallel: (P,) static bool, same spin.
        g: (M, 2) cosine wavevectors (periodic) or None; sigma: (M,) Gaussian widths (open) or None.
    """
    dtype = d.dtype
    dist = periodic_distance(d, supercell) if supercell is not None else safe_norm(d)
    channel = np.where(parallel, 0, 1)  # (P,) index of the spin channel
    u = jnp.zeros_like(dist)
    if coupling > 0:
        c = jnp.asarray(np.array(cusp_slopes(coupling))[channel], dtype)
        u = u + c * dist / (1.0 + inv_length[channel] * dist)
    if weights.shape[-1] > 0:
        if g is not None:
            basis = jnp.cos(d @ jnp.asarray(g.T, dtype))  # (..., P, M), even in d
        else:
            basis = jnp.exp(-((dist[..., None] / jnp.asarray(sigma, dtype)) ** 2))
        u = u + jnp.sum(basis * weights[channel], axis=-1)
    return u


@functools.lru_cache(maxsize=None)
def _jastrow_pair_sum(n_up: int, n_down: int, supercell, coupling: float, length: float, n_smooth: int) -> PairSum:
    """The pair sum of one Jastrow configuration, built once (it registers a folx rule, see
    :mod:`qernel.ansatz.fused`)."""
    n = n_up + n_down
    i, j = np.triu_indices(n, k=1)
    spin = np.arange(n) < n_up
    g = sigma = None
    if n_smooth > 0 and supercell is not None:
        g, phase = real_plane_wave_basis(supercell, 2 * n_smooth + 1)
        g = g[phase == 0][1 : n_smooth + 1]  # cos(G.r), G != 0: even in r
    elif n_smooth > 0:
        sigma = length * 2.0 ** np.arange(n_smooth)
    terms = functools.partial(
        _pair_terms, parallel=spin[i] == spin[j], supercell=supercell, coupling=coupling, g=g, sigma=sigma
    )
    return PairSum(terms, n, name=f"qernel_fused_jastrow_{next(_INSTANCES)}")


_INSTANCES = itertools.count()  # unique folx registry names, one per configuration
