"""The supercell plane-wave basis and the Coulomb convention shared by Hartree-Fock and exact diagonalisation.

Basis. A supercell (integer matrix ``M`` over the moiré lattice, DESIGN.md section 1) has ``n_k = |det M|``
commensurate k-points. Its plane waves are ``<r|q> = exp(i q.r) / sqrt(A)`` with ``q = k + G``: ``k`` a commensurate
k-point (folded into the first moiré Brillouin zone, as :mod:`qernel.hamiltonian.bands` does) and ``G`` a moiré
reciprocal vector with ``|G| <= cutoff |g_1|`` (the same G set for every k). Every ``q`` is a point of the supercell
reciprocal lattice: ``q = q_int @ B_s`` with integer ``q_int`` (:attr:`PlaneWaveBasis.q_int`) and ``B_s`` the
supercell reciprocal vectors, so a momentum shift ``q -> q + p`` is an integer lookup
(:meth:`PlaneWaveBasis.shift_index`). Ordering: k-major, ``index = ik * n_G + iG`` (:attr:`kpoint_index`).

Hamiltonian (internal units: lengths in ``a_M``, all energies returned in meV)::

    E = sum_i h_i + (1/2A) sum_{p != 0} v(p) sum_{i != j} exp(i p.(r_i - r_j)) + N xi / 2,
    h = -hbar^2 nabla^2 / (2 m*) + Delta(r),    v(p) = 2 pi e^2 / (eps |p|),

with ``p`` on the supercell reciprocal lattice, the ``p = 0`` term cancelled by the neutralising background and
``xi`` the Madelung self-term. This is *identical* to the real-space Ewald sum of
:class:`qernel.hamiltonian.ewald.EwaldSum` (E = sum_{i<j} phi_Ewald(r_ij) + N xi / 2): the Ewald pair potential has
Fourier components ``v(p) / A`` for ``p != 0`` and zero cell average, and :attr:`PlaneWaveBasis.madelung_meV` is
taken from :attr:`EwaldSum.madelung`. So a plane-wave energy and qernel's Monte Carlo energy of the same state are
the same number (tests/test_hartree_fock.py checks it). Second-quantised, the two-body term is the normal-ordered
``(1/2) sum_{p != 0} coulomb_meV(p) sum_{a,b} c+_{a+p} c+_{b-p} c_b c_a`` plus ``N xi / 2``; both are scaled by the
Hamiltonian's ``interaction`` factor.

API for the exact-diagonalisation and Hartree-Fock code (all momenta as integer supercell coordinates):

* :meth:`PlaneWaveBasis.from_hamiltonian` -- build from a :class:`~qernel.hamiltonian.moire.MoireHamiltonian`;
* :meth:`~PlaneWaveBasis.one_body_matrix` -- ``<q|h|q'>`` (n_pw, n_pw) complex, meV (block diagonal in k);
* :meth:`~PlaneWaveBasis.coulomb_meV` -- ``v(p) / A`` in meV (0 at p = 0); :attr:`~PlaneWaveBasis.madelung_meV`;
* :meth:`~PlaneWaveBasis.band_states` -- non-interacting Bloch states at every commensurate k in the q basis;
* :meth:`~PlaneWaveBasis.shift_index`, :meth:`~PlaneWaveBasis.form_factor` -- ``<a| exp(-i p.r) |b>``;
* :meth:`~PlaneWaveBasis.orbitals` -- coefficient vectors as :class:`~qernel.hamiltonian.bands.BlochOrbitals`
  (k = 0, G = the q set), usable with :func:`~qernel.hamiltonian.bands.slater_log_amplitude` and qernel's sampler;
* :meth:`~PlaneWaveBasis.evaluate`, :meth:`~PlaneWaveBasis.density` -- orbitals and densities on real-space points.

A coefficient vector ``c`` (n_pw,) is the state ``sum_q c_q |q>``, normalised as ``sum |c_q|^2 = 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..hamiltonian.bands import BlochOrbitals, _fold, _g_integer_coordinates, _reciprocal_integers
from ..hamiltonian.ewald import EwaldSum
from ..geometry.lattice import Supercell
from ..units import COULOMB_MEV_NM, moire_energy_unit_meV

__all__ = ["DEFAULT_CUTOFF", "PlaneWaveBands", "PlaneWaveBasis"]

#: Default cutoff ``|G|_max / |g_1|``. 3.0 keeps 37 G vectors per k; the lowest band at V = 30 meV (WSe2/WS2)
#: is then converged to ~0.002 meV (tests/test_planewave.py measures it against a large cutoff). Any cutoff gives
#: a consistent variational problem: Monte Carlo of a state from this basis agrees with its plane-wave energy.
DEFAULT_CUTOFF: float = 3.0


@dataclass(frozen=True, eq=False)
class PlaneWaveBands:
    """Non-interacting Bloch states of a supercell in the plane-wave basis.

    Attributes:
        energies_meV: (n_k, n_bands) band energies, ascending per k.
        coefficients: (n_k, n_bands, n_pw) complex coefficient vectors in the q basis (zero outside k's block).
    """

    energies_meV: np.ndarray
    coefficients: np.ndarray


@dataclass(frozen=True, eq=False)
class PlaneWaveBasis:
    """Plane waves ``q = k + G`` of a moiré supercell with the model parameters (see the module docstring).

    Attributes:
        supercell: the :class:`~qernel.geometry.lattice.Supercell` (internal units, lengths in a_M).
        V, phi, m_star, a_M, eps: model parameters (meV, degrees, m_e, nm, dimensionless).
        interaction: scale of the Coulomb term (1 physical, 0 non-interacting).
        cutoff: ``|G|_max / |g_1|``.
        q_int: (n_pw, 2) integer coordinates of q in the supercell reciprocal basis.
        q: (n_pw, 2) Cartesian q in 1/a_M.
        kpoint_index: (n_pw,) index into ``kpoints`` of each q's k.
        kpoints_int: (n_k, 2) integer supercell coordinates of the commensurate k (first Brillouin zone).
        kpoints: (n_k, 2) Cartesian k in 1/a_M.
        n_G: number of G vectors per k.
        area: supercell area in a_M^2.
        energy_unit_meV: ``hbar^2 / (m* a_M^2)`` in meV.
    """

    supercell: Supercell
    V: float
    phi: float
    m_star: float
    a_M: float
    eps: float
    interaction: float
    cutoff: float
    q_int: np.ndarray
    q: np.ndarray
    kpoint_index: np.ndarray
    kpoints_int: np.ndarray
    kpoints: np.ndarray
    n_G: int
    area: float
    energy_unit_meV: float

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_hamiltonian(cls, ham, V: float | None = None, cutoff: float | None = None) -> "PlaneWaveBasis":
        """The basis of a :class:`~qernel.hamiltonian.moire.MoireHamiltonian` (its supercell, parameters, interaction).

        Args:
            ham: the moiré Hamiltonian.
            V: moiré depth in meV (default: the Hamiltonian's).
            cutoff: ``|G|_max / |g_1|`` (> 0; default :data:`DEFAULT_CUTOFF`).
        """
        p = ham.parameters
        return cls.build(
            ham.supercell, V=p["V"] if V is None else V, phi=p["phi"], m_star=p["m_star"], a_M=p["a_M"],
            eps=p["eps"], interaction=getattr(ham, "interaction", 1.0), cutoff=cutoff,
        )

    @classmethod
    def build(cls, supercell: Supercell, *, V: float, phi: float, m_star: float, a_M: float, eps: float,
              interaction: float = 1.0, cutoff: float | None = None) -> "PlaneWaveBasis":
        """Basis for explicit parameters (meV, degrees, m_e, nm); see :meth:`from_hamiltonian`."""
        cutoff = DEFAULT_CUTOFF if cutoff is None else float(cutoff)
        for name, value in (("V (meV)", V), ("phi (degrees)", phi)):
            if not math.isfinite(float(value)):
                raise ValueError(f"{name} must be finite, got {value}")
        for name, value in (("m_star", m_star), ("a_M (nm)", a_M), ("eps", eps), ("cutoff", cutoff)):
            if not (math.isfinite(float(value)) and float(value) > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        if not (math.isfinite(float(interaction)) and float(interaction) >= 0):
            raise ValueError(f"interaction must be finite and >= 0, got {interaction}")
        matrix = supercell.matrix
        B_s = supercell.reciprocal_vectors
        k = _fold(supercell.commensurate_kpoints(), 1.0)
        k_int = np.rint(k @ np.linalg.inv(B_s)).astype(int)
        m, _ = _reciprocal_integers(1.0, cutoff)  # moiré integer coordinates of G, sorted by |G|
        G_int = m @ matrix.T  # G = m @ B, B = M^T B_s
        q_int = (k_int[:, None, :] + G_int[None, :, :]).reshape(-1, 2)
        return cls(
            supercell=supercell, V=float(V), phi=float(phi), m_star=float(m_star), a_M=float(a_M), eps=float(eps),
            interaction=float(interaction), cutoff=cutoff, q_int=q_int, q=q_int @ B_s,
            kpoint_index=np.repeat(np.arange(len(k_int)), len(G_int)), kpoints_int=k_int, kpoints=k_int @ B_s,
            n_G=len(G_int), area=supercell.area, energy_unit_meV=moire_energy_unit_meV(m_star, a_M),
        )

    def __post_init__(self):
        low = self.q_int.min(axis=0)
        shape = self.q_int.max(axis=0) - low + 1
        table = -np.ones(tuple(shape), dtype=int)
        table[tuple((self.q_int - low).T)] = np.arange(len(self.q_int))
        object.__setattr__(self, "_low", low)
        object.__setattr__(self, "_table", table)

    @property
    def n_pw(self) -> int:
        """Number of plane waves ``n_k * n_G``."""
        return len(self.q_int)

    @property
    def n_k(self) -> int:
        """Number of commensurate k-points (= moiré cells in the supercell)."""
        return len(self.kpoints_int)

    # -- momenta ----------------------------------------------------------------------------------
    def cartesian(self, p_int) -> np.ndarray:
        """Cartesian momenta (1/a_M), shape (..., 2), of integer supercell coordinates (..., 2)."""
        return np.asarray(p_int) @ self.supercell.reciprocal_vectors

    def index_of(self, q_int) -> np.ndarray:
        """Index of each integer momentum (..., 2) in the basis, -1 where it is not a basis plane wave."""
        rel = np.asarray(q_int, dtype=int) - self._low
        inside = np.all((rel >= 0) & (rel < np.array(self._table.shape)), axis=-1)
        rel = np.where(inside[..., None], rel, 0)
        return np.where(inside, self._table[rel[..., 0], rel[..., 1]], -1)

    def shift_index(self, p_int) -> np.ndarray:
        """For each basis q, the index of ``q + p`` (-1 if outside the basis); shape (n_pw,) for p (2,) integer."""
        return self.index_of(self.q_int + np.asarray(p_int, dtype=int))

    def form_factor(self, a, b, p_int) -> np.ndarray:
        """``<a| exp(-i p.r) |b> = sum_q conj(a_q) b_{q+p}`` for coefficient vectors a (n_a, n_pw), b (n_b, n_pw).

        Returns (n_a, n_b) complex (plane waves outside the basis count as zero).
        """
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        idx = self.shift_index(p_int)
        b_pad = np.concatenate([b, np.zeros((len(b), 1), dtype=b.dtype)], axis=1)
        return np.conj(a) @ b_pad[:, idx].T

    # -- matrices and constants ---------------------------------------------------------------------
    @property
    def coulomb_prefactor_meV(self) -> float:
        """``interaction * e^2 / (eps a_M)`` in meV: the Coulomb energy unit of the internal length a_M."""
        return self.interaction * COULOMB_MEV_NM / (self.eps * self.a_M)

    def coulomb_meV(self, p_int) -> np.ndarray:
        """``v(p) / A = 2 pi e^2 / (eps A |p|)`` in meV for integer supercell momenta p (..., 2); 0 at p = 0."""
        p = np.linalg.norm(self.cartesian(p_int), axis=-1)
        safe = np.where(p > 0, p, 1.0)
        return np.where(p > 0, self.coulomb_prefactor_meV * 2.0 * math.pi / (self.area * safe), 0.0)

    @property
    def madelung_meV(self) -> float:
        """Madelung self-term ``xi`` (meV) of :class:`~qernel.hamiltonian.ewald.EwaldSum`: E contains ``N xi / 2``."""
        return self.coulomb_prefactor_meV * EwaldSum(self.supercell.vectors).madelung

    def kinetic_matrix(self) -> np.ndarray:
        """Diagonal kinetic energies ``hbar^2 |q|^2 / (2 m*)`` (n_pw,) in meV."""
        return 0.5 * self.energy_unit_meV * np.sum(self.q**2, axis=-1)

    def potential_matrix(self) -> np.ndarray:
        """``<q| Delta |q'> = Delta_{q - q'}`` (n_pw, n_pw) complex, meV; components ``-V e^{+-i phi}`` at ``+-g_j``."""
        H = np.zeros((self.n_pw,) * 2, dtype=complex)
        phase = np.exp(1j * math.radians(self.phi))
        columns = np.arange(self.n_pw)
        for g in _g_integer_coordinates(1.0) @ self.supercell.matrix.T:
            for shift, value in ((g, -self.V * phase), (-g, -self.V * np.conj(phase))):
                rows = self.shift_index(shift)  # q_row = q_col + shift: component Delta_{shift}
                ok = rows >= 0
                H[rows[ok], columns[ok]] = value
        return H

    def one_body_matrix(self) -> np.ndarray:
        """``<q| h |q'>`` (n_pw, n_pw) complex Hermitian in meV: kinetic + moiré potential."""
        H = self.potential_matrix()
        H[np.diag_indices(self.n_pw)] += self.kinetic_matrix()
        return H

    def band_states(self, n_bands: int) -> PlaneWaveBands:
        """Lowest ``n_bands`` non-interacting Bloch states at every commensurate k (diagonalising h per k block)."""
        if int(n_bands) != n_bands or not 1 <= n_bands <= self.n_G:
            raise ValueError(f"n_bands must be an integer in [1, {self.n_G}] (G vectors per k), got {n_bands}")
        n_bands = int(n_bands)
        H = self.one_body_matrix()
        energies = np.empty((self.n_k, n_bands))
        coefficients = np.zeros((self.n_k, n_bands, self.n_pw), dtype=complex)
        for ik in range(self.n_k):
            block = np.flatnonzero(self.kpoint_index == ik)
            w, v = np.linalg.eigh(H[np.ix_(block, block)])
            energies[ik] = w[:n_bands]
            coefficients[ik][:, block] = v[:, :n_bands].T
        return PlaneWaveBands(energies_meV=energies, coefficients=coefficients)

    # -- real space --------------------------------------------------------------------------------
    def orbitals(self, coefficients) -> BlochOrbitals:
        """Coefficient vectors (n_orb, n_pw) as :class:`BlochOrbitals` (k = 0, G = q in 1/a_M), JAX-evaluable.

        The orbitals are unnormalised by ``1/sqrt(A)`` (as all BlochOrbitals): fine for Slater determinants.
        """
        coefficients = np.atleast_2d(np.asarray(coefficients, dtype=complex))
        if coefficients.shape[-1] != self.n_pw:
            raise ValueError(f"coefficients must have shape (n_orb, {self.n_pw}), got {coefficients.shape}")
        return BlochOrbitals(k=np.zeros((len(coefficients), 2)), G=self.q.copy(), coefficients=coefficients)

    def evaluate(self, coefficients, positions) -> np.ndarray:
        """Normalised orbitals ``phi_n(r) = sum_q c_nq e^{iq.r} / sqrt(A)`` (1/a_M) at positions (P, 2) in a_M.

        Returns (P, n_orb) complex.
        """
        coefficients = np.atleast_2d(coefficients)
        return np.exp(1j * np.asarray(positions) @ self.q.T) @ coefficients.T / math.sqrt(self.area)

    def grid(self, n_grid: int) -> np.ndarray:
        """(n_grid, n_grid, 2) real-space points (a_M) on a regular grid of the supercell parallelogram."""
        s = np.arange(n_grid) / n_grid
        fractional = np.stack(np.meshgrid(s, s, indexing="ij"), -1)
        return fractional @ self.supercell.vectors

    def density(self, coefficients, n_grid: int = 48) -> tuple[np.ndarray, np.ndarray]:
        """Electron density of occupied orbitals (n_occ, n_pw) on a supercell grid.

        Returns ``(positions_nm, density_per_nm2)`` of shapes (n_grid, n_grid, 2) and (n_grid, n_grid); the density
        integrates to n_occ over the supercell.
        """
        points = self.grid(n_grid)
        values = self.evaluate(coefficients, points.reshape(-1, 2))
        rho = np.sum(np.abs(values) ** 2, axis=-1).reshape(n_grid, n_grid)
        return points * self.a_M, rho / self.a_M**2
