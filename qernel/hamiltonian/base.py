"""The common interface of qernel's continuum Hamiltonians.

A Hamiltonian is ``H = sum_i -1/2 nabla_i^2 + U(r; p) + W(r; p)`` in its internal units
(:mod:`qernel.units`): ``U`` is the one-body potential, ``W`` the electron-electron
interaction, ``p`` the Hamiltonian parameters a model may be conditioned on, carried by each
sample (:mod:`qernel.geometry.hilbert`).

To add a new Hamiltonian, subclass :class:`ContinuumHamiltonian`, call ``super().__init__`` with
the electron counts, cell and parameters, and implement :meth:`one_body_energy` and
:meth:`interaction_energy` for a single configuration in ``jax.numpy`` (they are vmapped and
jitted by the operators). See :mod:`qernel.hamiltonian.trap` for the shortest example.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import numpy as np

from ..geometry.hilbert import ElectronHilbert
from ..geometry.lattice import Supercell
from .operators import KineticEnergy, LocalEnergy, PotentialEnergy

__all__ = ["ContinuumHamiltonian", "spin_sector"]


def spin_sector(n_electrons: int, n_up: int | None = None, polarized: bool = False) -> tuple[int, int]:
    """Return ``(n_up, n_down)`` for ``N`` electrons.

    Args:
        n_electrons: total number of electrons N (> 0).
        n_up: number of spin-up electrons (0 <= n_up <= N); default: fully polarised if
            ``polarized`` else the lowest S_z >= 0 sector ``ceil(N / 2)``.
        polarized: if True and ``n_up`` is None, all electrons are spin up.
    """
    if int(n_electrons) != n_electrons or n_electrons <= 0:
        raise ValueError(f"n_electrons must be a positive integer (N > 0), got {n_electrons}")
    n_electrons = int(n_electrons)
    if n_up is None:
        n_up = n_electrons if polarized else (n_electrons + 1) // 2
    if int(n_up) != n_up or not 0 <= n_up <= n_electrons:
        raise ValueError(f"n_up must be an integer in [0, N={n_electrons}], got {n_up}")
    return int(n_up), n_electrons - int(n_up)


class ContinuumHamiltonian(abc.ABC):
    """Base class: N electrons in 2D, a one-body potential and an interaction, carried parameters.

    Args:
        n_up, n_down: spin sector (spin-up electrons come first in a sample).
        supercell: periodic simulation cell in internal length units, or ``None`` (open).
        parameters: all scalar parameters of the Hamiltonian in user units (name -> value).
        conditioned_on: names (subset of ``parameters``) whose values are carried by each sample
            and may vary from chain to chain; the others are fixed at their value here.
        parameter_ranges: allowed open/closed ranges for the carried parameters, used for
            validation of user-supplied values: name -> (low, high).
    """

    #: user unit names, for printing
    energy_unit_name: str = "Ha"
    length_unit_name: str = "bohr"

    def __init__(
        self,
        n_up: int,
        n_down: int,
        supercell: Supercell | None,
        parameters: Mapping[str, float],
        conditioned_on: Sequence[str] = (),
        parameter_ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.n_up, self.n_down = int(n_up), int(n_down)
        self.supercell = supercell
        self.parameters = {k: float(v) for k, v in parameters.items()}
        conditioned_on = tuple(conditioned_on)
        unknown = [name for name in conditioned_on if name not in self.parameters]
        if unknown:
            raise ValueError(
                f"conditioned_on names unknown parameter(s) {unknown}; allowed: {sorted(self.parameters)}"
            )
        if len(set(conditioned_on)) != len(conditioned_on):
            raise ValueError(f"conditioned_on has duplicates: {conditioned_on}")
        self.conditioned_on = conditioned_on
        self.parameter_ranges = dict(parameter_ranges or {})
        self.hilbert = ElectronHilbert(self.n_up, self.n_down, supercell, conditioned_on)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_electrons(self) -> int:
        return self.n_up + self.n_down

    @property
    def n_parameters(self) -> int:
        return len(self.conditioned_on)

    # -- units ---------------------------------------------------------------------------------
    @property
    def energy_unit(self) -> float:
        """User energy units per internal energy unit (e.g. meV per ``hbar^2/(m* a_M^2)``)."""
        return 1.0

    @property
    def length_unit(self) -> float:
        """User length units per internal length unit (e.g. nm per ``a_M``)."""
        return 1.0

    # -- what an ansatz needs --------------------------------------------------------------------
    @property
    def cusp_coupling(self) -> float:
        """Coupling ``kappa`` of the electron-electron interaction at short distance, ``W ~ kappa / r``
        (internal units: internal energy x internal length); sets the Jastrow cusp conditions
        ``kappa`` (opposite spins) and ``kappa / 3`` (same spins) of a 2D wavefunction.

        Default 1.0: bare Coulomb repulsion in internal units (e.g. Hartree atomic units). A
        subclass with a scaled, screened or no interaction overrides it (0 switches the cusp off).
        """
        return 1.0

    @property
    def length_scale(self) -> float:
        """Natural length of the system in internal length units (scalar > 0), e.g. the
        oscillator length of a trap. Ansätze use it for open-boundary input features and
        Gaussian envelopes; periodic cells use their own lattice instead. Default 1.0."""
        return 1.0

    # -- parameters ----------------------------------------------------------------------------
    def check_parameter_values(self, values) -> np.ndarray:
        """Validate carried-parameter values (..., P) against ``parameter_ranges``; return them.

        Raises ``ValueError`` naming the parameter and its allowed range.
        """
        values = np.asarray(values, dtype=float)
        if values.shape[-1:] != (self.n_parameters,):
            raise ValueError(
                f"parameter values must have last dimension P={self.n_parameters} "
                f"({self.conditioned_on}), got shape {values.shape}"
            )
        for i, name in enumerate(self.conditioned_on):
            column = values[..., i]
            if not np.all(np.isfinite(column)):
                raise ValueError(f"parameter {name} must be finite, got {column}")
            low, high = self.parameter_ranges.get(name, (-np.inf, np.inf))
            if np.any(column < low) or np.any(column > high):
                raise ValueError(f"parameter {name} must lie in [{low}, {high}], got {column}")
        return values

    def default_parameter_values(self) -> np.ndarray:
        """(P,) values of the carried parameters as given at construction."""
        return np.array([self.parameters[name] for name in self.conditioned_on], dtype=float)

    def parameter_dict(self, carried) -> dict:
        """Merge carried values (P,) (JAX or NumPy) with the fixed parameters into a name -> value dict."""
        merged = dict(self.parameters)
        for i, name in enumerate(self.conditioned_on):
            merged[name] = carried[..., i]
        return merged

    # -- energies (single configuration, internal units, jax.numpy) -----------------------------
    @abc.abstractmethod
    def one_body_energy(self, positions, carried):
        """Sum of the one-body potential over electrons. positions (N, 2), carried (P,) -> scalar."""

    @abc.abstractmethod
    def interaction_energy(self, positions, carried):
        """Electron-electron interaction energy. positions (N, 2), carried (P,) -> scalar."""

    def potential_energy(self, positions, carried):
        """``one_body_energy + interaction_energy`` for one configuration (internal units)."""
        return self.one_body_energy(positions, carried) + self.interaction_energy(positions, carried)

    def potential_from_sample(self, x, part: str = "total"):
        """Potential energy of one sample row (2N + P,) (internal units): the one "potential of a row".

        Args:
            x: one sample ``[r, p]``, shape (2N + P,); the parameters are read from the row.
            part: ``"total"`` (one-body + interaction), ``"one_body"`` or ``"interaction"``.

        Returns:
            Scalar, internal energy units.
        """
        positions, carried = self.hilbert.split(x)
        if part == "one_body":
            return self.one_body_energy(positions, carried)
        if part == "interaction":
            return self.interaction_energy(positions, carried)
        if part == "total":
            return self.potential_energy(positions, carried)
        raise ValueError(f"part must be one of ('total', 'one_body', 'interaction'), got {part!r}")

    # -- NetKet operators ----------------------------------------------------------------------
    def kinetic_operator(self):
        """Kinetic energy ``-1/2 sum_i nabla_i^2`` (forward Laplacian over electron coordinates only)."""
        return KineticEnergy(self.hilbert)

    def potential_operator(self, part: str = "total"):
        """Potential energy as a NetKet operator: ``part`` in {"total", "one_body", "interaction"}."""
        return PotentialEnergy(self, part)

    def operator(self):
        """The full Hamiltonian ``T + U + W`` as a NetKet operator (internal energy units)."""
        return LocalEnergy(self)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(N={self.n_electrons}, n_up={self.n_up}, n_down={self.n_down}, "
            f"parameters={self.parameters}, conditioned_on={self.conditioned_on})"
        )
