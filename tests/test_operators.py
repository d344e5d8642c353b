"""Kinetic and potential operators on analytic wavefunctions with exactly known local energies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netket as nk  # noqa: F401  (enables float64)
from qernel.hamiltonian.hilbert import ElectronHilbert, join_sample
from qernel.hamiltonian.lattice import triangular_lattice
from qernel.hamiltonian.operators import KineticEnergy, LocalEnergy, local_kinetic_energy
from qernel.hamiltonian.trap import HarmonicTrap

SUPERCELL = triangular_lattice(1.0).supercell([[2, 1], [-1, 1]])  # sqrt3 x sqrt3, non-rectangular


def _plane_wave_logpsi(k_vectors):
    """log psi = i sum_j k_j . r_j, a product of plane waves; k_j (N, 2)."""
    k = jnp.asarray(k_vectors)
    n = k.shape[0]

    def logpsi(params, x):
        positions = x[..., : 2 * n].reshape(*x.shape[:-1], n, 2)
        return 1j * jnp.sum(positions * k, axis=(-1, -2)) * params["scale"]

    return logpsi


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=1, max_size=4),
    st.floats(-20.0, 20.0),
    st.integers(0, 2**31 - 1),
)
def test_plane_wave_kinetic_energy_is_exact(integers, carried_value, seed):
    """exp(i k.r) with k on the supercell reciprocal lattice: E_kin = sum_j |k_j|^2 / 2 exactly."""
    k = np.asarray(integers, dtype=float) @ SUPERCELL.reciprocal_vectors
    n = len(integers)
    hilbert = ElectronHilbert(n, 0, SUPERCELL, ("V",))
    positions = jax.random.uniform(jax.random.PRNGKey(seed), (3, n, 2)) * 2.0
    x = join_sample(positions, jnp.full((3, 1), carried_value))
    values = KineticEnergy(hilbert)._expect_kernel(_plane_wave_logpsi(k), {"scale": 1.0}, x)
    np.testing.assert_allclose(values, 0.5 * np.sum(k**2), rtol=1e-10, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.2, 3.0), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_gaussian_kinetic_energy_is_exact(a, n, seed):
    """psi = exp(-a sum r^2 / 2) in 2D: E_kin = sum_i (a - a^2 r_i^2 / 2) (analytic)."""
    hilbert = ElectronHilbert(n, 0, None, ("omega",))

    def logpsi(params, x):
        r = x[..., : 2 * n]
        # the carried parameter enters log psi but must not be differentiated by the operator
        return -0.5 * params * jnp.sum(r**2, axis=-1) + x[..., -1] ** 3

    positions = jax.random.normal(jax.random.PRNGKey(seed), (4, n, 2))
    x = join_sample(positions, jnp.full((4, 1), 0.7))
    values = KineticEnergy(hilbert)._expect_kernel(logpsi, a, x)
    expected = np.sum(a - 0.5 * a**2 * np.sum(np.asarray(positions) ** 2, axis=-1), axis=-1)
    np.testing.assert_allclose(values, expected, rtol=1e-10)
    # single-sample call (as NetKet's chunked expect does)
    np.testing.assert_allclose(KineticEnergy(hilbert)._expect_kernel(logpsi, a, x[0]), expected[0], rtol=1e-10)


def test_kinetic_matches_hessian_trace_for_complex_generic_function():
    """Forward Laplacian equals -1/2 (tr Hess + grad^2) by jax.hessian for a generic complex log psi."""
    n = 3

    def logpsi(params, x):
        r = x[..., : 2 * n]
        return jnp.sum(jnp.sin(r * params) ** 2, axis=-1) + 1j * jnp.cos(jnp.sum(r, -1)) * x[..., -1]

    x = jnp.array([0.1, 0.5, -0.3, 1.2, 0.7, -0.9, 2.0])

    def f(r):
        return logpsi(1.3, jnp.concatenate([r, x[6:]]))

    r = x[:6]
    lap = jnp.trace(jax.hessian(lambda r: f(r).real)(r)) + 1j * jnp.trace(jax.hessian(lambda r: f(r).imag)(r))
    grad = jax.grad(lambda r: f(r).real)(r) + 1j * jax.grad(lambda r: f(r).imag)(r)
    expected = -0.5 * (lap + jnp.sum(grad**2))
    np.testing.assert_allclose(local_kinetic_energy(logpsi, 1.3, x, n), expected, rtol=1e-12)


def _taut_logpsi(params, x):
    """Exact 2-electron singlet at omega = 1 in 2D: psi = (1 + r12) exp(-(r1^2 + r2^2)/2), E = 3 Ha."""
    r1, r2 = x[..., 0:2], x[..., 2:4]
    r12 = jnp.linalg.norm(r1 - r2, axis=-1)
    return jnp.log1p(r12) - 0.5 * (jnp.sum(r1**2, -1) + jnp.sum(r2**2, -1))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_taut_two_electron_trap_state_has_constant_local_energy(seed):
    """Taut, J. Phys. A 27, 1045 (1994): at omega = 1 the 2D two-electron singlet is
    (1 + r12) exp(-(r1^2 + r2^2)/2) with E = omega + 2 = 3 Ha exactly."""
    ham = HarmonicTrap(2, omega=1.0)
    positions = jax.random.normal(jax.random.PRNGKey(seed), (8, 2, 2)) * 1.5
    x = join_sample(positions, jnp.zeros((8, 0)))
    values = LocalEnergy(ham)._expect_kernel(_taut_logpsi, None, x)
    np.testing.assert_allclose(values, 3.0, rtol=1e-9)


def test_taut_state_is_not_an_eigenstate_at_other_omega():
    """The same function at omega = 0.8 has a non-constant local energy (guards the test above)."""
    ham = HarmonicTrap(2, omega=0.8)
    positions = jax.random.normal(jax.random.PRNGKey(0), (8, 2, 2))
    values = LocalEnergy(ham)._expect_kernel(_taut_logpsi, None, join_sample(positions, jnp.zeros((8, 0))))
    assert np.std(np.asarray(values)) > 1e-2


def test_kinetic_rejects_foreign_hilbert():
    with pytest.raises(TypeError, match="ElectronHilbert"):
        KineticEnergy(object())
