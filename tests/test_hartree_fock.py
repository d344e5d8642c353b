"""Tests of qernel.reference.hartree_fock, each against something independent of the code under test.

* interaction off: the HF energy equals the exact non-interacting energy of qernel.hamiltonian.bands;
* the HF energy of the converged determinant equals qernel's Monte Carlo energy of the same determinant (sampler +
  local energy with the real-space Ewald sum) within 3 error bars: this checks the plane-wave Coulomb and Madelung
  convention against the real-space Ewald sum (DESIGN.md section 9);
* variational order: HF <= the Bloch (non-interacting) determinant's energy under the interacting Hamiltonian;
* sum rules: the density integrates to N, the orbitals are orthonormal, the energy parts add up.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from qernel.hamiltonian import WSE2_WS2, MoireHamiltonian
from qernel.reference.bloch import slater_energy_mc
from qernel.reference.hartree_fock import _CoulombOperators, _evaluate, hartree_fock
from qernel.reference.planewave import PlaneWaveBasis


def _ham(supercell=3, filling=2 / 3, **kwargs):
    params = {**WSE2_WS2, **{k: kwargs.pop(k) for k in list(kwargs) if k in WSE2_WS2}}
    return MoireHamiltonian(**params, supercell=supercell, filling=filling, **kwargs)


def _bloch_determinant_energy(ham, V, cutoff):
    """Plane-wave energy of the non-interacting ground-state determinant under the interacting H (meV)."""
    basis = PlaneWaveBasis.from_hamiltonian(ham, V=V, cutoff=cutoff)
    w, v = np.linalg.eigh(basis.one_body_matrix())
    coefficients = [v[:, : ham.n_up].T, v[:, : ham.n_down].T]
    ops = _CoulombOperators(basis)
    n = ham.n_electrons
    return _evaluate(ops, basis.one_body_matrix(), basis.kinetic_matrix(), coefficients, n * basis.madelung_meV / 2,
                     basis.madelung_meV)["energy"]


@pytest.mark.parametrize("supercell,filling,V", [(2, 1, 15.0), (3, 2 / 3, 25.0)])
def test_noninteracting_limit_equals_bands(supercell, filling, V):
    for kwargs in (dict(interaction=0.0), dict(eps=1e9)):
        ham = _ham(supercell, filling, V=V, **kwargs)
        result = hartree_fock(ham, cutoff=2.0, starts=("noninteracting", "random"))
        exact = ham.noninteracting_ground_state(V=V)  # default (converged) cutoff of qernel.hamiltonian.bands
        from qernel.hamiltonian.bands import noninteracting_ground_state
        same_cutoff = noninteracting_ground_state(ham.supercell, ham.n_up, ham.n_down, V=V, phi=45.0, m_star=0.35,
                                                  a_M=8.031, cutoff=2.0)
        assert result.converged
        assert result.energy_meV == pytest.approx(same_cutoff.energy_meV, abs=1e-5)
        # cutoff 2 vs converged basis: measured 0.06 meV (2x2, V = 15) and 0.24 meV (3x3, V = 25)
        assert result.energy_meV == pytest.approx(exact.energy_meV, abs=0.5)


@pytest.fixture(scope="module")
def hf_25():
    ham = _ham(3, 2 / 3, V=25.0)
    return ham, hartree_fock(ham, cutoff=2.0)


def test_energy_parts_density_orbitals(hf_25):
    ham, r = hf_25
    assert r.converged and r.n_up == 6 and r.n_down == 0
    parts = r.kinetic_meV + r.moire_meV + r.hartree_meV + r.exchange_meV + r.madelung_meV
    assert parts == pytest.approx(r.energy_meV, abs=1e-9)
    assert r.exchange_meV < 0 and r.kinetic_meV > 0
    c = r.coefficients_up
    np.testing.assert_allclose(c.conj() @ c.T, np.eye(6), atol=1e-10)
    positions, rho = r.density(n_grid=30)
    cell_area_nm2 = ham.supercell.area * 8.031**2
    assert rho.mean() * cell_area_nm2 == pytest.approx(6.0, rel=1e-8)
    assert r.gap_meV > 0
    d = r.as_dict()
    assert d["energy_per_electron_meV"] == pytest.approx(r.energy_meV / 6)
    assert r.orbitals_up.n_orbitals == 6 and r.orbitals_down.n_orbitals == 0


def test_crystal_breaks_translation_symmetry_at_large_V():
    """Filling 2/3, eps = 5, V = 30 meV: a honeycomb crystal, one of the three sqrt3 sublattices nearly empty."""
    ham = _ham(3, 2 / 3, V=30.0)
    r = hartree_fock(ham, cutoff=2.0)
    basis = r.basis
    from qernel.reference.hartree_fock import _moire_sites

    sites, classes = _moire_sites(basis)
    occupied = r.coefficients_up
    rho = np.sum(np.abs(basis.evaluate(occupied, sites)) ** 2, axis=-1)
    per_class = np.array([rho[classes == c].mean() for c in range(3)])
    assert per_class.min() < 0.5 * np.sort(per_class)[1]  # one sublattice depleted
    # the Bloch determinant keeps all moiré sites equivalent
    assert r.energy_meV < _bloch_determinant_energy(ham, 30.0, 2.0) - 1.0


def test_hf_below_bloch_determinant(hf_25):
    ham, r = hf_25
    assert r.energy_meV <= _bloch_determinant_energy(ham, 25.0, 2.0) + 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("V", [0.0, 5.0, 10.0, 15.0, 20.0])
def test_hf_below_bloch_determinant_scan(V):
    ham = _ham(3, 2 / 3, V=V)
    r = hartree_fock(ham, cutoff=2.0)
    assert r.energy_meV <= _bloch_determinant_energy(ham, V, 2.0) + 1e-9


def test_unpolarised_sector_runs_and_is_below_bloch():
    ham = _ham(2, 1, V=20.0, polarized=False)
    assert (ham.n_up, ham.n_down) == (2, 2)
    r = hartree_fock(ham, cutoff=2.0)
    assert r.n_up == 2 and r.n_down == 2
    assert r.energy_meV <= _bloch_determinant_energy(ham, 20.0, 2.0) + 1e-9


def test_bad_start_rejected():
    with pytest.raises(ValueError, match="starts"):
        hartree_fock(_ham(1, 1), starts=("nope",))


def _mc_check(ham, V, n_samples, cutoff=2.0, result=None):
    r = hartree_fock(ham, V=V, cutoff=cutoff) if result is None else result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, error = slater_energy_mc(ham, V, r.orbitals_up, r.orbitals_down if ham.n_down else None,
                                       n_samples=n_samples, n_chains=32, seed=1)
    assert error > 0
    assert abs(mean - r.energy_meV) < 3 * error, (mean, error, r.energy_meV)


def test_hf_energy_equals_monte_carlo_energy_3x3(hf_25):
    ham, r = hf_25
    _mc_check(ham, 25.0, n_samples=2048, result=r)


def test_hf_energy_equals_monte_carlo_energy_2x2():
    _mc_check(_ham(2, 1, V=15.0), 15.0, n_samples=2048)


def test_bloch_determinant_plane_wave_energy_equals_monte_carlo_energy():
    """The demo's Bloch column (the exact plane-wave energy of the non-interacting determinant, at the
    demo's eps = 10 and deepest V) is the Monte Carlo energy of the same determinant."""
    from qernel.reference import bloch_slater_energy
    from qernel.reference.bloch import bloch_determinant

    ham = _ham(2, 1, eps=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, error = bloch_slater_energy(ham, 25.0, n_samples=2048, n_chains=32, seed=1)
    exact = bloch_determinant(ham, 25.0)["energy_meV"]
    assert 0 < error < 1.0 and abs(mean - exact) < 3 * error, (mean, error, exact)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("supercell,filling,V", [(3, 2 / 3, 10.0), (3, 2 / 3, 30.0), (2, 1, 25.0)])
def test_hf_energy_equals_monte_carlo_energy_long(supercell, filling, V):
    _mc_check(_ham(supercell, filling, V=V), V, n_samples=16384)


@pytest.mark.parametrize("supercell,filling,n_occ", [(2, 1, 4), (3, 2 / 3, 6)])
def test_exchange_matrix_equals_its_definition(supercell, filling, n_occ):
    """K[a, b] = sum_{p != 0} v(p) rho[a+p, b+p] by an explicit loop over p, and the orbital form W W^H with
    W[a, (p, i)] = sqrt(v(p)) c_i(q_a + p), for random orthonormal orbitals (complex, no symmetry)."""
    basis = PlaneWaveBasis.from_hamiltonian(_ham(supercell, filling), V=12.0, cutoff=1.6)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(basis.n_pw, n_occ)) + 1j * rng.normal(size=(basis.n_pw, n_occ))
    coefficients = np.linalg.qr(z)[0].T  # (n_occ, n_pw)
    rho = coefficients.T @ coefficients.conj()
    q = basis.q_int
    p_set = np.unique((q[:, None] - q[None, :]).reshape(-1, 2), axis=0)
    v = basis.coulomb_meV(p_set)
    K_loop = np.zeros((basis.n_pw, basis.n_pw), dtype=complex)
    W_columns = []
    for p, vp in zip(p_set, v):
        if vp == 0:
            continue
        index = basis.index_of(q + p)  # a -> a + p (or -1)
        inside = index >= 0
        shifted = np.zeros((basis.n_pw, basis.n_pw), dtype=complex)
        shifted[np.ix_(inside, inside)] = rho[np.ix_(index[inside], index[inside])]
        K_loop += vp * shifted
        c_shift = np.zeros((n_occ, basis.n_pw), dtype=complex)
        c_shift[:, inside] = coefficients[:, index[inside]]
        W_columns.append(np.sqrt(vp) * c_shift.T)
    W = np.concatenate(W_columns, axis=1)
    K = _CoulombOperators(basis).exchange(coefficients)
    scale = np.abs(K_loop).max()
    np.testing.assert_allclose(K, K_loop, atol=1e-12 * scale)
    np.testing.assert_allclose(K, W @ W.conj().T, atol=1e-12 * scale)
    np.testing.assert_allclose(K, K.conj().T, atol=1e-12 * scale)
