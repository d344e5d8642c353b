"""The 2D homogeneous electron gas (jellium), Hartree atomic units.

    H = sum_i -1/2 nabla_i^2 + sum_{i<j} 1/|r_i - r_j|  (Ewald, uniform neutralising background)

in a periodic supercell whose area is ``N pi r_s^2`` (density parameter r_s in bohr). References:
Tanatar & Ceperley, PRB 39, 5005 (1989); Drummond & Needs, PRB 79, 085414 (2009).
"""

from __future__ import annotations

import math

import numpy as np

from .base import ContinuumHamiltonian, spin_sector
from .ewald import EwaldSum
from ..geometry.lattice import Lattice, Supercell, square_lattice, triangular_lattice

__all__ = ["ElectronGas"]


class ElectronGas(ContinuumHamiltonian):
    """2D jellium of N electrons at density parameter ``r_s`` (bohr).

    Args:
        n_electrons: N > 0.
        r_s: density parameter, ``pi r_s^2 = area per electron`` (bohr), > 0.
        cell: ``"square"`` or ``"triangular"`` simulation cell shape (a single cell of that
            Bravais lattice, scaled to area ``N pi r_s^2``).
        n_up: spin-up count (default N: fully polarised if ``polarized`` else ceil(N/2)).
        polarized: fully polarised when ``n_up`` is None (default False).

    Example:
        >>> from qernel.hamiltonian.jellium import ElectronGas
        >>> gas = ElectronGas(4, r_s=1.0)
        >>> round(gas.supercell.area / (4 * 3.141592653589793), 6)
        1.0
    """

    def __init__(
        self,
        n_electrons: int,
        r_s: float,
        *,
        cell: str = "square",
        n_up: int | None = None,
        polarized: bool = False,
    ) -> None:
        n_up, n_down = spin_sector(n_electrons, n_up, polarized)
        if not (math.isfinite(float(r_s)) and r_s > 0):
            raise ValueError(f"r_s must be a finite number > 0 (bohr), got {r_s}")
        area = (n_up + n_down) * math.pi * r_s**2
        if cell == "square":
            lattice = square_lattice(math.sqrt(area))
        elif cell == "triangular":
            lattice = triangular_lattice(math.sqrt(2.0 * area / math.sqrt(3.0)))
        else:
            raise ValueError(f"cell must be 'square' or 'triangular', got {cell!r}")
        supercell = Supercell(lattice, 1)
        super().__init__(n_up, n_down, supercell, dict(r_s=float(r_s)), ())
        self.ewald = EwaldSum(supercell.vectors)

    @property
    def cusp_coupling(self) -> float:
        """1.0: bare Coulomb repulsion in Hartree atomic units."""
        return 1.0

    @property
    def length_scale(self) -> float:
        """The density parameter ``r_s`` (bohr), the mean inter-electron distance."""
        return self.parameters["r_s"]

    def one_body_energy(self, positions, carried):
        return 0.0 * positions[0, 0]

    def interaction_energy(self, positions, carried):
        return self.ewald(positions)
