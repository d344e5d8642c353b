"""N electrons in a 2D isotropic harmonic trap (quantum dot), Hartree atomic units.

    H = sum_i [ -1/2 nabla_i^2 + 1/2 omega^2 r_i^2 ] + lambda sum_{i<j} 1 / |r_i - r_j|

Open boundaries. Reference values: Taut, J. Phys. A 27, 1045 (1994) (two electrons, exact at
omega = 1: E = 3 Ha); Pedersen Lohne et al., PRB 84, 115302 (2011) (DMC and coupled cluster for
N <= 20 at several omega; see docs/validation.md for the N = 6 value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp

from .base import ContinuumHamiltonian, spin_sector

__all__ = ["HarmonicTrap", "pairwise_coulomb_open"]


def pairwise_coulomb_open(positions):
    """``sum_{i<j} 1/|r_i - r_j|`` for positions (N, 2) in open space (no periodic images)."""
    n = positions.shape[0]
    if n < 2:
        return jnp.zeros((), dtype=positions.dtype)
    i, j = jnp.triu_indices(n, k=1)
    distances = jnp.linalg.norm(positions[i] - positions[j], axis=-1)
    return jnp.sum(1.0 / distances)


class HarmonicTrap(ContinuumHamiltonian):
    """Electrons in a 2D harmonic trap with Coulomb repulsion (hbar = m = e = 1).

    Args:
        n_electrons: N > 0.
        omega: trap frequency (Hartree), > 0.
        n_up: spin-up count (default ``ceil(N/2)``, or N if ``polarized``).
        interaction: Coulomb strength lambda >= 0 (1 = physical electrons).
        conditioned_on: carried parameters, subset of ("omega", "interaction"); default none.

    Example:
        >>> from qernel.hamiltonian.trap import HarmonicTrap
        >>> HarmonicTrap(2, omega=1.0).n_up
        1
    """

    def __init__(
        self,
        n_electrons: int,
        omega: float = 1.0,
        *,
        n_up: int | None = None,
        polarized: bool = False,
        interaction: float = 1.0,
        conditioned_on: Sequence[str] = (),
    ) -> None:
        n_up, n_down = spin_sector(n_electrons, n_up, polarized)
        if not (math.isfinite(float(omega)) and omega > 0):
            raise ValueError(f"omega must be a finite number > 0 (Hartree), got {omega}")
        if not (math.isfinite(float(interaction)) and interaction >= 0):
            raise ValueError(f"interaction must be a finite number >= 0, got {interaction}")
        ranges = {"omega": (1e-6, 1e6), "interaction": (0.0, 1e6)}
        super().__init__(n_up, n_down, None, dict(omega=omega, interaction=interaction), conditioned_on, ranges)

    @property
    def cusp_coupling(self) -> float:
        """The Coulomb strength lambda (Hartree bohr) given at construction (its reference value when
        carried: the cusp of every carried value is then learned by the network)."""
        return self.parameters["interaction"]

    @property
    def length_scale(self) -> float:
        """Oscillator length ``1/sqrt(omega)`` (bohr) of the ``omega`` given at construction (its
        reference value when carried)."""
        return 1.0 / math.sqrt(self.parameters["omega"])

    def one_body_energy(self, positions, carried):
        omega = self.parameter_dict(carried)["omega"]
        return 0.5 * omega**2 * jnp.sum(positions**2)

    def interaction_energy(self, positions, carried):
        strength = self.parameter_dict(carried)["interaction"]
        return strength * pairwise_coulomb_open(positions)
