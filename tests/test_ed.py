"""Band-projected exact diagonalisation (qernel/reference/ed.py, _ed_fock.py), each against something independent:

* the Fock engine against a dense Hamiltonian built naively, operator by operator, with its own sign bookkeeping;
* interaction off: the exact non-interacting ground energy of qernel.hamiltonian.bands;
* Rayleigh-Ritz: the ground energy does not increase with n_b and lies below the Bloch determinant's;
* the ED ground state as a multi-determinant wavefunction: its Monte Carlo energy under the full continuum
  Hamiltonian (qernel's sampler, local energy and real-space Ewald sum) equals its eigenvalue;
* size refusal and degenerate-multiplet detection before any Fock-space work.
"""

from __future__ import annotations

import itertools
import math

import haiku as hk
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.geometry import split_sample
from qernel.hamiltonian.bands import default_cutoff, noninteracting_ground_state
from qernel.hamiltonian.moire import MoireHamiltonian
from qernel.reference import _ed_fock as fock
from qernel.reference.ed import band_projected_ed, ed_log_amplitude, symmetric_band_counts
from qernel.sampler import ParameterList, make_sampler

pytestmark = pytest.mark.filterwarnings("ignore:open shell")


# ------------------------------------------------------------------------------------------------
# (c) the engine against a naive dense Hamiltonian
# ------------------------------------------------------------------------------------------------
def _apply(ops, occupied):
    """Apply operators [(orbital, is_creation), ...] right to left to the ordered occupation tuple.

    The state ``c+_{j1} c+_{j2} ... |0>`` (j1 < j2 < ...): an operator on orbital j passes the electrons listed
    before j's position, one sign each. Returns (new occupation, sign) or (None, 0).
    """
    occ, sign = list(occupied), 1
    for j, create in reversed(ops):
        if create:
            if j in occ:
                return None, 0
            position = sum(o < j for o in occ)
            occ.insert(position, j)
        else:
            if j not in occ:
                return None, 0
            position = occ.index(j)
            occ.pop(position)
        sign *= (-1) ** position
    return tuple(occ), sign


def _random_model(rng, n, nk):
    momenta = rng.integers(0, nk, n)
    add = (np.arange(nk)[:, None] + np.arange(nk)[None]) % nk
    V = rng.normal(size=(n,) * 4) + 1j * rng.normal(size=(n,) * 4)
    V = V + V.transpose(1, 0, 3, 2)  # V_abcd = V_badc (exchange of the two particles)
    V = V + V.transpose(2, 3, 0, 1).conj()  # Hermitian
    transfer = (momenta[:, None, None, None] + momenta[None, :, None, None]
                - momenta[None, None, :, None] - momenta[None, None, None, :]) % nk
    V = np.where(transfer == 0, V, 0)
    h = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    h = np.where(momenta[:, None] == momenta[None], h + h.conj().T, 0)
    return momenta, add, V, h


@settings(max_examples=12, deadline=None)
@given(n=st.integers(3, 7), nk=st.integers(1, 4), seed=st.integers(0, 2**16), data=st.data())
def test_engine_matches_naive_dense_hamiltonian(n, nk, seed, data):
    N = data.draw(st.integers(2, n - 1), label="N")
    rng = np.random.default_rng(seed)
    momenta, add, V, h = _random_model(rng, n, nk)
    basis = list(itertools.combinations(range(n), N))
    index = {s: i for i, s in enumerate(basis)}
    dense = np.zeros((len(basis),) * 2, complex)
    for s in basis:
        for a, b, c, d in itertools.product(range(n), repeat=4):  # 1/2 V_abcd c+_a c+_b c_d c_c
            t, sign = _apply([(a, True), (b, True), (d, False), (c, False)], s)
            if t is not None:
                dense[index[t], index[s]] += 0.5 * V[a, b, c, d] * sign
        for a, c in itertools.product(range(n), repeat=2):
            t, sign = _apply([(a, True), (c, False)], s)
            if t is not None:
                dense[index[t], index[s]] += h[a, c] * sign

    table = fock.pair_table(fock.pair_matrix(V, h, N), momenta, add)
    sectors = fock.sector_basis(momenta, add, N)
    assert [len(sectors.get(K, [])) for K in range(nk)] == list(fock.count_sector_dimensions(momenta, add, N))
    spectrum = []
    for states in sectors.values():
        H = fock.sector_hamiltonian(states, table, n, N, constant=0.25, chunk_elements=64).toarray()
        rows = [index[tuple(j for j in range(n) if (int(s) >> j) & 1)] for s in states]
        np.testing.assert_allclose(H, dense[np.ix_(rows, rows)] + 0.25 * np.eye(len(rows)), atol=1e-12)
        spectrum.extend(np.linalg.eigvalsh(H))
    # momentum is conserved: the sectors together carry the whole spectrum
    np.testing.assert_allclose(np.sort(spectrum), np.linalg.eigvalsh(dense) + 0.25, atol=1e-10)


def test_sector_hamiltonian_rejects_momentum_violating_amplitudes():
    momenta, add = np.array([0, 1, 0, 1]), np.array([[0, 1], [1, 0]])
    W = np.zeros((4,) * 4, complex)
    W[0, 1, 0, 2] = 1.0  # (0, 2) [momentum 0] -> (0, 1) [momentum 1]
    table = fock.pair_table(W, np.zeros(4, int), np.zeros((1, 1), int))  # every pair "allowed"
    states = fock.sector_basis(momenta, add, 2)[0]
    with pytest.raises(RuntimeError, match="left the momentum sector"):
        fock.sector_hamiltonian(states, table, 4, 2)


# ------------------------------------------------------------------------------------------------
# (a) interaction off, (b) variational order
# ------------------------------------------------------------------------------------------------
def test_interaction_off_reproduces_exact_noninteracting_energy():
    ham = MoireHamiltonian(V=15.0, supercell=2, n_electrons=3, interaction=0.0)
    exact = ham.noninteracting_ground_state().energy_meV
    cutoff = default_cutoff(4, V=15.0, m_star=ham.parameters["m_star"], a_M=ham.parameters["a_M"])
    result = band_projected_ed(ham, n_bands=2, cutoff=cutoff)
    assert result.energy_meV == pytest.approx(exact, abs=1e-7)


def test_weak_coulomb_reproduces_noninteracting_energy_at_filling_two_thirds():
    ham = MoireHamiltonian(V=15.0, eps=1e9, supercell=3, n_electrons=6)  # open shell: 5 of 6 degenerate levels
    p = ham.parameters
    exact = noninteracting_ground_state(ham.supercell, 6, 0, V=15.0, phi=p["phi"], m_star=p["m_star"], a_M=p["a_M"],
                                        cutoff=4.0).energy_meV
    result = band_projected_ed(ham, n_bands=1, cutoff=4.0)
    assert result.energy_meV == pytest.approx(exact, abs=1e-4)  # Coulomb at eps = 1e9: ~1e-6 meV


@settings(max_examples=4, deadline=None)
@given(V=st.floats(0.0, 30.0), eps=st.floats(3.0, 20.0))
def test_ground_energy_non_increasing_in_n_bands(V, eps):
    ham = MoireHamiltonian(V=V, eps=eps, supercell=2, n_electrons=3)
    results = [band_projected_ed(ham, n_bands=n, n_levels=1) for n in (1, 2, 3, 4)]
    energies = [r.energy_meV for r in results]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(energies, energies[1:])), energies
    # the best Bloch determinant lies in every projected space: ED is below it
    assert all(r.energy_meV <= r.bloch_determinant_energy_meV + 1e-9 for r in results)


@pytest.mark.slow  # ~90 s CPU: the required size, N = 6 on 3x3 with n_b = 3 (28 orbitals with the Gamma doublet)
def test_filling_two_thirds_converges_downwards_with_n_bands():
    ham = MoireHamiltonian(V=15.0, eps=5.0, supercell=3, n_electrons=6)
    results = [band_projected_ed(ham, n_bands=n, n_levels=1) for n in (1, 2, 3)]
    assert results[-1].n_orbitals == 28 and results[-1].dimension == math.comb(28, 6)
    energies = [r.energy_meV for r in results]
    assert energies[0] > energies[1] > energies[2], energies
    assert results[-1].peak_memory_GB < 4.0


def test_filling_two_thirds_three_by_three_result_and_json():
    ham = MoireHamiltonian(V=15.0, eps=5.0, supercell=3, n_electrons=6)
    result = band_projected_ed(ham, n_bands=1, n_levels=3)
    d = result.as_dict()
    assert d["dimension"] == math.comb(9, 6) == sum(s["dimension"] for s in d["sectors"])
    assert len(d["sectors"]) == 9 and all(len(s["levels_meV"]) == 3 for s in d["sectors"] if s["dimension"] >= 3)
    assert d["energy_meV"] == min(s["levels_meV"][0] for s in d["sectors"])
    assert d["energy_per_electron_meV"] == pytest.approx(d["energy_meV"] / 6)
    assert d["energy_meV"] < d["bloch_determinant_energy_meV"]
    assert (d["V_meV"], d["n_up"], d["n_down"], d["n_bands"], d["keeps_multiplets"]) == (15.0, 6, 0, 1, True)
    assert all(not isinstance(v, np.ndarray) for v in d.values())


def test_time_reversal_pairs_momentum_sectors():
    """The model is real (no magnetic field, spin polarised): sectors K and -K have the same levels."""
    result = band_projected_ed(MoireHamiltonian(V=15.0, eps=5.0, supercell=3, n_electrons=6), n_bands=1, n_levels=3)
    levels = {tuple(np.round(s["momentum_fractional"], 6)): s["levels_meV"] for s in result.sectors}
    for (a, b), value in levels.items():
        partner = tuple(np.round(np.mod([-a, -b], 1.0), 6) % 1.0)
        # 1e-4 meV: the plane-wave disc around a folded zone-corner k is not mapped onto itself exactly
        np.testing.assert_allclose(value, levels[partner], atol=1e-4)
    assert len({round(v[0], 3) for v in levels.values()}) > 1  # the sectors do differ


def test_spin_sector_contains_the_polarised_levels():
    """SU(2): every S = 1 level of two electrons (the polarised sector) reappears in the S_z = 0 sector."""
    polarised = band_projected_ed(MoireHamiltonian(V=10.0, eps=8.0, supercell=2, n_electrons=2), n_bands=2,
                                  n_levels=64)
    mixed = band_projected_ed(MoireHamiltonian(V=10.0, eps=8.0, supercell=2, n_electrons=2, n_up=1), n_bands=2,
                              n_levels=64)
    assert (mixed.n_up, mixed.n_down, mixed.dimension, polarised.dimension) == (1, 1, 64, 28)
    for p_sector, m_sector in zip(polarised.sectors, mixed.sectors):
        assert p_sector["momentum_fractional"] == m_sector["momentum_fractional"]
        for level in p_sector["levels_meV"]:
            assert np.min(np.abs(np.array(m_sector["levels_meV"]) - level)) < 1e-8
    assert mixed.energy_meV <= polarised.energy_meV + 1e-9


def test_spinful_interaction_off_reproduces_exact_noninteracting_energy():
    ham = MoireHamiltonian(V=15.0, supercell=2, n_electrons=4, n_up=2, interaction=0.0)
    p = ham.parameters
    exact = noninteracting_ground_state(ham.supercell, 2, 2, V=15.0, phi=p["phi"], m_star=p["m_star"], a_M=p["a_M"],
                                        cutoff=4.0).energy_meV
    assert band_projected_ed(ham, n_bands=2, cutoff=4.0, n_levels=1).energy_meV == pytest.approx(exact, abs=1e-7)


# ------------------------------------------------------------------------------------------------
# (e) multiplets and size refusal
# ------------------------------------------------------------------------------------------------
def test_symmetric_band_counts_of_a_table():
    energies = np.array([[0.0, 1.0, 2.0, 2.0, 3.0], [0.5, 0.5, 1.5, 2.5, 3.5]])
    assert symmetric_band_counts(energies) == (2, 4)


def test_gamma_doublet_detected_refused_or_extended():
    ham = MoireHamiltonian(V=15.0, supercell=2, n_electrons=4)
    with pytest.raises(ValueError, match=r"n_bands=3 splits a degenerate multiplet.*\[1, 2, 4"):
        band_projected_ed(ham, n_bands=3, multiplets="refuse")
    result = band_projected_ed(ham, n_bands=3, n_levels=1)
    gamma = int(np.argmin(np.linalg.norm(result.basis.kpoints, axis=-1)))
    assert result.bands_per_k[gamma] == 4 and sum(result.bands_per_k) == 13
    assert not result.keeps_multiplets and 3 not in result.symmetric_n_bands
    assert band_projected_ed(ham, n_bands=4, n_levels=1).keeps_multiplets


def test_too_large_is_refused_with_dimension_and_memory():
    ham = MoireHamiltonian(V=15.0, supercell=3, n_electrons=6)
    with pytest.raises(ValueError, match=r"dimension 1,947,792.*GB"):
        band_projected_ed(ham, n_bands=4)


@settings(max_examples=20, deadline=None)
@given(
    key=st.sampled_from(["n_bands", "n_levels", "bands", "multiplets", "max_memory_GB", "V"]),
    value=st.one_of(st.integers(-3, 0), st.floats(allow_nan=True), st.text(max_size=3), st.booleans()),
)
def test_bad_arguments_rejected_naming_the_key(key, value):
    ham = MoireHamiltonian(V=15.0, supercell=2, n_electrons=2)
    kwargs = {"n_bands": 1, key: value}
    if key in ("max_memory_GB", "V") and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) and (value > 0 or key == "V"):
        return  # a valid value
    with pytest.raises((ValueError, TypeError), match=key):
        band_projected_ed(ham, **kwargs)


def test_unsupported_systems_rejected():
    from qernel.hamiltonian.trap import HarmonicTrap

    with pytest.raises(TypeError, match="MoireHamiltonian"):
        band_projected_ed(HarmonicTrap(n_electrons=2), n_bands=1)


# ------------------------------------------------------------------------------------------------
# (d) the ED ground state under the full continuum Hamiltonian (Monte Carlo, real-space Ewald)
# ------------------------------------------------------------------------------------------------
def _mc_energy(hamiltonian, log_psi, *, n_samples, seed=0):
    """qernel's sampler + local energy (as in qernel.reference.bloch) for an arbitrary log-amplitude."""
    n = hamiltonian.n_electrons

    def model(x):
        positions, _ = split_sample(x, n)
        return log_psi(positions) + hk.get_parameter("zero", (), init=jnp.zeros)

    space = ParameterList([[hamiltonian.parameters["V"]]], ("V",))  # conditioned_on = ("V",)
    sampler = make_sampler(hamiltonian.hilbert, space, n_chains=32, sweep_size=2 * n)
    vstate = nk.vqs.MCState(sampler, hk.transform(model), n_samples=n_samples, n_discard_per_chain=100, seed=seed,
                            sampler_seed=seed)
    stats = vstate.expect(hamiltonian.operator())
    unit = hamiltonian.energy_unit
    return float(np.real(stats.mean)) * unit, float(stats.error_of_mean) * unit


@pytest.mark.slow  # ~1 min each (NetKet compile + 16384 samples)
@pytest.mark.parametrize("n_electrons, n_up", [(3, 3), (2, 1)])
def test_ed_ground_state_monte_carlo_energy_equals_eigenvalue(n_electrons, n_up):
    ham = MoireHamiltonian(V=15.0, eps=5.0, supercell=2, n_electrons=n_electrons, n_up=n_up)
    result = band_projected_ed(ham, n_bands=2, n_levels=1)
    # the correlated state differs from a determinant: the test would not pass with the Bloch energy
    assert result.bloch_determinant_energy_meV - result.energy_meV > 0.5
    energy, error = _mc_energy(ham, ed_log_amplitude(result), n_samples=16384)
    assert abs(energy - result.energy_meV) < 3 * error, (energy, error, result.energy_meV)
    assert error < 0.3 * (result.bloch_determinant_energy_meV - result.energy_meV)
