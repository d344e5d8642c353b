"""Tests of qernel.hamiltonian.bands: plane-wave moiré bands, non-interacting reference, Bloch orbitals.

Independent references used below:
* free-electron folding (V = 0): the exact eigenstates are plane waves, E = hbar^2 |k+G|^2 / (2 m*);
* first-order degenerate perturbation theory at the zone-boundary points M (two-fold) and K
  (three-fold), e.g. Ashcroft & Mermin, Solid State Physics, ch. 9 (nearly free electrons);
* symmetries of Delta(r) (DESIGN.md section 1): phi -> phi + 120 deg is a translation, phi -> -phi
  an inversion, combined with time reversal E(k) = E(-k) the spectrum at each k is unchanged;
* the Fourier coefficients of Delta computed by direct quadrature of moire_potential;
* variational (Cauchy interlacing) monotonicity of eigenvalues in nested bases;
* a Slater determinant of exact one-body eigenstates is an exact eigenstate of the non-interacting
  many-body H, so its local energy is constant and equals the sum of the orbital energies.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.hamiltonian.bands import (
    BlochOrbitals,
    default_cutoff,
    high_symmetry_points,
    moire_bands,
    moire_bloch_states,
    moire_hamiltonian_matrix,
    noninteracting_ground_state,
    reciprocal_basis,
    slater_log_amplitude,
)
from qernel.geometry.lattice import triangular_lattice
from qernel.hamiltonian.moire_potential import moire_g_vectors, moire_potential
from qernel.units import HBAR2_OVER_2ME_MEV_NM2, moire_energy_unit_meV

jax.config.update("jax_enable_x64", True)  # NetKet does the same on import

# WSe2/WS2 parameters of DESIGN.md section 1 (Geier et al., PRB 112, 045119 (2025)).
WSE2 = dict(V=15.0, phi=45.0, m_star=0.35, a_M=8.031)
A_M, M_STAR = WSE2["a_M"], WSE2["m_star"]
PREFACTOR = HBAR2_OVER_2ME_MEV_NM2 / M_STAR  # hbar^2 / (2 m*) in meV nm^2
G_LEN = 4 * math.pi / (math.sqrt(3) * A_M)
E_G = PREFACTOR * G_LEN**2  # kinetic energy at |g|: sets the scale of second-order corrections


def _kpoints(*names):
    points = high_symmetry_points(A_M)
    return np.array([points[name] for name in names])


# ------------------------------------------------------------------------------------------------
# geometry
# ------------------------------------------------------------------------------------------------
def test_g_vectors_are_reciprocal_lattice_vectors():
    # g_1 = b_1, g_2 = b_2, g_3 = -b_1 - b_2 for a_1 = a(1,0), a_2 = a(1/2, sqrt(3)/2)
    b1, b2 = triangular_lattice(A_M).reciprocal_vectors
    np.testing.assert_allclose(moire_g_vectors(A_M), np.stack([b1, b2, -b1 - b2]), atol=1e-12)


def test_high_symmetry_points():
    points = high_symmetry_points(A_M)
    b1, b2 = triangular_lattice(A_M).reciprocal_vectors
    # textbook hexagonal BZ: |K| = 4 pi / (3 a), |M| = 2 pi / (sqrt(3) a)
    assert np.linalg.norm(points["K"]) == pytest.approx(4 * math.pi / (3 * A_M))
    assert np.linalg.norm(points["M"]) == pytest.approx(2 * math.pi / (math.sqrt(3) * A_M))
    np.testing.assert_allclose(points["Gamma"], 0.0)
    # K is a zone corner: equidistant from three reciprocal-lattice points; M an edge center: two
    for G in (b1, b1 + b2):
        assert np.linalg.norm(points["K"] - G) == pytest.approx(np.linalg.norm(points["K"]))
    assert np.linalg.norm(points["M"] - b1 - b2) == pytest.approx(np.linalg.norm(points["M"]))
    np.testing.assert_allclose(points["K'"], -points["K"])


def test_reciprocal_basis_is_a_symmetric_disc():
    G = reciprocal_basis(A_M, 5.0)
    assert np.all(np.linalg.norm(G, axis=-1) <= 5.0 * G_LEN * (1 + 1e-12))
    np.testing.assert_allclose(G[0], 0.0)
    # closed under inversion and 60-degree rotation (keeps exact degeneracies after truncation)
    rot = np.array([[0.5, -math.sqrt(3) / 2], [math.sqrt(3) / 2, 0.5]])
    key = lambda X: sorted(map(tuple, np.round(X / G_LEN, 8)))  # noqa: E731
    assert key(G) == key(-G) == key(G @ rot.T)
    # brute-force count of lattice points in the disc
    b = triangular_lattice(A_M).reciprocal_vectors
    m = np.stack(np.meshgrid(np.arange(-12, 13), np.arange(-12, 13)), -1).reshape(-1, 2)
    assert len(G) == np.sum(np.linalg.norm(m @ b, axis=-1) <= 5.0 * G_LEN * (1 + 1e-12))


# ------------------------------------------------------------------------------------------------
# the plane-wave Hamiltonian
# ------------------------------------------------------------------------------------------------
def test_hamiltonian_hermitian_and_fourier_components_match_quadrature():
    k = np.array([[0.11, -0.23], [0.0, 0.0]])
    H, G = moire_hamiltonian_matrix(k, **WSE2, cutoff=2.5)
    np.testing.assert_allclose(H, np.conj(np.swapaxes(H, -1, -2)), atol=1e-13)
    kinetic = PREFACTOR * np.sum((k[:, None] + G[None]) ** 2, -1)
    np.testing.assert_allclose(np.real(np.diagonal(H, axis1=1, axis2=2)), kinetic, atol=1e-12)
    # Delta_q = (1/A_cell) int_cell Delta(r) exp(-i q.r) d^2r, exact on a uniform fractional grid
    # for a trigonometric polynomial (independent of the analytic +-g_j bookkeeping).
    n = 12
    s = (np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2) + 0.5) / n
    r = s @ triangular_lattice(A_M).vectors
    delta_r = np.asarray(moire_potential(jnp.asarray(r), WSE2["V"], WSE2["phi"], A_M))
    q = G[:, None, :] - G[None, :, :]
    fourier = np.einsum("p,ijp->ij", delta_r, np.exp(-1j * np.einsum("ijd,pd->ijp", q, r))) / len(r)
    offdiag = H[0] - np.diag(np.diagonal(H[0]))
    np.testing.assert_allclose(offdiag, fourier - np.diag(np.diagonal(fourier)), atol=1e-11)
    np.testing.assert_allclose(H[1] - H[0], np.diag(np.diagonal(H[1] - H[0])), atol=1e-13)


@settings(max_examples=15, deadline=None)
@given(
    kx=st.floats(-2.0, 2.0),
    ky=st.floats(-2.0, 2.0),
    m_star=st.floats(0.1, 2.0),
    a_M=st.floats(3.0, 20.0),
)
def test_free_electron_bands_are_folded_parabola(kx, ky, m_star, a_M):
    # V = 0: exact eigenstates are plane waves, E = hbar^2 |k+G|^2 / (2 m*), G over the whole lattice
    # (k up to several |g| outside the first zone, which exercises the folding).
    n_bands = 12
    k = np.array([[kx, ky]]) * (4 * math.pi / (math.sqrt(3) * a_M))
    bands = moire_bands(k, n_bands, V=0.0, phi=30.0, m_star=m_star, a_M=a_M)
    b = triangular_lattice(a_M).reciprocal_vectors
    m = np.stack(np.meshgrid(np.arange(-15, 16), np.arange(-15, 16)), -1).reshape(-1, 2)
    exact = np.sort(HBAR2_OVER_2ME_MEV_NM2 / m_star * np.sum((k + m @ b) ** 2, -1))[:n_bands]
    np.testing.assert_allclose(bands[0], exact, rtol=1e-12, atol=1e-10)


# ------------------------------------------------------------------------------------------------
# perturbation theory at M and K
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("phi", [0.0, 45.0, 100.0])
def test_gap_at_M_is_2V_to_first_order(phi):
    # M and M - (b1 + b2) = -M are degenerate free states coupled by |Delta_{g3}| = V:
    # first-order gap 2|V| (Ashcroft & Mermin eq. 9.27); the remainder is second order, O(V^2 / E_g).
    k = _kpoints("M")
    errors = []
    for V in (1e-2, 1e-3):
        bands = moire_bands(k, 2, V=V, phi=phi, m_star=M_STAR, a_M=A_M)[0]
        gap = bands[1] - bands[0]
        assert abs(gap / (2 * V) - 1) <= 10 * V / E_G
        errors.append(abs(gap - 2 * V))
    if phi == 0.0:  # remainder is genuinely quadratic here: 10x smaller V -> 100x smaller error
        assert 50 < errors[0] / errors[1] < 200


@settings(max_examples=15, deadline=None)
@given(phi=st.floats(-180.0, 180.0), sign=st.sampled_from([1.0, -1.0]))
def test_K_point_splitting_matches_circulant(phi, sign):
    # The three corners K, K - g_1, K + g_3 are degenerate free states; within them h is the
    # circulant matrix with first row (0, -V e^{i phi}, -V e^{-i phi}): eigenvalues
    # E_K - 2 V cos(phi + 2 pi m / 3), m = 0, 1, 2 (first-order degenerate perturbation theory).
    V = sign * 1e-3
    k = _kpoints("K")
    e_k = PREFACTOR * np.sum(k[0] ** 2)
    analytic = np.sort(e_k - 2 * V * np.cos(np.radians(phi) + 2 * np.pi * np.arange(3) / 3))
    bands = moire_bands(k, 3, V=V, phi=phi, m_star=M_STAR, a_M=A_M)[0]
    np.testing.assert_allclose(bands, analytic, atol=10 * V**2 / E_G)


@settings(max_examples=12, deadline=None)
@given(
    kx=st.floats(-1.0, 1.0),
    ky=st.floats(-1.0, 1.0),
    phi=st.floats(-180.0, 180.0),
    V=st.floats(-30.0, 30.0),
)
def test_spectrum_invariant_under_phi_plus_120_and_minus_phi(kx, ky, phi, V):
    # DESIGN.md section 1: Delta_{phi+120}(r) = Delta_phi(r + t) with g_j . t = 2 pi / 3 (translation),
    # Delta_{-phi}(r) = Delta_phi(-r) (inversion, k -> -k), and E(k) = E(-k) (real Delta).
    k = np.array([[kx, ky]]) * G_LEN
    kwargs = dict(m_star=M_STAR, a_M=A_M, cutoff=6.0)
    ref = moire_bands(k, 6, V=V, phi=phi, **kwargs)
    for other in (phi + 120.0, phi - 120.0, -phi):
        np.testing.assert_allclose(moire_bands(k, 6, V=V, phi=other, **kwargs), ref, atol=1e-9)
    np.testing.assert_allclose(moire_bands(-k, 6, V=V, phi=phi, **kwargs), ref, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# convergence and Bloch states
# ------------------------------------------------------------------------------------------------
def test_default_basis_converged_at_wse2_parameters():
    # The basis is nested in the cutoff, so eigenvalues decrease monotonically (Cauchy interlacing);
    # the default must agree with a much larger basis to 1e-6 meV.
    k = np.concatenate([_kpoints("Gamma", "K", "M"), np.array([[0.21, -0.13]])])
    n_bands = 6
    cutoff = default_cutoff(n_bands, V=WSE2["V"], m_star=M_STAR, a_M=A_M)
    default = moire_bands(k, n_bands, **WSE2)
    large = moire_bands(k, n_bands, **WSE2, cutoff=cutoff + 3)
    np.testing.assert_allclose(default, large, atol=1e-6)
    small = moire_bands(k, n_bands, **WSE2, cutoff=3.0)
    medium = moire_bands(k, n_bands, **WSE2, cutoff=4.0)
    assert np.all(small >= medium - 1e-12) and np.all(medium >= default - 1e-12)
    assert np.max(small - default) > 1e-6  # the test can tell a bad basis from a good one


def test_bloch_states_are_normalised_eigenvectors():
    k = np.array([[0.3, 0.1], [-0.05, 0.4]])
    states = moire_bloch_states(k, 4, **WSE2, cutoff=6.0)
    H, G = moire_hamiltonian_matrix(states.k, **WSE2, cutoff=6.0)
    np.testing.assert_allclose(states.G, G)
    for i in range(len(k)):
        c = states.coefficients[i]
        np.testing.assert_allclose(c.conj() @ c.T, np.eye(4), atol=1e-12)
        np.testing.assert_allclose(c @ H[i].T, states.energies[i][:, None] * c, atol=1e-9)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(m_star=0.0), "m_star"),
        (dict(m_star=-1.0), "m_star"),
        (dict(a_M=0.0), "a_M"),
        (dict(a_M=-2.0), "a_M"),
        (dict(V=float("nan")), "V"),
        (dict(n_bands=0), "n_bands"),
        (dict(n_bands=2.5), "n_bands"),
        (dict(k=np.zeros(2)), "k"),
        (dict(k=np.zeros((3, 3))), "k"),
        (dict(k=np.zeros((0, 2))), "k"),
        (dict(cutoff=-1.0), "cutoff"),
        (dict(n_bands=1000, cutoff=2.0), "n_bands"),
    ],
)
def test_bad_input_rejected_with_parameter_name(kwargs, name):
    args = dict(k=np.zeros((1, 2)), n_bands=2, **WSE2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        moire_bands(args.pop("k"), args.pop("n_bands"), **args)


def test_ground_state_rejects_bad_supercell_and_counts():
    with pytest.raises(ValueError, match="triangular_lattice"):
        noninteracting_ground_state(triangular_lattice(A_M).supercell(2), 1, 0, **WSE2)
    with pytest.raises(ValueError, match="n_up"):
        noninteracting_ground_state(triangular_lattice(1.0).supercell(2), -1, 0, **WSE2)
    with pytest.raises(ValueError, match="electron"):
        noninteracting_ground_state(triangular_lattice(1.0).supercell(2), 0, 0, **WSE2)


# ------------------------------------------------------------------------------------------------
# non-interacting ground state
# ------------------------------------------------------------------------------------------------
def test_ground_state_free_electrons_equals_supercell_plane_waves():
    # V = 0: the commensurate k + G are exactly the supercell reciprocal lattice; the ground state
    # fills the lowest hbar^2 |K|^2 / (2 m*) over it. 3x3 triangular shells close at 1, 7, 19 states.
    supercell = triangular_lattice(1.0).supercell(3)
    m = np.stack(np.meshgrid(np.arange(-8, 9), np.arange(-8, 9)), -1).reshape(-1, 2)
    levels = np.sort(PREFACTOR * np.sum((m @ supercell.reciprocal_vectors / A_M) ** 2, -1))
    state = noninteracting_ground_state(supercell, 7, 1, V=0.0, phi=0.0, m_star=M_STAR, a_M=A_M)
    assert state.energy_meV == pytest.approx(levels[:7].sum() + levels[0], abs=1e-9)
    assert state.closed_shell
    with pytest.warns(UserWarning, match="open shell"):
        open_state = noninteracting_ground_state(supercell, 4, 0, V=0.0, phi=0.0, m_star=M_STAR, a_M=A_M)
    assert not open_state.closed_shell and open_state.energy_meV == pytest.approx(levels[:4].sum(), abs=1e-9)


def test_ground_state_fills_lowest_band_of_3x3():
    # 9 electrons per spin in 3 x 3 cells fill the lowest band at the 9 commensurate k-points.
    supercell = triangular_lattice(1.0).supercell(3)
    state = noninteracting_ground_state(supercell, 9, 9, **WSE2)
    np.testing.assert_allclose(state.kpoints, supercell.commensurate_kpoints(), atol=1e-9)
    lowest = moire_bands(state.kpoints / A_M, 1, **WSE2)[:, 0]
    assert state.energy_up_meV == pytest.approx(lowest.sum(), abs=1e-9)
    assert state.energy_meV == pytest.approx(2 * lowest.sum(), abs=1e-9)
    assert state.closed_shell and state.gap_up_meV > 1.0  # isolated lowest band
    assert sorted(state.occupied_up) == [(i, 0) for i in range(9)]
    assert state.energy_internal == pytest.approx(state.energy_meV / moire_energy_unit_meV(M_STAR, A_M))


# ------------------------------------------------------------------------------------------------
# Bloch orbitals and the Slater determinant (JAX)
# ------------------------------------------------------------------------------------------------
def _local_energy(log_psi, positions, V_internal, phi):
    """-1/2 lap(psi)/psi + sum_i Delta(r_i) in internal units, by forward-mode Hessian."""
    n = positions.shape[0]
    f = lambda x: log_psi(x.reshape(n, 2))  # noqa: E731
    x = positions.reshape(-1)
    grad = jax.jacfwd(f)(x)
    hess = jax.jacfwd(jax.jacfwd(f))(x)
    kinetic = -0.5 * (jnp.trace(hess) + jnp.sum(grad**2))
    return kinetic + jnp.sum(moire_potential(positions, V_internal, phi, 1.0))


@pytest.mark.parametrize("cells, n_up, n_down", [(2, 4, 1), (3, 7, 1)])
def test_slater_determinant_local_energy_is_constant(cells, n_up, n_down):
    # A determinant of exact one-body eigenstates is an eigenstate of sum_i h_i: E_loc = E_nonint / E0
    # at every configuration (closed shells, so the state is the unique ground state).
    supercell = triangular_lattice(1.0).supercell(cells)
    state = noninteracting_ground_state(supercell, n_up, n_down, **WSE2)
    assert state.closed_shell
    log_psi = slater_log_amplitude(state.orbitals_up, state.orbitals_down)
    e0 = moire_energy_unit_meV(M_STAR, A_M)
    local_energy = jax.jit(lambda x: _local_energy(log_psi, x, WSE2["V"] / e0, WSE2["phi"]))
    rng = np.random.default_rng(cells)
    for _ in range(3):
        positions = jnp.asarray(rng.uniform(0, 1, (n_up + n_down, 2)) @ supercell.vectors)
        e_loc = local_energy(positions)
        assert abs(e_loc.imag) < 1e-7
        assert e_loc.real == pytest.approx(state.energy_internal, abs=1e-7)


def test_orbitals_periodic_and_bloch():
    supercell = triangular_lattice(1.0).supercell(3)
    state = noninteracting_ground_state(supercell, 7, 0, **WSE2)
    orbitals = state.orbitals_up
    r = jnp.asarray(np.random.default_rng(0).uniform(-2, 2, (5, 2)))
    phi = orbitals(r)
    assert phi.shape == (5, 7) and phi.dtype == jnp.complex128
    for L in supercell.vectors:  # commensurate k: periodic in the supercell
        np.testing.assert_allclose(orbitals(r + L), phi, atol=1e-10)
    for a in triangular_lattice(1.0).vectors:  # Bloch theorem: phi(r + a) = e^{i k.a} phi(r)
        np.testing.assert_allclose(orbitals(r + a), phi * np.exp(1j * (orbitals.k @ a))[None], atol=1e-10)
    # not all periodic in the primitive cell (a non-Gamma k is occupied), so the check above is not vacuous
    assert np.max(np.abs(orbitals(r + supercell.primitive.vectors[0]) - phi)) > 1e-3


def test_slater_jit_vmap_float32_antisymmetry():
    supercell = triangular_lattice(1.0).supercell(2)
    state = noninteracting_ground_state(supercell, 4, 1, **WSE2)
    log_psi = slater_log_amplitude(state.orbitals_up, state.orbitals_down)
    batch = jnp.asarray(np.random.default_rng(1).uniform(0, 2, (6, 5, 2)))
    batched = jax.jit(jax.vmap(log_psi))(batch)
    np.testing.assert_allclose(batched, jnp.stack([log_psi(x) for x in batch]), atol=1e-10)
    # the pytree can be passed through jit as an argument
    direct = jax.jit(lambda orb, x: orb(x))(state.orbitals_up, batch[0, :4])
    np.testing.assert_allclose(direct, state.orbitals_up(batch[0, :4]), atol=1e-12)
    # swapping two same-spin electrons flips the sign: log psi changes by i pi (mod 2 pi)
    swapped = batch[0].at[jnp.array([0, 1])].set(batch[0, jnp.array([1, 0])])
    diff = log_psi(swapped) - log_psi(batch[0])
    assert abs(diff.real) < 1e-10 and abs(np.exp(1j * diff.imag) + 1) < 1e-10
    # float32 positions -> complex64, same value to single precision
    single = log_psi(batch[0].astype(jnp.float32))
    assert single.dtype == jnp.complex64
    assert abs(np.exp(complex(single)) - np.exp(complex(batched[0]))) < 1e-4 * abs(np.exp(complex(batched[0])))
    assert isinstance(state.orbitals_up, BlochOrbitals) and state.orbitals_down.n_orbitals == 1
