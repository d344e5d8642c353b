"""Scaling: jitted steps that never recompile, and chunked energies of a 150-electron moiré system.

Issue 7: (i) whole training steps are jitted and nothing is recompiled between steps, counted
with JAX's backend-compile monitoring event; (ii) the local energy (and the per-sample Jacobian of
MinSR) is evaluated ``chunk_size`` samples at a time, so a 150-electron QERNEL model evaluates
energies on a CPU within a few GB, and chunking does not change the numbers.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

from qernel.ansatz.qernel import QERNELConfig, make_qernel
from qernel.hamiltonian import MoireHamiltonian
from qernel.run import build_run
from qernel.sampler import ParameterGrid, make_sampler
from qernel.training.gradient import centered_local_energies, foundation_gradient, natural_gradient

from _compile_counter import count_compilations
from _tiny_demo import tiny_demo_config

# A shrunk qernel.cli.DEMO_CONFIG: N = 4 on a 2x2 moiré supercell, tiny QERNEL model, V drawn
# uniformly and re-drawn EVERY step (new parameter values must not trigger a recompile),
# chunked evaluation (2 chunks of 8 per step).
SMALL_CONFIG = tiny_demo_config(
    parameters={"type": "uniform", "low": {"V": 5.0}, "high": {"V": 15.0}, "n_groups": 2,
                "redraw_every": 1, "thermalise_sweeps": 2},
    sampler={"n_chains": 8, "n_samples": 16, "n_discard_per_chain": 1, "n_thermalise": 2, "chunk_size": 8},
    optimizer={"n_steps": 10, "learning_rate": 0.05, "preconditioner": "minsr", "diag_shift": 1e-2,
               "max_update_norm": 0.5},
)


def test_steps_measure_and_checkpoints_compile_nothing_after_warm_up(tmp_path):
    run = build_run(SMALL_CONFIG)
    driver = run.driver
    # a diag-shift schedule: a Python float that changes every step must not recompile either
    driver.diag_shift = lambda step: 1e-2 / (1.0 + step)
    driver.thermalise(2)
    with count_compilations() as warm_up:
        for _ in range(2):  # step 0 samples and updates, step 1 also re-draws V
            driver.step()
        driver.measure()
    assert warm_up, "the compile counter saw no compilation at all: it is not counting"

    values_before = np.asarray(run.vstate.sampler_state.rule_state.values)
    with count_compilations() as compiled:
        records = [driver.step() for _ in range(3)]
        driver.measure()
        driver.save(tmp_path / "checkpoint.npz")
        driver.restore(tmp_path / "checkpoint.npz")
        records.append(driver.step())
    assert compiled == []
    assert all(np.isfinite(r["energy"]) for r in records)
    # the steps really re-drew the parameter values (and still compiled nothing)
    assert not np.array_equal(values_before, np.asarray(run.vstate.sampler_state.rule_state.values))


def _toy_logpsi(params, x):
    """A complex toy log-amplitude, (Ns, D) -> (Ns,)."""
    return jnp.tanh(x @ params["a"]) @ params["c"] + 1j * jnp.sin(x @ params["b"])


@pytest.mark.parametrize("chunk_size", [3, 16])
def test_chunked_gradients_equal_unchunked(chunk_size):
    # 10 samples: chunks of 3 leave a remainder, 16 is larger than the batch
    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    params = {"a": jax.random.normal(keys[0], (5, 3)), "b": jax.random.normal(keys[1], (5,)),
              "c": jax.random.normal(keys[2], (3,))}
    samples = jax.random.normal(keys[3], (10, 5))
    local = jax.random.normal(keys[4], (10,)) + 0.3j * jax.random.normal(keys[5], (10,))
    groups = jnp.arange(10) % 3
    centered, weights = centered_local_energies(local, groups, 3)
    flat = lambda tree: np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(tree)])  # noqa: E731

    full = foundation_gradient(_toy_logpsi, params, samples, centered, weights)
    chunked = jax.jit(foundation_gradient, static_argnums=(0, 5))(
        _toy_logpsi, params, samples, centered, weights, chunk_size)
    np.testing.assert_allclose(flat(chunked), flat(full), rtol=1e-12, atol=1e-14)
    natural = jax.jit(natural_gradient, static_argnums=(0, 6, 8, 9))
    for mode in ("minsr", "sr"):
        full = natural(_toy_logpsi, params, samples, centered, weights, groups, 3, 1e-3, mode, None)
        chunked = natural(_toy_logpsi, params, samples, centered, weights, groups, 3, 1e-3, mode, chunk_size)
        np.testing.assert_allclose(flat(chunked), flat(full), rtol=1e-10, atol=1e-12)


# 150 electrons: the sqrt(75) x sqrt(75) R30 supercell of the triangular moiré lattice
# (vectors 5 a1 + 5 a2 and -5 a1 + 10 a2, 75 cells) at filling 2, spin unpolarised (75 + 75).
SUPERCELL_75 = [[5, 5], [-5, 10]]


def _moire_150():
    ham = MoireHamiltonian(supercell=SUPERCELL_75, filling=2, polarized=False)
    space = ParameterGrid([[5.0, 15.0]], ("V",))
    config = QERNELConfig(n_layers=1, width=16, num_heads=2, num_kv_heads=1, num_experts=2, top_k=1,
                          n_determinants=1, film_hidden=8)
    model = make_qernel(config, ham.hilbert, parameter_center=space.center, parameter_scale=space.scale)
    sampler = make_sampler(ham.hilbert, space, n_chains=2, sweep_size=1)
    return ham, model, sampler


def _fixed_samples(ham, n_chains: int, length: int, values) -> jax.Array:
    """Uniform positions in the supercell (NumPy seed 0), chain c carrying V = values[c]."""
    rng = np.random.default_rng(0)
    fractional = rng.uniform(size=(n_chains, length, ham.n_electrons, 2))
    positions = (fractional @ ham.hilbert.supercell.vectors).reshape(n_chains, length, -1)
    carried = np.broadcast_to(np.asarray(values, float)[:, None, None], (n_chains, length, 1))
    return jnp.asarray(np.concatenate([positions, carried], axis=-1))


@pytest.mark.slow  # ~2 min; the default suite keeps test_ansatz_model.py::test_150_electrons_finite
def test_150_electron_energy_is_chunked_and_matches_unchunked():
    ham, model, sampler = _moire_150()
    assert (ham.n_electrons, ham.n_up, ham.n_down) == (150, 75, 75)
    vstate = nk.vqs.MCState(sampler, model, n_samples=4, chunk_size=2, seed=0, sampler_seed=1)
    samples = _fixed_samples(ham, 2, 2, [5.0, 15.0])  # (chains, chain_length, 2N + P)
    op = ham.operator()

    vstate._samples = samples  # NetKet has no public setter for the cached samples
    chunked = np.asarray(vstate.local_estimators(op).data)  # 2 chunks of 2 samples
    assert chunked.shape == (2, 2)
    assert np.all(np.isfinite(chunked))

    vstate.chunk_size = None
    vstate._samples = samples[:, :1]  # 2 samples in one unchunked batch
    unchunked = np.asarray(vstate.local_estimators(op).data)
    np.testing.assert_allclose(unchunked[:, 0], chunked[:, 0], rtol=1e-9, atol=1e-9 * np.abs(chunked).max())
