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

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from qernel.hamiltonian.lattice import Supercell

from .features import periodic_distance, safe_norm
from .orbitals import real_plane_wave_basis

__all__ = ["Jastrow", "cusp_slopes"]


def cusp_slopes(coupling: float) -> tuple[float, float]:
    """2D cusp slopes ``(parallel, antiparallel) = (kappa / 3, kappa)`` for coupling ``kappa``."""
    return coupling / 3.0, coupling


class Jastrow(hk.Module):
    """Spin-resolved two-body Jastrow, positions (B, N, 2) -> J (B,).

    Args:
        n_up, n_down: spin sector (spin-up first).
        supercell: periodic cell or None (open boundaries).
        cusp_coupling: Coulomb coupling ``kappa >= 0`` of the Hamiltonian (internal units).
        length: initial cusp range ``l`` (default: half the inscribed radius of the cell, or 1).
        n_smooth: number of smooth basis functions per spin channel (0 disables them).
    """

    def __init__(
        self,
        n_up: int,
        n_down: int,
        supercell: Supercell | None,
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
        dr = positions[:, :, None, :] - positions[:, None, :, :]  # (B, N, N, 2)
        if self.supercell is not None:
            d = periodic_distance(dr, self.supercell)
        else:
            d = safe_norm(dr)
        spin = np.arange(n) < self.n_up
        parallel = jnp.asarray(spin[:, None] == spin[None, :])  # (N, N)
        pairs = jnp.asarray(np.triu(np.ones((n, n), dtype=bool), k=1))

        def by_spin(values):  # (2,) [parallel, antiparallel] -> (N, N)
            return jnp.where(parallel, values[0], values[1])

        u = jnp.zeros_like(d)
        if self.coupling > 0:
            c = jnp.asarray(cusp_slopes(self.coupling), dtype)
            raw = hk.get_parameter(
                "length_raw", (2,), dtype, init=hk.initializers.Constant(np.log(np.expm1(self.length)))
            )
            inv_length = 1.0 / jax.nn.softplus(raw)
            u = u + by_spin(c) * d / (1.0 + by_spin(inv_length) * d)
        if self.n_smooth > 0:
            w = hk.get_parameter("smooth_weights", (2, self.n_smooth), dtype, init=jnp.zeros)
            if self.supercell is not None:
                g, phase = real_plane_wave_basis(self.supercell, 2 * self.n_smooth + 1)
                g = g[phase == 0][1 : self.n_smooth + 1]  # cos(G.r), G != 0: even in r
                basis = jnp.cos(dr @ jnp.asarray(g.T, dtype))  # (B, N, N, M)
            else:
                sigma = jnp.asarray(self.length * 2.0 ** np.arange(self.n_smooth), dtype)
                basis = jnp.exp(-((d[..., None] / sigma) ** 2))
            u = u + jnp.einsum("bijm,ijm->bij", basis, w[jnp.where(parallel, 0, 1)])
        return jnp.sum(jnp.where(pairs, u, 0.0), axis=(-1, -2))
