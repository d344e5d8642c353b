"""Per-group centering: the foundation gradient is the average of the per-value gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import netket as nk  # noqa: F401
from qernel.training.gradient import centered_jacobian, centered_local_energies, foundation_gradient, natural_gradient
from qernel.training.groups import center_within_groups, clip_within_groups, group_means


def _model(params, x):
    """A small complex log psi whose derivative depends on the carried parameter x[..., -1]."""
    r, p = x[..., :-1], x[..., -1:]
    h = jnp.tanh(r @ params["w"] + p * params["c"])
    return jnp.sum(h * params["a"], -1) + 1j * jnp.sum(jnp.sin(h) * params["b"], -1)


def _setup(seed, n_groups, per_group=12, d=4, width=5):
    keys = jax.random.split(jax.random.PRNGKey(seed), 6)
    params = {
        "w": jax.random.normal(keys[0], (d, width)),
        "c": jax.random.normal(keys[1], (1, width)),
        "a": jax.random.normal(keys[2], (width,)),
        "b": jax.random.normal(keys[3], (width,)),
    }
    values = jnp.repeat(jnp.arange(n_groups, dtype=float) * 2.0, per_group)
    ids = jnp.repeat(jnp.arange(n_groups), per_group)
    r = jax.random.normal(keys[4], (n_groups * per_group, d))
    x = jnp.concatenate([r, values[:, None]], -1)
    # local energies whose group means differ strongly (as liquid vs crystal do)
    e_loc = values * 10.0 + jax.random.normal(keys[5], values.shape) + 0.3j * jax.random.normal(keys[5], values.shape)
    return params, x, ids, e_loc


def _per_value_gradient(params, x, e_loc):
    """Standard VMC gradient of ONE parameter value from its own samples, by the textbook formula
    2 Re <(O - <O>)^* (E_loc - <E_loc>)> with an explicit Jacobian (no group machinery)."""
    flat, unravel = ravel_pytree(params)
    jac_re = jax.jacrev(lambda f: jnp.real(_model(unravel(f), x)))(flat)
    jac_im = jax.jacrev(lambda f: jnp.imag(_model(unravel(f), x)))(flat)
    O = jac_re + 1j * jac_im
    dO = O - O.mean(0)
    dE = e_loc - e_loc.mean()
    return 2.0 * jnp.real(jnp.mean(jnp.conj(dO) * dE[:, None], axis=0))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4))
def test_foundation_gradient_equals_average_of_per_value_gradients(seed, n_groups):
    params, x, ids, e_loc = _setup(seed, n_groups)
    dE, w = centered_local_energies(e_loc, ids, n_groups, clip_width=None)
    grad = ravel_pytree(foundation_gradient(_model, params, x, dE, w))[0]
    expected = np.mean(
        [_per_value_gradient(params, x[ids == g], e_loc[ids == g]) for g in range(n_groups)], axis=0
    )
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_centered_jacobian_is_the_weighted_per_group_centered_textbook_jacobian(chunk_size):
    """[Re, Im] of sqrt(w_s) (O_s - <O>_g(s)), with O from jax.jacrev of the batched model."""
    n_groups = 3
    params, x, ids, e_loc = _setup(7, n_groups, per_group=4)
    _, w = centered_local_energies(e_loc, ids, n_groups, clip_width=None)
    blocks, unravel = centered_jacobian(_model, params, x, ids, n_groups, w, chunk_size)
    flat = ravel_pytree(params)[0]
    O = jax.jacrev(lambda f: jnp.real(_model(unravel(f), x)))(flat) + 1j * jax.jacrev(
        lambda f: jnp.imag(_model(unravel(f), x)))(flat)
    centered = np.concatenate([O[ids == g] - O[ids == g].mean(0) for g in range(n_groups)])  # ids sorted
    expected = np.sqrt(np.asarray(w))[:, None] * centered
    assert len(blocks) == 2 and blocks[0].shape == (x.shape[0], flat.size)
    np.testing.assert_allclose(blocks[0], expected.real, atol=1e-12)
    np.testing.assert_allclose(blocks[1], expected.imag, atol=1e-12)
    np.testing.assert_allclose(ravel_pytree(unravel(flat))[0], flat)


def test_global_centring_is_biased():
    """Centring over the whole mixed batch (NetKet's stock VMC) gives a different, wrong gradient."""
    params, x, ids, e_loc = _setup(3, 3)
    dE, w = centered_local_energies(e_loc, ids, 3, clip_width=None)
    good = ravel_pytree(foundation_gradient(_model, params, x, dE, w))[0]
    global_dE = e_loc - e_loc.mean()
    biased = ravel_pytree(foundation_gradient(_model, params, x, global_dE, jnp.full(w.shape, 1 / len(w))))[0]
    assert np.linalg.norm(good - biased) > 0.1 * np.linalg.norm(good)


# one group in slow: the 3-group case checks the same identities, and the one-group MinSR solve stays
# by default in test_spring_with_zero_momentum_equals_minsr[1]
@pytest.mark.parametrize("n_groups", [pytest.param(1, marks=pytest.mark.slow), 3])
def test_sr_equals_minsr_and_reduces_to_gradient_for_large_shift(n_groups):
    params, x, ids, e_loc = _setup(7, n_groups, per_group=6)
    dE, w = centered_local_energies(e_loc, ids, n_groups, clip_width=None)
    minsr = ravel_pytree(natural_gradient(_model, params, x, dE, w, ids, n_groups, 1e-2, "minsr"))[0]
    sr = ravel_pytree(natural_gradient(_model, params, x, dE, w, ids, n_groups, 1e-2, "sr"))[0]
    np.testing.assert_allclose(minsr, sr, rtol=1e-7, atol=1e-10)
    # lambda -> infinity: delta -> J^T e / lambda = grad / (2 lambda)
    lam = 1e8
    big = ravel_pytree(natural_gradient(_model, params, x, dE, w, ids, n_groups, lam, "minsr"))[0]
    grad = ravel_pytree(foundation_gradient(_model, params, x, dE, w))[0]
    np.testing.assert_allclose(big * 2 * lam, grad, rtol=1e-5, atol=1e-9)


def test_natural_gradient_per_group_equals_separate_solves_when_groups_decouple():
    """With per-group centering, the Jacobian rows of a group only see that group's mean: the
    natural gradient of the mixed batch equals the MinSR solution built from the per-group
    centered blocks stacked by hand."""
    params, x, ids, e_loc = _setup(11, 2, per_group=5)
    dE, w = centered_local_energies(e_loc, ids, 2, clip_width=None)
    delta = ravel_pytree(natural_gradient(_model, params, x, dE, w, ids, 2, 1e-3, "minsr"))[0]
    flat, unravel = ravel_pytree(params)
    O = jax.jacrev(lambda f: jnp.real(_model(unravel(f), x)))(flat) + 1j * jax.jacrev(
        lambda f: jnp.imag(_model(unravel(f), x))
    )(flat)
    rows, rhs = [], []
    for g in range(2):
        block = O[ids == g]
        block = (block - block.mean(0)) * jnp.sqrt(w[ids == g])[:, None]
        rows.append(block)
        rhs.append(jnp.sqrt(w[ids == g]) * dE[ids == g])
    Ob, e = jnp.concatenate(rows), jnp.concatenate(rhs)
    J = jnp.concatenate([Ob.real, Ob.imag])
    er = jnp.concatenate([e.real, e.imag])
    expected = J.T @ jnp.linalg.solve(J @ J.T + 1e-3 * jnp.eye(len(er)), er)
    np.testing.assert_allclose(delta, expected, rtol=1e-6, atol=1e-10)


def test_group_helpers():
    ids = jnp.array([0, 0, 1, 1, 1, 2])
    v = jnp.array([1.0, 3.0, 0.0, 3.0, 6.0, 5.0])
    np.testing.assert_allclose(group_means(v, ids, 3), [2.0, 3.0, 5.0])
    np.testing.assert_allclose(center_within_groups(v, ids, 3), [-1, 1, -3, 0, 3, 0])
    # clipping: an outlier in group 1 is pulled to median + 5 * mean absolute deviation
    e = jnp.concatenate([jnp.zeros(9), jnp.array([1000.0]), jnp.arange(10.0)])
    gids = jnp.concatenate([jnp.zeros(10, int), jnp.ones(10, int)])
    clipped = clip_within_groups(e, gids, 2, 5.0)
    assert float(clipped[9]) == pytest.approx(0.0 + 5 * 100.0)
    np.testing.assert_allclose(clipped[10:], jnp.arange(10.0))


@pytest.mark.parametrize("n_groups", [1, 3])
def test_spring_with_zero_momentum_equals_minsr(n_groups):
    params, x, ids, e_loc = _setup(5, n_groups, per_group=6)
    dE, w = centered_local_energies(e_loc, ids, n_groups, clip_width=None)
    previous = jax.tree_util.tree_map(lambda a: jnp.ones_like(a) * 0.3, params)
    minsr = ravel_pytree(natural_gradient(_model, params, x, dE, w, ids, n_groups, 1e-2, "minsr"))[0]
    spring = ravel_pytree(natural_gradient(_model, params, x, dE, w, ids, n_groups, 1e-2, "spring",
                                           momentum=0.0, previous=previous))[0]
    np.testing.assert_allclose(spring, minsr, rtol=1e-10, atol=1e-13)


def test_spring_solves_the_momentum_regularised_least_squares_problem():
    """SPRING = argmin |J d - e|^2 + lambda |d - mu d_prev|^2 = (J^T J + lambda)^-1 (J^T e + lambda mu d_prev)
    (Goldshlager, Abrahamsen, Lin 2024, eq. for the regularised update), built here by hand from
    the textbook per-group centered Jacobian."""
    n_groups, lam, mu = 2, 1e-2, 0.7
    params, x, ids, e_loc = _setup(9, n_groups, per_group=5)
    dE, w = centered_local_energies(e_loc, ids, n_groups, clip_width=None)
    flat, unravel = ravel_pytree(params)
    previous = jax.random.normal(jax.random.PRNGKey(1), flat.shape)
    spring = ravel_pytree(natural_gradient(_model, params, x, dE, w, ids, n_groups, lam, "spring",
                                           momentum=mu, previous=unravel(previous)))[0]
    O = jax.jacrev(lambda f: jnp.real(_model(unravel(f), x)))(flat) + 1j * jax.jacrev(
        lambda f: jnp.imag(_model(unravel(f), x)))(flat)
    centered = np.concatenate([O[ids == g] - O[ids == g].mean(0) for g in range(n_groups)])
    Obar = np.sqrt(np.asarray(w))[:, None] * centered
    J = np.concatenate([Obar.real, Obar.imag])
    scaled = np.sqrt(np.asarray(w)) * np.asarray(dE)
    e = np.concatenate([scaled.real, scaled.imag])
    expected = np.linalg.solve(J.T @ J + lam * np.eye(flat.size), J.T @ e + lam * mu * np.asarray(previous))
    np.testing.assert_allclose(spring, expected, rtol=1e-6, atol=1e-9)
