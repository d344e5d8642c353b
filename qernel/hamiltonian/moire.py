"""The continuum model of electrons in a TMD moiré heterobilayer (DESIGN.md section 1).

    H = sum_i [ -hbar^2 nabla_i^2 / (2 m*) + Delta(r_i) ] + sum_{i<j} e^2 / (eps |r_i - r_j|)
    Delta(r) = -2 V sum_j cos(g_j . r + phi)

on a periodic supercell of the triangular moiré lattice, Coulomb by 2D Ewald summation with a
uniform neutralising background. Internally lengths are in a_M and energies in
``E0 = hbar^2 / (m* a_M^2)`` (:mod:`qernel.units`); the user API speaks meV, nm, degrees, m_e.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from .. import units
from .base import ContinuumHamiltonian, spin_sector
from .ewald import EwaldSum
from ..geometry.lattice import Supercell, triangular_lattice
from .moire_potential import moire_potential

__all__ = ["MoireHamiltonian", "WSE2_WS2"]

#: WSe2/WS2 parameters of Geier, Nazaryan, Zaklama, Fu, PRB 112, 045119 (2025) and QERNEL
#: (arXiv 2604.26018); eps = 5 there (10 is also used in the literature).
WSE2_WS2 = dict(V=15.0, phi=45.0, m_star=0.35, a_M=8.031, eps=5.0)

_PARAMETER_RANGES = {
    # meV; V < 0 is rejected: -V cos(x + phi) = V cos(x + phi + 180 deg), so a negative depth is the
    # positive one with phi + 180 deg, and one sign convention keeps V-families unambiguous
    "V": (0.0, 1.0e4),
    "phi": (-360.0, 360.0),  # degrees
}


def _positive(name: str, value: float, unit: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 ({unit}), got {value}")
    return value


def _negative_V_message(V, phi) -> str:
    return (f"V must be >= 0 meV, got {V}: a negative depth is the same potential as V = {abs(float(V)):g} "
            f"with phi = {float(phi) + 180.0:g} deg (phi + 180); write that instead")


class MoireHamiltonian(ContinuumHamiltonian):
    """Electrons in a moiré superlattice potential with Coulomb interactions.

    Args:
        V: moiré potential depth in meV, >= 0 (a negative depth is the same potential as -V with
            ``phi + 180``: write that instead; negative values are rejected).
        phi: moiré potential phase in degrees.
        m_star: effective mass in units of m_e (> 0).
        a_M: moiré lattice constant in nm (> 0).
        eps: relative permittivity (> 0).
        supercell: integer n (n x n), a (2, 2) integer matrix of the moiré lattice, or a
            :class:`~qernel.geometry.lattice.Supercell` of ``triangular_lattice(1.0)``
            (internal units). Default: one moiré cell.
        n_electrons: total N; default ``filling * n_cells``.
        filling: electrons per moiré cell (used if ``n_electrons`` is None; default 1).
        n_up: spin-up count; default ``N`` if ``polarized`` else ``ceil(N/2)``.
        polarized: fully spin-polarised sector when ``n_up`` is not given (default True:
            the spin-polarised sector is the usual setting of the moiré Wigner-crystal studies).
        conditioned_on: parameters carried by samples (subset of V, phi); default ``("V",)``.
        interaction: scale of the Coulomb term (1 = physical; 0 = non-interacting).
        ewald_alpha: optional Ewald splitting parameter (internal inverse length).

    Example:
        >>> from qernel.hamiltonian.moire import MoireHamiltonian, WSE2_WS2
        >>> ham = MoireHamiltonian(**WSE2_WS2, supercell=3)
        >>> ham.n_electrons, ham.conditioned_on
        (9, ('V',))
    """

    energy_unit_name = "meV"
    length_unit_name = "nm"

    def __init__(
        self,
        V: float = WSE2_WS2["V"],
        phi: float = WSE2_WS2["phi"],
        m_star: float = WSE2_WS2["m_star"],
        a_M: float = WSE2_WS2["a_M"],
        eps: float = WSE2_WS2["eps"],
        *,
        supercell=1,
        n_electrons: int | None = None,
        filling: float | None = None,
        n_up: int | None = None,
        polarized: bool = True,
        conditioned_on: Sequence[str] = ("V",),
        interaction: float = 1.0,
        ewald_alpha: float | None = None,
    ) -> None:
        m_star = _positive("m_star", m_star, "units of m_e")
        a_M = _positive("a_M", a_M, "nm")
        eps = _positive("eps", eps, "relative permittivity")
        for name, value in (("V", V), ("phi", phi), ("interaction", interaction)):
            if not math.isfinite(float(value)):
                raise ValueError(f"{name} must be finite, got {value}")
        if float(interaction) < 0:
            raise ValueError(f"interaction must be >= 0, got {interaction}")
        if float(V) < 0:
            raise ValueError(_negative_V_message(V, phi))

        if not isinstance(supercell, Supercell):
            supercell = triangular_lattice(1.0).supercell(supercell)
        elif not np.allclose(supercell.primitive.vectors, triangular_lattice(1.0).vectors):
            raise ValueError(
                "supercell must be built on triangular_lattice(1.0) (lengths in units of a_M), got "
                f"primitive vectors {supercell.primitive.vectors.tolist()}"
            )
        n_cells = supercell.n_cells
        if n_electrons is None:
            filling = 1.0 if filling is None else float(filling)
            if not filling > 0:
                raise ValueError(f"filling must be > 0, got {filling}")
            n_float = filling * n_cells
            if abs(n_float - round(n_float)) > 1e-9:
                raise ValueError(
                    f"filling x number of moiré cells must be an integer number of electrons N, got "
                    f"filling={filling} x n_cells={n_cells} = {n_float}"
                )
            n_electrons = int(round(n_float))
        elif filling is not None and abs(float(filling) * n_cells - n_electrons) > 1e-9:
            raise ValueError(
                f"n_electrons={n_electrons} is inconsistent with filling={filling} x n_cells={n_cells} "
                f"= {float(filling) * n_cells}"
            )
        n_up, n_down = spin_sector(n_electrons, n_up, polarized)

        parameters = dict(V=float(V), phi=float(phi), m_star=m_star, a_M=a_M, eps=eps)
        super().__init__(n_up, n_down, supercell, parameters, conditioned_on, _PARAMETER_RANGES)
        unsupported = set(self.conditioned_on) - set(_PARAMETER_RANGES)
        if unsupported:
            raise ValueError(
                f"MoireHamiltonian can be conditioned on {sorted(_PARAMETER_RANGES)} only, got {sorted(unsupported)}"
            )
        self.interaction = float(interaction)
        self._energy_unit = units.moire_energy_unit_meV(m_star, a_M)
        self.coulomb_strength = units.moire_coulomb_strength(m_star, a_M, eps)
        self.ewald = EwaldSum(supercell.vectors, alpha=ewald_alpha)

    @classmethod
    def wse2_ws2(cls, **kwargs) -> "MoireHamiltonian":
        """The WSe2/WS2 preset (V = 15 meV, phi = 45 deg, m* = 0.35, a_M = 8.031 nm, eps = 5)."""
        parameters = dict(WSE2_WS2)
        parameters.update({k: kwargs.pop(k) for k in list(kwargs) if k in parameters})
        return cls(**parameters, **kwargs)

    # -- units -----------------------------------------------------------------------------------
    @property
    def energy_unit(self) -> float:
        """meV per internal energy unit ``hbar^2/(m* a_M^2)``."""
        return self._energy_unit

    @property
    def length_unit(self) -> float:
        """nm per internal length unit (a_M)."""
        return self.parameters["a_M"]

    @property
    def cusp_coupling(self) -> float:
        """``interaction x coulomb_strength``: the Coulomb coupling ``e^2 / (4 pi eps_0 eps a_M)`` in
        internal energy units ``hbar^2/(m* a_M^2)`` times the interaction scale (0: non-interacting)."""
        return self.interaction * self.coulomb_strength

    @property
    def length_scale(self) -> float:
        """1.0: the moiré period a_M, the internal length unit."""
        return 1.0

    # -- energies --------------------------------------------------------------------------------
    def check_parameter_values(self, values) -> np.ndarray:
        """As the base class; a negative carried V gets its own message (see ``V`` above)."""
        if "V" in self.conditioned_on:
            column = np.asarray(values, dtype=float)[..., self.conditioned_on.index("V")]
            if np.any(column < 0):
                raise ValueError(f"parameter V must be >= 0 meV, got {column}: a negative depth is the same "
                                 "potential as |V| with phi + 180 deg; write that instead")
        return super().check_parameter_values(values)

    def one_body_energy(self, positions, carried):
        """Moiré potential summed over electrons, internal units. positions (N, 2) in a_M."""
        values = self.parameter_dict(carried)
        V_internal = values["V"] / self._energy_unit
        return jnp.sum(moire_potential(positions, V_internal, values["phi"], a_M=1.0))

    def interaction_energy(self, positions, carried):
        """Ewald Coulomb energy (with background) in internal units. positions (N, 2) in a_M."""
        if self.interaction == 0.0:
            return jnp.zeros((), dtype=positions.dtype)
        return (self.interaction * self.coulomb_strength) * self.ewald(positions)

    # -- single-particle reference ---------------------------------------------------------------
    def single_particle_bands(self, k, n_bands: int, **kwargs) -> np.ndarray:
        """Lowest ``n_bands`` band energies (meV), shape (K, n_bands), at k (K, 2) in nm^-1."""
        from .bands import moire_bands

        p = self.parameters
        return moire_bands(k, n_bands, V=p["V"], phi=p["phi"], m_star=p["m_star"], a_M=p["a_M"], **kwargs)

    def noninteracting_ground_state(self, **overrides):
        """Exact non-interacting ground state in this supercell and spin sector (energies in meV)."""
        from .bands import noninteracting_ground_state

        p = dict(self.parameters)
        p.update(overrides)
        return noninteracting_ground_state(
            self.supercell, self.n_up, self.n_down, V=p["V"], phi=p["phi"], m_star=p["m_star"], a_M=p["a_M"]
        )
