"""Tests of qernel.sampler: parameter spaces, electron Metropolis rules and the helpers.

Independent references:
* periodic cell, psi(r) = prod_i (1 + a cos(g . r_i)) with g a supercell reciprocal-lattice
  vector: |psi|^2 factorises and, averaging over whole periods (<cos> = <cos^3> = 0,
  <cos^2> = 1/2, <cos^2 x cos 2x> = 1/4), elementary integrals give
  <cos(g.r)> = a / (1 + a^2/2) and <cos(2 g.r)> = (a^2/4) / (1 + a^2/2) for each electron;
* open space, psi(r) = exp(-|r|^2 / (2 w^2)): |psi|^2 is a normal density with variance w^2/2
  per coordinate, so <|r|^2> = w^2 per electron;
* scale invariance: for that Gaussian the acceptance of a Gaussian proposal of width sigma
  depends only on sigma / w, so the adapted widths of two groups must scale like their w.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from flax import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.geometry.hilbert import ElectronHilbert, split_sample
from qernel.geometry.lattice import Supercell, square_lattice, triangular_lattice
from qernel.sampler import (
    ParameterGrid,
    ParameterList,
    UniformRange,
    acceptance_since_adaptation,
    adapt_step_sizes,
    chain_group_ids,
    chain_parameters,
    group_values,
    make_sampler,
    per_group_acceptance,
    redraw_parameters,
    sample_group_ids,
    set_chain_parameters,
    set_step_sizes,
    step_sizes,
    thermalise,
)

SQRT3_CELL = Supercell(triangular_lattice(1.0), [[2, 1], [-1, 1]])  # sqrt(3) x sqrt(3) R30, skewed


def _cosine_model(g):
    """log psi = sum_i log|1 + s a cos(g.r_i)|, a = carried parameter, s a trainable scale (init 1)."""
    g = jnp.asarray(g)

    def f(x):
        n = (x.shape[-1] - 1) // 2
        pos, p = split_sample(x, n)
        s = hk.get_parameter("s", (), init=jnp.ones, dtype=x.dtype)
        a = s * p[..., 0]
        return jnp.sum(jnp.log(jnp.abs(1 + a[..., None] * jnp.cos(pos @ g.astype(x.dtype)))), -1)

    return hk.transform(f)


def _gaussian_model():
    """log psi = -sum_i |r_i|^2 / (2 w^2) with the width w carried in the sample."""

    def f(x):
        n = (x.shape[-1] - 1) // 2
        pos, p = split_sample(x, n)
        s = hk.get_parameter("s", (), init=jnp.ones, dtype=x.dtype)
        w = s * p[..., 0]
        return -jnp.sum(pos**2, axis=(-1, -2)) / (2 * w**2)

    return hk.transform(f)


def _fractional(cell, positions):
    return np.asarray(positions) @ np.linalg.inv(cell.vectors)


# -- parameter spaces ---------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(
    axes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    per_point=st.integers(1, 4),
)
def test_grid_assignment_covers_every_point_evenly(axes, per_point):
    names = tuple(f"p{i}" for i in range(len(axes)))
    values = [list(np.linspace(-1.0, 2.0, n) * (i + 1)) for i, n in enumerate(axes)]
    grid = ParameterGrid(values, names)
    n_points = int(np.prod(axes))
    assert grid.n_groups == n_points and grid.n_parameters == len(axes)
    chains, groups = grid.assign(n_points * per_point)
    chains, groups = np.asarray(chains), np.asarray(groups)
    # every grid point carried by exactly per_point chains, and group g holds point g
    np.testing.assert_array_equal(np.bincount(groups, minlength=n_points), per_point)
    np.testing.assert_array_equal(chains, grid.points[groups])
    np.testing.assert_array_equal(np.asarray(grid.group_ids(chains)), groups)
    assert {tuple(p) for p in chains} == {tuple(p) for p in grid.points}
    # normalisation maps the grid into [-1, 1]
    z = np.asarray(grid.normalize(jnp.asarray(grid.points)))
    assert np.all(np.abs(z) <= 1 + 1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_groups=st.integers(1, 6), per=st.integers(1, 3), p=st.integers(1, 2))
def test_uniform_range_draws_inside_and_groups_consistent(seed, n_groups, per, p):
    low, high = np.arange(p) - 1.0, np.arange(p) + 2.0
    space = UniformRange(low, high, tuple(f"q{i}" for i in range(p)), n_groups=n_groups)
    values, groups = space.assign(n_groups * per, jax.random.PRNGKey(seed))
    values, groups = np.asarray(values), np.asarray(groups)
    assert np.all(values >= low) and np.all(values <= high)
    assert len(np.unique(values, axis=0)) == n_groups
    np.testing.assert_array_equal(np.bincount(groups, minlength=n_groups), per)
    # chains of one group share their row; group ids recomputed from the values agree
    for g in range(n_groups):
        assert len(np.unique(values[groups == g], axis=0)) == 1
    np.testing.assert_array_equal(np.asarray(jax.jit(space.group_ids)(values)), groups)
    z = np.asarray(space.normalize(values))
    assert np.all(np.abs(z) <= 1 + 1e-12)


def test_bad_parameter_spaces_rejected():
    with pytest.raises(ValueError, match="low < high"):
        UniformRange(2.0, 1.0, ("V",), n_groups=2)
    with pytest.raises(ValueError, match="low < high"):
        UniformRange(1.0, 1.0, ("V",), n_groups=2)
    with pytest.raises(ValueError, match="finite"):
        UniformRange(0.0, np.inf, ("V",), n_groups=2)
    with pytest.raises(ValueError, match="finite"):
        ParameterGrid([1.0, np.nan], ("V",))
    with pytest.raises(ValueError, match="distinct"):
        ParameterGrid([1.0, 1.0], ("V",))
    with pytest.raises(ValueError, match="one list per parameter"):
        ParameterGrid([[1.0], [2.0]], ("V",))
    with pytest.raises(ValueError, match="unique"):
        ParameterList([[1.0, 2.0]], ("V", "V"))
    with pytest.raises(ValueError, match="scale must be > 0"):
        ParameterGrid([1.0, 2.0], ("V",), scale=0.0)
    with pytest.raises(ValueError, match="n_groups"):
        UniformRange(0.0, 1.0, ("V",), n_groups=0)
    with pytest.raises(ValueError, match="multiple of the number of parameter groups"):
        ParameterGrid([1.0, 2.0, 3.0], ("V",)).check_n_chains(16)


def test_bad_sampler_input_rejected():
    hilbert = ElectronHilbert(2, 1, SQRT3_CELL, ("V",))
    grid = ParameterGrid([5.0, 10.0, 15.0], ("V",))
    with pytest.raises(ValueError, match="n_chains=16 must be a multiple"):
        make_sampler(hilbert, grid, n_chains=16, sweep_size=2)
    with pytest.raises(ValueError, match="do not match the Hilbert space"):
        make_sampler(hilbert, ParameterGrid([5.0, 10.0], ("phi",)), n_chains=4, sweep_size=2)
    with pytest.raises(ValueError, match="do not match the Hilbert space"):
        make_sampler(hilbert, None, n_chains=4, sweep_size=2)
    with pytest.raises(ValueError, match="initial_sigma must be a finite number > 0"):
        make_sampler(hilbert, grid, n_chains=6, sweep_size=2, initial_sigma=0.0)
    with pytest.raises(ValueError, match="initial_sigma must be a finite number > 0"):
        make_sampler(hilbert, grid, n_chains=6, sweep_size=2, initial_sigma=-1.0)
    with pytest.raises(ValueError, match="sweep_size"):
        make_sampler(hilbert, grid, n_chains=6, sweep_size=0)
    with pytest.raises(ValueError, match="rule must be one of"):
        make_sampler(hilbert, grid, n_chains=6, sweep_size=2, rule="langevin")
    with pytest.raises(TypeError, match="ElectronHilbert"):
        make_sampler(nk.hilbert.Spin(0.5, 3), grid, n_chains=6, sweep_size=2)


# -- sampling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ["gaussian", "single"])
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_positions_stay_in_skewed_supercell_and_parameters_never_move(rule, dtype):
    cell = SQRT3_CELL
    hilbert = ElectronHilbert(2, 1, cell, ("a",))
    grid = ParameterGrid([0.2, 0.5, 0.9], ("a",))
    g = cell.reciprocal_vectors[0] + cell.reciprocal_vectors[1]
    # wide steps: most moves cross the cell boundary and must be wrapped
    sampler = make_sampler(hilbert, grid, n_chains=12, sweep_size=3, rule=rule, initial_sigma=2.0, dtype=dtype)
    vstate = nk.vqs.MCState(sampler, _cosine_model(g), n_samples=12 * 40, n_discard_per_chain=5, seed=0,
                            sampler_seed=1)
    assigned = np.asarray(chain_parameters(vstate)).copy()
    for _ in range(2):
        samples = np.asarray(vstate.sample())
        assert samples.dtype == np.dtype(dtype) and samples.shape == (12, 40, hilbert.size)
        positions, params = split_sample(samples, hilbert.n_electrons)
        frac = _fractional(cell, positions)
        tol = 1e-5 if dtype == jnp.float32 else 1e-12
        assert np.all(np.isfinite(frac)) and np.all(frac >= -tol) and np.all(frac < 1 + tol)
        # parameter columns: bitwise equal to each chain's assigned row, for every sample
        np.testing.assert_array_equal(params, np.broadcast_to(assigned[:, None, :], params.shape))
        np.testing.assert_array_equal(np.asarray(chain_parameters(vstate)), assigned)
        np.testing.assert_array_equal(np.asarray(sample_group_ids(vstate)), np.asarray(grid.group_ids(params)))
    np.testing.assert_array_equal(np.asarray(chain_group_ids(vstate)), np.arange(12) % 3)
    np.testing.assert_array_equal(np.asarray(group_values(vstate)), grid.points.astype(dtype))
    # the moves do move the electrons
    assert float(vstate.sampler_state.acceptance) > 0.05


@pytest.mark.parametrize("rule", ["gaussian", "single"])
def test_periodic_distribution_matches_exact_moments(rule):
    cell = SQRT3_CELL
    # g = b1 - 2 b2: a supercell reciprocal vector along no lattice axis of the skewed cell
    g = cell.reciprocal_vectors[0] - 2 * cell.reciprocal_vectors[1]
    hilbert = ElectronHilbert(1, 1, cell, ("a",))
    grid = ParameterGrid([0.3, 0.9], ("a",))
    sampler = make_sampler(hilbert, grid, n_chains=64, sweep_size=4, rule=rule, initial_sigma=0.3)
    vstate = nk.vqs.MCState(sampler, _cosine_model(g), n_samples=64 * 250, n_discard_per_chain=50, seed=0,
                            sampler_seed=7)
    samples = vstate.sample()
    positions, params = split_sample(samples, 2)
    phase = np.asarray(positions @ jnp.asarray(g))  # (chains, length, electrons)
    groups = np.asarray(chain_group_ids(vstate))
    for k, a in enumerate(grid.points[:, 0]):
        for harmonic, exact in ((1, a / (1 + a**2 / 2)), (2, (a**2 / 4) / (1 + a**2 / 2))):
            obs = np.cos(harmonic * phase[groups == k]).mean(-1)  # (chains in group, length)
            stats = nk.stats.statistics(jnp.asarray(obs))
            assert abs(float(stats.mean) - exact) < 5 * float(stats.error_of_mean) + 1e-3, (a, harmonic, stats)
            # the error bar is small enough for the test to discriminate (uniform sampling gives 0)
            if exact > 0.1:
                assert float(stats.error_of_mean) < 0.2 * exact


def test_open_boundary_gaussian_and_per_group_adaptation():
    """Groups with widths w = 0.25 and 4: adaptation reaches acceptance ~0.5 in both and
    widths in the ratio 16 (scale invariance); the sampled <|r|^2> equals w^2."""
    hilbert = ElectronHilbert(1, 1, None, ("w",))
    grid = ParameterGrid([0.25, 4.0], ("w",))
    sampler = make_sampler(hilbert, grid, n_chains=64, sweep_size=2, initial_sigma=1.0, init_width=1.0)
    vstate = nk.vqs.MCState(sampler, _gaussian_model(), n_samples=64 * 100, n_discard_per_chain=10, seed=0,
                            sampler_seed=3)
    vstate.sample()
    first = np.asarray(per_group_acceptance(vstate))
    assert first[0] < 0.3 and first[1] > 0.7  # sigma = 1 is far too wide for w=0.25, too narrow for w=4
    for _ in range(12):
        vstate.sample()
        adapt_step_sizes(vstate, 0.5)
    samples = vstate.sample()
    acceptance = np.asarray(per_group_acceptance(vstate))
    np.testing.assert_allclose(acceptance, 0.5, atol=0.1)
    sigma = np.asarray(step_sizes(vstate))
    groups = np.asarray(chain_group_ids(vstate))
    ratio = sigma[groups == 1].mean() / sigma[groups == 0].mean()
    assert 10.0 < ratio < 25.0, ratio
    assert np.all(sigma[groups == 0] == sigma[groups == 0][0])  # one width per group
    positions, _ = split_sample(samples, 2)
    r2 = np.asarray(jnp.sum(positions**2, -1).mean(-1))  # (chains, length), per electron
    for k, w in enumerate(grid.points[:, 0]):
        stats = nk.stats.statistics(jnp.asarray(r2[groups == k]))
        assert abs(float(stats.mean) - w**2) < 5 * float(stats.error_of_mean) + 1e-3 * w**2, (w, stats)


def test_redraw_set_parameters_and_state_survives_reset_and_serialization():
    hilbert = ElectronHilbert(2, 0, SQRT3_CELL, ("a",))
    space = UniformRange(0.1, 0.9, ("a",), n_groups=4)
    g = SQRT3_CELL.reciprocal_vectors[0]
    sampler = make_sampler(hilbert, space, n_chains=16, sweep_size=2, initial_sigma=0.4)
    vstate = nk.vqs.MCState(sampler, _cosine_model(g), n_samples=16 * 20, n_discard_per_chain=2, seed=0,
                            sampler_seed=2)
    vstate.sample()
    set_step_sizes(vstate, [0.1, 0.2, 0.3, 0.4])
    old_values = np.asarray(chain_parameters(vstate)).copy()

    redraw_parameters(vstate, jax.random.PRNGKey(5), n_sweeps=3)
    new_values = np.asarray(chain_parameters(vstate))
    groups = np.asarray(chain_group_ids(vstate))
    assert not np.allclose(new_values, old_values)
    assert np.all((new_values >= 0.1) & (new_values <= 0.9))
    gv = np.asarray(group_values(vstate))[:, 0]
    assert np.all(np.diff(gv) > 0)  # group g holds the g-th smallest draw
    np.testing.assert_array_equal(new_values[:, 0], gv[groups])
    # widths per group kept through the redraw and through several sample() (= sampler.reset) calls
    np.testing.assert_allclose(np.asarray(step_sizes(vstate)), np.array([0.1, 0.2, 0.3, 0.4])[groups])
    samples = np.asarray(vstate.sample())
    np.testing.assert_array_equal(samples[..., -1], np.broadcast_to(new_values, samples.shape[:2]))
    np.testing.assert_allclose(np.asarray(step_sizes(vstate)), np.array([0.1, 0.2, 0.3, 0.4])[groups])
    # acceptance since adaptation spans several sample() calls (counters banked at each reset)
    assert np.all(np.isfinite(np.asarray(acceptance_since_adaptation(vstate.sampler, vstate.sampler_state))))

    # explicit values: must be in the range and at most n_groups distinct rows
    set_chain_parameters(vstate, np.full((16, 1), 0.5))
    samples = np.asarray(vstate.sample())
    assert np.all(samples[..., -1] == 0.5)
    with pytest.raises(ValueError, match="outside"):
        set_chain_parameters(vstate, np.full((16, 1), 1.5))
    with pytest.raises(ValueError, match="distinct parameter rows"):
        set_chain_parameters(vstate, np.linspace(0.1, 0.9, 16)[:, None])
    with pytest.raises(ValueError, match="shape"):
        set_chain_parameters(vstate, np.full((3, 1), 0.5))

    # the sampler state (rule state included) round-trips through flax serialization (checkpoints)
    blob = serialization.to_bytes(vstate.sampler_state)
    restored = serialization.from_bytes(vstate.sampler_state, blob)
    def raw(leaf):
        return np.asarray(jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf)

    for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(vstate.sampler_state)):
        np.testing.assert_array_equal(raw(a), raw(b))
    np.testing.assert_array_equal(np.asarray(restored.rule_state.sigma), np.asarray(step_sizes(vstate)))


def test_grid_values_checked_and_thermalise():
    hilbert = ElectronHilbert(1, 0, Supercell(square_lattice(1.0), 2), ("a",))
    grid = ParameterGrid([0.2, 0.6], ("a",))
    g = hilbert.supercell.reciprocal_vectors[0]
    sampler = make_sampler(hilbert, grid, n_chains=4, sweep_size=1, initial_sigma=0.3)
    vstate = nk.vqs.MCState(sampler, _cosine_model(g), n_samples=4 * 10, n_discard_per_chain=0, seed=0)
    with pytest.raises(ValueError, match="not points of this ParameterGrid"):
        set_chain_parameters(vstate, [0.4])
    set_chain_parameters(vstate, [[0.6], [0.2], [0.6], [0.2]], n_sweeps=2)
    np.testing.assert_array_equal(np.asarray(chain_group_ids(vstate)), [1, 0, 1, 0])
    thermalise(vstate, 3)
    assert vstate._samples is None  # thermalisation samples are not cached as training samples
    with pytest.raises(ValueError, match="step sizes sigma must be finite and > 0"):
        set_step_sizes(vstate, 0.0)
    with pytest.raises(ValueError, match="target_acceptance"):
        adapt_step_sizes(vstate, 1.5)


def test_no_parameters():
    hilbert = ElectronHilbert(1, 1, SQRT3_CELL)
    g = SQRT3_CELL.reciprocal_vectors[1]

    def f(x):
        pos = x.reshape(*x.shape[:-1], 2, 2)
        s = hk.get_parameter("s", (), init=jnp.ones, dtype=x.dtype)
        return jnp.sum(jnp.log(1 + 0.5 * s * jnp.cos(pos @ jnp.asarray(g, x.dtype))), -1)

    sampler = make_sampler(hilbert, None, n_chains=4, sweep_size=2)
    vstate = nk.vqs.MCState(sampler, hk.transform(f), n_samples=4 * 10, seed=0)
    samples = vstate.sample()
    assert samples.shape == (4, 10, 4)
    assert np.asarray(group_values(vstate)).shape == (1, 0)
    assert np.asarray(adapt_step_sizes(vstate)).shape == (1,)


def _key_data(a):
    return jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a


def test_chains_of_every_length_share_one_compiled_sweep_and_equal_netkets_scan():
    """ElectronMetropolisSampler (one jitted sweep called chain_length times) gives bit for bit the
    chain of NetKet's MetropolisSampler._sample_chain (a scan over the sweep, compiled per length)
    from the same state, on a transformer model; and lengths 1, 3 and 4 compile the sweep once."""
    from netket.utils import wrap_afun

    from qernel.run import build_run
    from qernel.sampler.sampler import ElectronMetropolisSampler

    from _compile_counter import count_compilations
    from _tiny_demo import tiny_demo_config

    run = build_run(tiny_demo_config(
        parameters={"type": "grid", "values": {"V": [5.0, 15.0]}},
        sampler={"n_chains": 4, "n_samples": 8, "n_discard_per_chain": 1},
        optimizer={"n_steps": 1, "preconditioner": "minsr"},
    ))
    vstate = run.vstate
    sampler, machine, variables = vstate.sampler, wrap_afun(vstate._sampler_model), vstate._sampler_variables
    assert isinstance(sampler, ElectronMetropolisSampler)
    state = sampler.reset(machine, variables, vstate.sampler_state)
    with count_compilations() as compiled:
        for length in (1, 3, 4):
            (ours, ours_log_prob), ours_state = sampler._sample_chain(machine, variables, state, length, True)
            (scan, scan_log_prob), scan_state = nk.sampler.MetropolisSampler._sample_chain(
                sampler, machine, variables, state, length, return_log_probabilities=True)
            assert ours.shape == (4, length, vstate.hilbert.size)
            np.testing.assert_array_equal(ours, scan)
            np.testing.assert_array_equal(ours_log_prob, scan_log_prob)
            for a, b in zip(jax.tree_util.tree_leaves(ours_state), jax.tree_util.tree_leaves(scan_state)):
                np.testing.assert_array_equal(_key_data(a), _key_data(b))  # positions, keys, counters
            assert not np.array_equal(ours_state.σ, state.σ)  # the chains moved
    assert compiled.count("jit(_metropolis_sweep)") == 1
    assert compiled.count("jit(_sample_chain)") == 3  # NetKet's reference: one per length
