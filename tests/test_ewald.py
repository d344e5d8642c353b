"""Tests of the 2D Ewald sum (qernel.hamiltonian.ewald).

References:
* Bonsall & Maradudin, PRB 15, 1959 (1977): Madelung energies of 2D Wigner crystals with a
  neutralising background, E/N = -1.106103/r_s (triangular) and -1.100244/r_s (square),
  pi r_s^2 = area per electron, e = 1.
* An independent direct real-space lattice sum with a smooth (C-infinity) cutoff window
  w(r/R) and the matching background integral (no erfc, no reciprocal space): for a window
  equal to 1 near r = 0 the error decays faster than any power of 1/R (4e-9 at R = 40 lattice
  constants), so it converges to the same conditionally-defined energy as the Ewald sum.
* Exact symmetries: translation invariance, periodicity, choice of cell basis and supercell,
  independence of the Ewald splitting parameter, Newton's third law (total force zero).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

jax.config.update("jax_enable_x64", True)

from qernel.hamiltonian.ewald import EwaldSum, ewald_energy  # noqa: E402
from qernel.geometry.lattice import Supercell, square_lattice, triangular_lattice  # noqa: E402

# Bonsall & Maradudin, PRB 15, 1959 (1977), Table I: E/N in units of e^2/r_s.
BONSALL_MARADUDIN = {"triangular": -1.106103, "square": -1.100244}
LATTICES = {"triangular": triangular_lattice, "square": square_lattice}


def _rs(area_per_electron: float) -> float:
    return math.sqrt(area_per_electron / math.pi)


# -- independent reference: smooth-window direct sum ------------------------------------------
_T0 = 0.3  # window is exactly 1 for r < T0 R and 0 for r > R


def _window(t):
    u = np.clip((t - _T0) / (1 - _T0), 1e-300, 1 - 1e-16)
    a, b = np.exp(-1 / u), np.exp(-1 / (1 - u))
    return np.where(t <= _T0, 1.0, np.where(t >= 1, 0.0, 1 - a / (a + b)))


_WINDOW_INTEGRAL = quad(lambda t: float(_window(np.array(t))), 0, 1, limit=200, epsabs=1e-14)[0]


def _direct_sum(positions: np.ndarray, vectors: np.ndarray, radius: float) -> float:
    """1/2 sum_{i,j,L}' w(|r_ij+L|/R)/|r_ij+L| minus the background, (N^2/2A) 2 pi R int w."""
    area = abs(np.linalg.det(vectors))
    n_max = int(radius * np.linalg.norm(vectors, axis=1).max() / area) + 2
    m = np.arange(-n_max, n_max + 1)
    shifts = np.stack(np.meshgrid(m, m, indexing="ij"), -1).reshape(-1, 2) @ vectors
    energy = 0.0
    for ri in positions:
        r = np.linalg.norm((ri - positions)[:, None, :] + shifts[None], axis=-1).ravel()
        r = r[(r > 1e-12) & (r < radius)]
        energy += 0.5 * np.sum(_window(r / radius) / r)
    n = len(positions)
    return energy - 0.5 * n * n / area * 2 * np.pi * radius * _WINDOW_INTEGRAL


# -- strategies ---------------------------------------------------------------------------------
def _random_cell(seed: int) -> np.ndarray:
    """A random, possibly strongly skewed cell of area O(1)-O(10)."""
    rng = np.random.default_rng(seed)
    a1 = np.array([rng.uniform(1.0, 3.0), 0.0])
    a2 = np.array([rng.uniform(-3.0, 3.0), rng.uniform(0.7, 3.0)])
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.stack([a1, a2]) @ rot.T


def _random_positions(seed: int, n: int, vectors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return rng.uniform(-1.0, 2.0, size=(n, 2)) @ vectors  # deliberately not wrapped


# -- Madelung energies ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["triangular", "square"])
@pytest.mark.parametrize("a", [1.0, 2.7])
def test_madelung_energy_bonsall_maradudin(name, a):
    lattice = LATTICES[name](a)
    energy = float(ewald_energy(np.zeros((1, 2)), lattice.vectors))
    # Bonsall & Maradudin, PRB 15, 1959 (1977): published to 7 digits
    assert energy * _rs(lattice.area) == pytest.approx(BONSALL_MARADUDIN[name], rel=1e-6)


@pytest.mark.parametrize("name", ["triangular", "square"])
def test_madelung_energy_matches_direct_sum(name):
    lattice = LATTICES[name](1.0)
    reference = _direct_sum(np.zeros((1, 2)), lattice.vectors, radius=40.0)  # independent, error ~1e-8
    assert float(ewald_energy(np.zeros((1, 2)), lattice.vectors)) == pytest.approx(reference, rel=1e-7)


def test_random_configuration_matches_direct_sum():
    vectors = np.array([[1.3, 0.2], [0.9, 1.1]])
    positions = np.array([[0.1, 0.2], [0.8, 0.6], [1.5, 1.0]])
    reference = _direct_sum(positions, vectors, radius=40.0)  # independent real-space sum
    assert float(ewald_energy(positions, vectors)) == pytest.approx(reference, rel=1e-7, abs=1e-7)


# -- invariances ------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), factor=st.floats(0.5, 8.0))
def test_independent_of_alpha(seed, n, factor):
    vectors = _random_cell(seed)
    positions = _random_positions(seed, n, vectors)
    area = abs(np.linalg.det(vectors))
    reference = float(EwaldSum(vectors)(positions))
    energy = float(EwaldSum(vectors, alpha=factor * math.sqrt(math.pi / area))(positions))
    assert energy == pytest.approx(reference, rel=1e-9, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), shift=st.tuples(st.floats(-5, 5), st.floats(-5, 5)))
def test_invariant_under_common_translation(seed, n, shift):
    vectors = _random_cell(seed)
    positions = _random_positions(seed, n, vectors)
    ewald = EwaldSum(vectors)
    assert float(ewald(positions + np.array(shift))) == pytest.approx(float(ewald(positions)), rel=1e-10, abs=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), m=st.tuples(st.integers(-3, 3), st.integers(-3, 3)))
def test_invariant_when_one_charge_moves_by_a_lattice_vector(seed, n, m):
    vectors = _random_cell(seed)
    positions = _random_positions(seed, n, vectors)
    moved = positions.copy()
    moved[seed % n] += np.array(m) @ vectors
    ewald = EwaldSum(vectors)
    assert float(ewald(moved)) == pytest.approx(float(ewald(positions)), rel=1e-10, abs=1e-10)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 6))
def test_invariant_under_permutation(seed, n):
    vectors = _random_cell(seed)
    positions = _random_positions(seed, n, vectors)
    ewald = EwaldSum(vectors)
    permuted = positions[np.random.default_rng(seed).permutation(n)]
    assert float(ewald(permuted)) == pytest.approx(float(ewald(positions)), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ["triangular", "square"])
@pytest.mark.parametrize("matrix", [2, 3, [[1, 0], [-1, 2]], [[2, 1], [-1, 1]]])
def test_supercell_of_crystal_gives_primitive_energy_per_particle(name, matrix):
    lattice = LATTICES[name](1.0)
    cell = Supercell(lattice, matrix)
    # all primitive lattice points inside the supercell: wrap a generous grid and deduplicate
    m = np.arange(-4, 5)
    points = np.stack(np.meshgrid(m, m, indexing="ij"), -1).reshape(-1, 2) @ lattice.vectors
    fractional = np.round(points @ np.linalg.inv(cell.vectors), 9) % 1.0
    crystal = np.unique(np.round(fractional, 8) % 1.0, axis=0) @ cell.vectors
    assert len(crystal) == cell.n_cells
    per_particle = float(ewald_energy(crystal, cell.vectors)) / cell.n_cells
    primitive = float(ewald_energy(np.zeros((1, 2)), lattice.vectors))
    assert per_particle == pytest.approx(primitive, rel=1e-11)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 5), k=st.integers(-4, 4))
def test_same_lattice_in_skewed_basis_gives_same_energy(seed, n, k):
    vectors = _random_cell(seed)
    positions = _random_positions(seed, n, vectors)
    skewed = np.stack([vectors[0], vectors[1] + k * vectors[0]])  # unimodular change of basis
    flipped = np.stack([vectors[0] + vectors[1], -vectors[1]])
    reference = float(EwaldSum(vectors)(positions))
    assert float(EwaldSum(skewed)(positions)) == pytest.approx(reference, rel=1e-10, abs=1e-10)
    assert float(EwaldSum(flipped)(positions)) == pytest.approx(reference, rel=1e-10, abs=1e-10)


def test_pair_potential_decomposition():
    """E = 1/2 sum_{i!=j} phi(r_ij) + N xi/2 checks the structure-factor form of the code."""
    vectors = _random_cell(7)
    positions = _random_positions(7, 5, vectors)
    ewald = EwaldSum(vectors)
    n = len(positions)
    displacements = (positions[:, None] - positions[None])[~np.eye(n, dtype=bool)]
    energy = 0.5 * float(jnp.sum(ewald.pair_potential(displacements))) + n * ewald.madelung / 2
    assert float(ewald(positions)) == pytest.approx(energy, rel=1e-11)
    # phi is periodic and even
    d = displacements[:3]
    np.testing.assert_allclose(ewald.pair_potential(d + vectors[0] - 2 * vectors[1]), ewald.pair_potential(d), rtol=1e-11)
    np.testing.assert_allclose(ewald.pair_potential(-d), ewald.pair_potential(d), rtol=1e-11)


# -- JAX: dtypes, jit, vmap, grad ------------------------------------------------------------------
def test_float32_and_float64():
    cell = Supercell(triangular_lattice(1.0), 3)
    positions = _random_positions(3, 9, cell.vectors)
    ewald = EwaldSum(cell.vectors)
    e64 = ewald(positions)
    e32 = ewald(positions.astype(np.float32))
    assert e64.dtype == jnp.float64 and e32.dtype == jnp.float32
    assert float(e32) == pytest.approx(float(e64), rel=2e-5)
    # float32 with a float32-level tolerance
    e32_fast = EwaldSum(cell.vectors, tolerance=1e-7)(positions.astype(np.float32))
    assert float(e32_fast) == pytest.approx(float(e64), rel=2e-5)


def test_jit_vmap_and_batch_dimensions():
    vectors = _random_cell(11)
    batch = np.stack([_random_positions(s, 4, vectors) for s in range(3)])
    ewald = EwaldSum(vectors)
    expected = np.array([float(ewald(p)) for p in batch])
    np.testing.assert_allclose(jax.jit(jax.vmap(ewald))(batch), expected, rtol=1e-12)
    np.testing.assert_allclose(ewald(batch), expected, rtol=1e-12)  # leading batch dims accepted

    @jax.jit
    def total(positions):
        return jnp.sum(jax.vmap(ewald)(positions))

    assert float(total(batch)) == pytest.approx(expected.sum(), rel=1e-12)


def test_gradient_finite_and_total_force_zero():
    vectors = _random_cell(5)
    positions = _random_positions(5, 6, vectors)
    ewald = EwaldSum(vectors)
    forces = -jax.grad(ewald)(jnp.asarray(positions))
    assert np.all(np.isfinite(forces))
    np.testing.assert_allclose(np.sum(forces, axis=0), 0.0, atol=1e-9)  # Newton's third law
    # central finite difference of one coordinate
    h = 1e-5
    step = np.zeros_like(positions)
    step[2, 1] = h
    fd = (float(ewald(positions + step)) - float(ewald(positions - step))) / (2 * h)
    assert -float(forces[2, 1]) == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_single_charge_gradient_is_zero_and_finite():
    lattice = triangular_lattice(1.0)
    grad = jax.grad(EwaldSum(lattice.vectors))(jnp.array([[0.3, 0.1]]))
    np.testing.assert_allclose(grad, 0.0, atol=1e-10)


def test_coincident_charges_give_infinite_energy():
    lattice = square_lattice(1.0)
    positions = np.array([[0.2, 0.2], [0.2, 0.2], [0.7, 0.5]])
    assert float(ewald_energy(positions, lattice.vectors)) == np.inf
    positions[1] += lattice.vectors[0]  # coincident up to a lattice vector
    assert float(ewald_energy(positions, lattice.vectors)) == np.inf


def test_two_charges_repel_to_the_antipode():
    """In a square cell the second charge's energy is lowest at the cell center (symmetry)."""
    vectors = square_lattice(2.0).vectors
    ewald = EwaldSum(vectors)
    center = float(ewald(np.array([[0.0, 0.0], [1.0, 1.0]])))
    for other in ([0.5, 0.5], [1.0, 0.0], [0.9, 1.1], [0.3, 1.7]):
        assert float(ewald(np.array([[0.0, 0.0], other]))) > center


# -- hashing, validation --------------------------------------------------------------------------
def test_hash_and_equality():
    vectors = triangular_lattice(1.0).vectors
    a, b = EwaldSum(vectors), EwaldSum(vectors.copy())
    assert a == b and hash(a) == hash(b)
    assert a != EwaldSum(vectors, alpha=2 * a.alpha)
    assert a != EwaldSum(vectors, tolerance=1e-8)
    assert EwaldSum(Supercell(triangular_lattice(1.0), 2)) == EwaldSum(2 * vectors)
    with pytest.raises(Exception):
        a.alpha = 1.0  # immutable

    energy = jax.jit(lambda ewald, positions: ewald(positions), static_argnums=0)
    assert float(energy(a, np.zeros((1, 2)))) == pytest.approx(float(b(np.zeros((1, 2)))))


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), np.zeros(6), np.zeros((0, 2)), np.zeros(2)])
def test_bad_positions_raise(bad):
    ewald = EwaldSum(square_lattice(1.0).vectors)
    with pytest.raises(ValueError, match="positions"):
        ewald(bad)
    with pytest.raises(ValueError, match="positions"):
        ewald_energy(bad, square_lattice(1.0).vectors)


@pytest.mark.parametrize(
    "bad", [[[1.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]], np.eye(3), [[1.0, np.nan], [0.0, 1.0]], [1.0, 2.0]]
)
def test_bad_lattice_vectors_raise(bad):
    with pytest.raises(ValueError, match="lattice_vectors"):
        EwaldSum(bad)
    with pytest.raises(ValueError, match="lattice_vectors"):
        ewald_energy(np.zeros((1, 2)), bad)


@pytest.mark.parametrize("alpha", [0.0, -1.0, np.inf, np.nan])
def test_bad_alpha_raises(alpha):
    with pytest.raises(ValueError, match="alpha"):
        EwaldSum(np.eye(2), alpha=alpha)


@pytest.mark.parametrize("tolerance", [0.0, -1e-3, 0.5])
def test_bad_tolerance_raises(tolerance):
    with pytest.raises(ValueError, match="tolerance"):
        EwaldSum(np.eye(2), tolerance=tolerance)
