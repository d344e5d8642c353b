"""Tests of qernel.reference.planewave: the supercell plane-wave basis and its Coulomb convention.

Independent references:
* the band energies of :func:`qernel.hamiltonian.bands.moire_bloch_states` (a separate per-k diagonalisation);
* free electrons (V = 0): a plane wave's energy is hbar^2 |q|^2 / (2 m*) with hbar^2 / (2 m_e) = 38.09982 meV nm^2;
* the Madelung energy of a triangular lattice of point charges, E/N = -1.1061025867 / r_s (Bonsall & Maradudin,
  PRB 15, 1959 (1977): -1.106103), i.e. xi = 2 E/N for one charge per supercell;
* the pair energy of point charges from the plane-wave sum with a Gaussian regulator (no Ewald splitting) against
  the real-space Ewald sum.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from qernel.hamiltonian import WSE2_WS2, MoireHamiltonian
from qernel.hamiltonian.bands import moire_bloch_states
from qernel.reference.planewave import PlaneWaveBasis

SUPERCELLS = [1, 2, 3, [[2, 1], [-1, 1]], [[1, 0], [-1, 2]]]


def _basis(supercell=3, V=15.0, cutoff=None, **kwargs):
    ham = MoireHamiltonian(**{**WSE2_WS2, "V": V}, supercell=supercell, n_electrons=1, **kwargs)
    return PlaneWaveBasis.from_hamiltonian(ham, cutoff=cutoff)


@pytest.mark.parametrize("supercell", SUPERCELLS)
def test_band_states_match_bands_module(supercell):
    basis = _basis(supercell, V=20.0, cutoff=2.5)
    bands = basis.band_states(4)
    ref = moire_bloch_states(basis.kpoints / basis.a_M, 4, V=20.0, phi=45.0, m_star=0.35, a_M=8.031, cutoff=2.5)
    np.testing.assert_allclose(bands.energies_meV, ref.energies, atol=1e-9)
    # eigenvectors: normalised, supported on their own k block, eigenvectors of the one-body matrix
    H = basis.one_body_matrix()
    c = bands.coefficients.reshape(-1, basis.n_pw)
    np.testing.assert_allclose(np.linalg.norm(c, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(c @ H.T, bands.energies_meV.reshape(-1, 1) * c, atol=1e-9)
    for ik in range(basis.n_k):
        assert np.all(bands.coefficients[ik][:, basis.kpoint_index != ik] == 0)


def test_one_body_hermitian_and_block_diagonal():
    basis = _basis([[2, 1], [-1, 1]], V=25.0)
    H = basis.one_body_matrix()
    np.testing.assert_allclose(H, H.conj().T, atol=0)
    off_block = basis.kpoint_index[:, None] != basis.kpoint_index[None, :]
    assert np.all(H[off_block] == 0)
    assert np.count_nonzero(H - np.diag(np.diag(H))) > 0  # the moiré potential couples G's


def test_integer_coordinates_and_shift():
    basis = _basis(3, cutoff=2.0)
    np.testing.assert_allclose(basis.q, basis.q_int @ basis.supercell.reciprocal_vectors, atol=1e-12)
    assert len(np.unique(basis.q_int, axis=0)) == basis.n_pw
    assert basis.n_k == 9
    p = basis.q_int[5] - basis.q_int[0]
    idx = basis.shift_index(p)
    assert idx[0] == 5
    ok = idx >= 0
    np.testing.assert_array_equal(basis.q_int[idx[ok]], basis.q_int[ok] + p)
    # form factor of plane waves: <q_a| e^{-ip.r} |q_b> = delta(q_b = q_a + p)
    eye = np.eye(basis.n_pw)
    F = basis.form_factor(eye, eye, p)
    np.testing.assert_array_equal(F[np.flatnonzero(ok), idx[ok]], 1.0)
    assert F.sum() == ok.sum()


def test_plane_wave_kinetic_energy():
    basis = _basis(2, V=0.0, cutoff=2.0)
    H = basis.one_body_matrix()
    np.testing.assert_allclose(H - np.diag(np.diag(H)), 0.0)
    q_nm = basis.q / 8.031  # 1/nm
    np.testing.assert_allclose(np.diag(H).real, 38.09982 / 0.35 * np.sum(q_nm**2, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_madelung_equals_triangular_lattice_madelung(n):
    """One charge per n x n supercell is a triangular lattice of spacing n a_M: xi / 2 = -1.1061025867 / r_s."""
    basis = _basis(n)
    r_s = math.sqrt(basis.area / math.pi)  # a_M
    expected = 2 * -1.1061025867 / r_s * basis.coulomb_prefactor_meV
    assert basis.madelung_meV == pytest.approx(expected, rel=1e-9)


def test_coulomb_values_and_interaction_scale():
    basis = _basis(3)
    p = np.array([[0, 0], [1, 0], [2, -1]])
    v = basis.coulomb_meV(p)
    assert v[0] == 0
    p_nm = np.linalg.norm(basis.cartesian(p[1:]), axis=-1) / 8.031
    area_nm2 = basis.area * 8.031**2
    np.testing.assert_allclose(v[1:], 2 * math.pi * 1439.9645 / (5.0 * area_nm2 * p_nm), rtol=1e-12)
    off = _basis(3, interaction=0.0)
    assert off.madelung_meV == 0 and np.all(off.coulomb_meV(p) == 0)


def test_pair_energy_plane_wave_sum_equals_ewald():
    """sum_{i<j} phi_Ewald(r_ij) = (1/2A) sum_{p!=0} v(p) sum_{i!=j} e^{ip.r_ij}, the latter with a Gaussian regulator."""
    basis = _basis(2)
    rng = np.random.default_rng(1)
    positions = rng.uniform(0, 1, (3, 2)) @ basis.supercell.vectors
    ham = MoireHamiltonian(**WSE2_WS2, supercell=2, n_electrons=3)
    pair_ewald = float(ham.ewald(positions)) - 3 * ham.ewald.madelung / 2  # charge^2 / a_M
    sigma, n_max = 0.01, 700
    m = np.arange(-n_max, n_max + 1)
    p_int = np.stack(np.meshgrid(m, m, indexing="ij"), -1).reshape(-1, 2)
    p = basis.cartesian(p_int)
    norm = np.linalg.norm(p, axis=-1)
    keep = (norm > 0) & (norm < 7 / sigma)
    p, norm = p[keep], norm[keep]
    structure = np.exp(1j * p @ positions.T).sum(-1)
    pair_pw = np.sum(2 * math.pi / norm * np.exp(-(norm * sigma) ** 2) * (np.abs(structure) ** 2 - 3)) / (2 * basis.area)
    # Gaussian smearing of width sigma changes 1/r by O(sigma^2 / r^3)
    assert pair_pw == pytest.approx(pair_ewald, abs=2e-3)


def test_cutoff_default_converges_lowest_band():
    coarse = _basis(1, V=30.0).band_states(1).energies_meV
    fine = _basis(1, V=30.0, cutoff=7.0).band_states(1).energies_meV
    assert abs(coarse - fine).max() < 5e-3  # meV


def test_orbitals_are_bloch_orbitals_and_normalised_density():
    basis = _basis(2, cutoff=2.0)
    c = basis.band_states(1).coefficients[:, 0]
    orbitals = basis.orbitals(c)
    x = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(np.asarray(orbitals(x)), basis.evaluate(c, x) * math.sqrt(basis.area), atol=1e-10)
    _, rho = basis.density(c, n_grid=24)
    cell_area_nm2 = basis.area * 8.031**2
    assert rho.mean() * cell_area_nm2 == pytest.approx(4.0, rel=1e-10)
    with pytest.raises(ValueError, match="n_bands"):
        basis.band_states(0)

