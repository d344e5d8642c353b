"""The sample layout ``[r_1x, r_1y, ..., r_Nx, r_Ny, p_1, ..., p_P]`` is owned by ElectronHilbert.

``hilbert.split`` / ``hilbert.join`` are the only places that know where coordinates and carried
parameters sit in a row; the Hamiltonian's :meth:`potential_from_sample` is the one "potential of a
row" (operators and observables use it).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from qernel.geometry import ElectronHilbert, Supercell, join_sample, split_sample, triangular_lattice
from qernel.hamiltonian import HarmonicTrap


@pytest.fixture
def hilbert() -> ElectronHilbert:
    return ElectronHilbert(2, 1, Supercell(triangular_lattice(1.0), [[3, 0], [0, 3]]), ("V", "phi"))


def test_split_reads_positions_then_parameters(hilbert):
    x = np.arange(2 * 3 * hilbert.size, dtype=float).reshape(2, 3, hilbert.size)  # (2, 3, 8)
    r, p = hilbert.split(x)
    assert r.shape == (2, 3, 3, 2) and p.shape == (2, 3, 2)
    np.testing.assert_array_equal(r[1, 2, 1], x[1, 2, 2:4])  # electron 1 = entries 2, 3
    np.testing.assert_array_equal(p[0, 1], x[0, 1, 6:])


def test_join_inverts_split_and_broadcasts_one_parameter_vector(hilbert):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, hilbert.size)))
    np.testing.assert_array_equal(hilbert.join(*hilbert.split(x)), x)
    r, _ = hilbert.split(x)
    joined = hilbert.join(r, jnp.array([1.0, 2.0]))
    assert joined.shape == (5, hilbert.size)
    np.testing.assert_array_equal(joined[:, -2:], np.tile([1.0, 2.0], (5, 1)))


def test_split_and_join_without_carried_parameters():
    hilbert = ElectronHilbert(1, 1, None)
    x = jnp.arange(4.0)
    r, p = hilbert.split(x)
    assert r.shape == (2, 2) and p.shape == (0,)
    np.testing.assert_array_equal(hilbert.join(r, p), x)


def test_module_functions_agree_with_the_methods(hilbert):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, hilbert.size)))
    for a, b in zip(hilbert.split(x), split_sample(x, hilbert.n_electrons), strict=True):
        np.testing.assert_array_equal(a, b)
    r, p = hilbert.split(x)
    np.testing.assert_array_equal(hilbert.join(r, p), join_sample(r, p))


def test_flatten_gives_rows_and_the_leading_shape(hilbert):
    x = np.random.default_rng(2).normal(size=(3, 5, hilbert.size))
    rows, batch_shape = hilbert.flatten(x)
    assert rows.shape == (15, hilbert.size) and batch_shape == (3, 5)
    np.testing.assert_array_equal(rows[7], x[1, 2])
    np.testing.assert_array_equal(rows.sum(-1).reshape(batch_shape), x.sum(-1))


def test_wrong_shapes_are_clear_errors(hilbert):
    with pytest.raises(ValueError, match=r"last dimension 2N \+ P = 8, got shape \(4, 7\)"):
        hilbert.split(np.zeros((4, 7)))
    with pytest.raises(ValueError, match=r"last dimension 2N \+ P = 8, got shape \(4, 7\)"):
        hilbert.flatten(np.zeros((4, 7)))
    with pytest.raises(ValueError, match=r"positions must have shape \(\.\.\., N=3, 2\)"):
        hilbert.join(jnp.zeros((4, 2, 2)), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="parameters must have last dimension P=2"):
        hilbert.join(jnp.zeros((4, 3, 2)), jnp.zeros((4, 1)))


def test_potential_of_a_row_parts_add_up_and_read_the_carried_values():
    trap = HarmonicTrap(n_electrons=2, omega=1.0, conditioned_on=("omega",))
    r = jnp.array([[0.3, -0.2], [-0.5, 0.4]])
    x = trap.hilbert.join(r, jnp.array([2.0]))
    one_body = trap.potential_from_sample(x, "one_body")
    interaction = trap.potential_from_sample(x, "interaction")
    np.testing.assert_allclose(trap.potential_from_sample(x), one_body + interaction, rtol=1e-12)
    np.testing.assert_allclose(one_body, 0.5 * 2.0**2 * float(jnp.sum(r**2)), rtol=1e-12)  # omega = 2 from the row
    np.testing.assert_allclose(interaction, 1.0 / float(jnp.linalg.norm(r[0] - r[1])), rtol=1e-12)
    with pytest.raises(ValueError, match="part must be one of"):
        trap.potential_from_sample(x, "kinetic")
