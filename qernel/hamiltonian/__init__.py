"""Continuum Hamiltonians, lattices, Ewald sums, band structures and their NetKet operators."""

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
from .hilbert import ElectronHilbert, join_sample, split_sample
from .jellium import ElectronGas
from .lattice import Lattice, Supercell, square_lattice, triangular_lattice
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
    "ElectronHilbert",
    "join_sample",
    "split_sample",
    "ElectronGas",
    "Lattice",
    "Supercell",
    "square_lattice",
    "triangular_lattice",
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
