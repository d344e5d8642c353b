"""Unit conventions of qernel, in one place.

The user-facing API speaks physical units:

* moiré systems: energies in meV, lengths in nm, angles in degrees, masses in m_e,
  relative permittivity ``eps`` dimensionless;
* validation systems (harmonic trap, electron gas): Hartree atomic units
  (hbar = m = e = 1; lengths in bohr, energies in Hartree).

Internally every Hamiltonian works in *natural units* of its own, chosen so that the kinetic
operator is always ``-1/2 nabla^2`` and numbers are O(1):

* moiré: length unit ``L0 = a_M`` and energy unit ``E0 = hbar^2 / (m* a_M^2)``;
* trap and electron gas: ``L0 = 1 bohr``, ``E0 = 1 Hartree`` (already natural).

Each Hamiltonian exposes ``length_unit`` (user units per internal length unit) and
``energy_unit`` (user units per internal energy unit) and converts at the boundary.
"""

from __future__ import annotations

import math

#: hbar^2 / (2 m_e) in meV nm^2 (CODATA 2018).
HBAR2_OVER_2ME_MEV_NM2: float = 38.09982
#: e^2 / (4 pi eps_0) in meV nm (CODATA 2018).
COULOMB_MEV_NM: float = 1439.9645


#: User units of the Hamiltonian parameters (configs, ``--param``, scans, result files).
PARAMETER_UNITS = {"V": "meV", "phi": "degrees", "m_star": "m_e", "a_M": "nm", "eps": "relative permittivity",
                   "omega": "Ha", "r_s": "bohr"}


def moire_energy_unit_meV(m_star: float, a_M_nm: float) -> float:
    """Internal moiré energy unit ``E0 = hbar^2 / (m* a_M^2)`` in meV.

    Args:
        m_star: effective mass in units of the electron mass m_e.
        a_M_nm: moiré lattice constant in nm.
    """
    return 2.0 * HBAR2_OVER_2ME_MEV_NM2 / (m_star * a_M_nm**2)


def moire_coulomb_strength(m_star: float, a_M_nm: float, eps: float) -> float:
    """Coulomb coupling ``e^2 / (eps a_M)`` in internal moiré energy units (dimensionless).

    This is the ratio of the Coulomb energy at distance a_M to ``E0``: the effective
    ``r_s``-like interaction strength of the moiré problem.
    """
    return (COULOMB_MEV_NM / (eps * a_M_nm)) / moire_energy_unit_meV(m_star, a_M_nm)


def degrees_to_radians(angle_deg: float) -> float:
    """Convert degrees to radians."""
    return angle_deg * math.pi / 180.0
