"""Moiré / trap / electron-gas Hamiltonians: conventions, symmetries and input validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netket as nk  # noqa: F401
from qernel import units
from qernel.hamiltonian.jellium import ElectronGas
from qernel.geometry.lattice import triangular_lattice
from qernel.hamiltonian.moire import WSE2_WS2, MoireHamiltonian
from qernel.hamiltonian.moire_potential import moire_g_vectors, moire_potential
from qernel.hamiltonian.trap import HarmonicTrap


def test_g_vectors_follow_design_convention():
    """DESIGN.md section 1: g_1 . a_1 = 2 pi, g_1 . a_2 = 0, |g| = 4 pi / (sqrt(3) a_M), 120 deg apart."""
    a_M = 8.031
    lattice = triangular_lattice(a_M)
    g = moire_g_vectors(a_M)
    np.testing.assert_allclose(g[0] @ lattice.vectors.T, [2 * math.pi, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 4 * math.pi / (math.sqrt(3) * a_M))
    np.testing.assert_allclose(g.sum(0), 0.0, atol=1e-12)
    # every g_j is a reciprocal lattice vector
    coefficients = g @ np.linalg.inv(lattice.reciprocal_vectors)
    np.testing.assert_allclose(coefficients, np.round(coefficients), atol=1e-12)


def test_moire_potential_sign_convention_minimum_location():
    """Delta = -2V sum cos(g.r + phi): at r = 0 and phi = 0 it is -6V (the minimum for V > 0)."""
    assert float(moire_potential(jnp.zeros(2), 15.0, 0.0)) == pytest.approx(-90.0)
    # phi -> phi + 180 deg flips the sign (Wu et al.'s convention differs by exactly this)
    r = jnp.array([0.3, 0.1])
    assert float(moire_potential(r, 15.0, 225.0)) == pytest.approx(-float(moire_potential(r, 15.0, 45.0)))


@settings(max_examples=25, deadline=None)
@given(
    st.floats(-2, 2), st.floats(-2, 2), st.integers(-3, 3), st.integers(-3, 3),
    st.floats(-50, 50), st.floats(-180, 180),
)
def test_moire_potential_invariant_under_moire_lattice_vectors(x, y, n1, n2, V, phi):
    """Delta(r + n1 a1 + n2 a2) = Delta(r) for any moiré lattice vector."""
    lattice = triangular_lattice(1.0)
    r = jnp.array([x, y])
    shift = n1 * lattice.vectors[0] + n2 * lattice.vectors[1]
    np.testing.assert_allclose(moire_potential(r + shift, V, phi), moire_potential(r, V, phi), atol=1e-9)


def test_moire_units_and_energies():
    ham = MoireHamiltonian(**WSE2_WS2, supercell=3)
    assert ham.n_electrons == 9 and ham.n_up == 9 and ham.conditioned_on == ("V",)
    assert ham.energy_unit == pytest.approx(2 * 38.09982 / (0.35 * 8.031**2))
    assert ham.coulomb_strength == pytest.approx((1439.9645 / (5 * 8.031)) / ham.energy_unit)
    # the one-body energy reads V from the sample, in meV, and converts to internal units
    positions = jnp.zeros((9, 2))
    for V in (5.0, 15.0):
        e = ham.one_body_energy(positions, jnp.array([V]))
        assert float(e) * ham.energy_unit == pytest.approx(9 * (-2 * V * 3 * math.cos(math.radians(45.0))))


def test_moire_interaction_uses_ewald_with_coulomb_prefactor():
    """A triangular Wigner crystal with one electron per moiré cell: E_int / N = e^2/(eps a_M) times
    the triangular Madelung constant -1.106103 / r_s (Bonsall & Maradudin, PRB 15, 1959 (1977)),
    r_s = sqrt(sqrt(3) / (2 pi)) a_M."""
    ham = MoireHamiltonian(**WSE2_WS2, supercell=2)
    sites = jnp.asarray(np.array([[i, j] for i in range(2) for j in range(2)], float) @ triangular_lattice(1.0).vectors)
    energy_meV = float(ham.interaction_energy(sites, jnp.array([15.0]))) * ham.energy_unit / 4
    r_s = math.sqrt(math.sqrt(3) / (2 * math.pi))
    expected = units.COULOMB_MEV_NM / (5 * 8.031) * (-1.106103 / r_s)
    assert energy_meV == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(m_star=0.0), "m_star"),
        (dict(m_star=-1.0), "m_star"),
        (dict(eps=0.0), "eps"),
        (dict(a_M=-8.0), "a_M"),
        (dict(supercell=[[1, 0], [2, 0]]), "singular"),
        (dict(supercell=[[1.5, 0], [0, 1]]), "integer"),
        (dict(supercell=3, filling=0.5), "filling"),
        (dict(supercell=2, n_electrons=3, filling=1.0), "inconsistent"),
        (dict(n_electrons=0), "N"),
        (dict(n_electrons=3, n_up=4), "n_up"),
        (dict(conditioned_on=("m_star",)), "conditioned"),
        (dict(conditioned_on=("W",)), "conditioned_on"),
    ],
)
def test_moire_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MoireHamiltonian(**kwargs)


def test_other_hamiltonians_reject_bad_input():
    with pytest.raises(ValueError, match="omega"):
        HarmonicTrap(2, omega=0.0)
    with pytest.raises(ValueError, match="n_electrons"):
        HarmonicTrap(0)
    with pytest.raises(ValueError, match="r_s"):
        ElectronGas(4, r_s=-1.0)
    with pytest.raises(ValueError, match="cell"):
        ElectronGas(4, r_s=1.0, cell="hexagon")


def test_parameter_values_are_validated_with_names():
    ham = MoireHamiltonian(supercell=1)
    with pytest.raises(ValueError, match="V must lie in"):
        ham.check_parameter_values(np.array([[1e5]]))
    with pytest.raises(ValueError, match="last dimension P=1"):
        ham.check_parameter_values(np.zeros((3, 2)))


def test_electron_gas_density_and_wigner_crystal_limit():
    """A square electron gas cell with 1 electron is a square Wigner crystal: Madelung -1.100244/r_s
    (Bonsall & Maradudin 1977)."""
    gas = ElectronGas(1, r_s=2.0)
    assert gas.supercell.area == pytest.approx(math.pi * 4.0)
    energy = float(gas.interaction_energy(jnp.zeros((1, 2)), jnp.zeros(0)))
    assert energy == pytest.approx(-1.100244 / 2.0, rel=1e-5)


def test_trap_potential():
    trap = HarmonicTrap(2, omega=0.5, conditioned_on=("omega",))
    positions = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    assert float(trap.one_body_energy(positions, jnp.array([0.5]))) == pytest.approx(0.5 * 0.25 * 5.0)
    assert float(trap.interaction_energy(positions, jnp.array([0.5]))) == pytest.approx(1 / math.sqrt(5.0))
    assert float(trap.one_body_energy(positions, jnp.array([1.0]))) == pytest.approx(2.5)
