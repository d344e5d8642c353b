"""Continuum Hamiltonians, Ewald sums, band structures and their NetKet operators.

Lattices, supercells and the Hilbert space live in :mod:`qernel.geometry` (the floor under
Hamiltonians, models and samplers). Their old names here (``qernel.hamiltonian.Supercell``, ...)
still work until qernel 0.3, with a ``DeprecationWarning``.
"""

from .bands import (
    BlochOrbitals,
    BlochStates,
    NonInteractingGroundState,
    high_symmetry_points,
    moire_bands,
    moire_bloch_states,
    noninteracting_ground_state,
    slater_log_amplitude,
)
from .base import ContinuumHamiltonian, spin_sector
from .ewald import EwaldSum, ewald_energy
from .jellium import ElectronGas
from .moire import WSE2_WS2, MoireHamiltonian
from .moire_potential import moire_g_vectors, moire_potential
from .operators import KineticEnergy, LocalEnergy, PotentialEnergy, local_kinetic_energy
from . import driver_check as _driver_check  # noqa: F401  (registers the stock-driver warning)
from .trap import HarmonicTrap

__all__ = [
    "BlochOrbitals",
    "BlochStates",
    "NonInteractingGroundState",
    "high_symmetry_points",
    "moire_bands",
    "moire_bloch_states",
    "noninteracting_ground_state",
    "slater_log_amplitude",
    "ContinuumHamiltonian",
    "spin_sector",
    "EwaldSum",
    "ewald_energy",
    "ElectronGas",
    "WSE2_WS2",
    "MoireHamiltonian",
    "moire_g_vectors",
    "moire_potential",
    "KineticEnergy",
    "LocalEnergy",
    "PotentialEnergy",
    "local_kinetic_energy",
    "HarmonicTrap",
]

#: names that moved to :mod:`qernel.geometry` (``qernel.hamiltonian.<name>`` warns until qernel 0.3)
_MOVED_TO_GEOMETRY = frozenset({
    "ElectronHilbert", "join_sample", "split_sample", "Lattice", "Supercell", "square_lattice", "triangular_lattice",
})


def __getattr__(name: str):
    if name in _MOVED_TO_GEOMETRY:
        import warnings

        from .. import geometry

        warnings.warn(f"qernel.hamiltonian.{name} is deprecated and will be removed in qernel 0.3: "
                      f"use qernel.geometry.{name}", DeprecationWarning, stacklevel=2)
        return getattr(geometry, name)
    raise AttributeError(f"module 'qernel.hamiltonian' has no attribute {name!r}")
