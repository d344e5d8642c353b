"""Issue 16 item 6: the model builders take the Hamiltonian and the parameter space and derive the
cusp coupling, the length scale and the parameter normalisation from them."""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np
import pytest

from qernel.ansatz import QERNELConfig, SlaterJastrowConfig, make_qernel, make_slater_jastrow
from qernel.hamiltonian import ElectronGas, HarmonicTrap, MoireHamiltonian
from qernel.sampler import ParameterGrid

TINY = QERNELConfig(n_layers=1, width=8, num_heads=2, num_kv_heads=1, num_experts=2, top_k=1, n_determinants=1,
                    film_hidden=8)


def _samples(hamiltonian, values, n=5, seed=0):
    """(n * len(values), 2N + P) samples: random positions, each carried value repeated."""
    rng = np.random.default_rng(seed)
    r = rng.normal(scale=0.7, size=(n * len(values), 2 * hamiltonian.n_electrons))
    p = np.repeat(np.asarray(values, dtype=float).reshape(len(values), -1), n, axis=0)
    return np.concatenate([r, p], axis=1)


def _legacy(config: QERNELConfig, **physics) -> QERNELConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return config.replace(**physics)


def test_hamiltonians_expose_cusp_and_length():
    moire = MoireHamiltonian(supercell=2, n_electrons=3, eps=5.0, interaction=0.5)
    assert moire.cusp_coupling == pytest.approx(0.5 * moire.coulomb_strength) and moire.length_scale == 1.0
    trap = HarmonicTrap(2, omega=0.25, interaction=0.7)
    assert trap.cusp_coupling == 0.7 and trap.length_scale == pytest.approx(2.0)
    gas = ElectronGas(2, r_s=3.0)
    assert gas.cusp_coupling == 1.0 and gas.length_scale == 3.0


@pytest.mark.parametrize("system", ["moire", "trap"])
def test_model_from_hamiltonian_equals_hand_copied_model(system):
    """The new call gives the same log psi, for the same parameters, as the old one with the cusp,
    length and normalisation copied by hand; a wrong hand copy (the bug the new call rules out)
    gives a different one."""
    if system == "moire":
        ham = MoireHamiltonian(supercell=2, n_electrons=3, eps=5.0, conditioned_on=("V",))
        space = ParameterGrid([5.0, 15.0, 25.0], ("V",))
    else:  # open boundaries: the length scale enters features, envelopes and Jastrow
        ham = HarmonicTrap(2, omega=0.5, interaction=0.8, conditioned_on=("omega",))
        space = ParameterGrid([0.25, 0.5, 1.0], ("omega",))
    x = _samples(ham, np.asarray(space.points))
    new = make_qernel(TINY, ham, space)
    params = new.init(jax.random.PRNGKey(0), x[:1])
    params = jax.tree_util.tree_map(lambda a: a + 0.1 * np.sin(np.arange(a.size).reshape(a.shape)), params)
    old = make_qernel(_legacy(TINY, cusp_coupling=ham.cusp_coupling, length_scale=ham.length_scale),
                      ham.hilbert, parameter_center=space.center, parameter_scale=space.scale)
    np.testing.assert_array_equal(new.apply(params, None, x), old.apply(params, None, x))

    wrong_cusp = make_qernel(_legacy(TINY, cusp_coupling=1.0, length_scale=ham.length_scale), ham.hilbert,
                             parameter_center=space.center, parameter_scale=space.scale)
    assert not np.allclose(new.apply(params, None, x), wrong_cusp.apply(params, None, x))
    wrong_normalisation = make_qernel(TINY, ham, ParameterGrid(np.asarray(space.points)[:2, 0], space.names))
    assert not np.allclose(new.apply(params, None, x), wrong_normalisation.apply(params, None, x))


def test_slater_jastrow_from_hamiltonian_equals_explicit_arguments():
    ham = HarmonicTrap(2, omega=0.5, interaction=0.8)
    x = _samples(ham, np.zeros((1, 0)))
    new = make_slater_jastrow(SlaterJastrowConfig(complex_output=False), ham)
    params = new.init(jax.random.PRNGKey(1), x[:1])
    old = make_slater_jastrow(SlaterJastrowConfig(cusp_coupling=0.8, length_scale=1 / math.sqrt(0.5), complex_output=False),
                              ham.hilbert)
    np.testing.assert_array_equal(new.apply(params, None, x), old.apply(params, None, x))


def test_builder_refuses_a_normalisation_that_could_silently_differ():
    ham = MoireHamiltonian(supercell=1, n_electrons=1, conditioned_on=("V",))
    with pytest.raises(ValueError, match="carries \\['V'\\]: pass the parameter space"):
        make_qernel(TINY, ham)
    with pytest.raises(ValueError, match="normalisation comes from the parameter space"):
        make_qernel(TINY, ham, parameter_center=[15.0])
    with pytest.raises(ValueError, match="do not match the Hamiltonian's carried parameters"):
        make_qernel(TINY, ham, ParameterGrid([0.0, 90.0], ("phi",)))
    with pytest.raises(TypeError, match="expected a Hamiltonian"):
        make_qernel(TINY, object())


def test_physics_fields_of_the_config_are_deprecated():
    with pytest.warns(DeprecationWarning, match="QERNELConfig.cusp_coupling is deprecated"):
        QERNELConfig(cusp_coupling=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        QERNELConfig()  # no warning without the physics fields


def test_evaluation_normalises_as_training():
    """A model evaluated at new values (``state_at_values``) normalises with the training grid
    (rebuilt from the checkpoint's configuration), not with the evaluation grid."""
    from qernel.pretrained import pretrained_checkpoint
    from qernel.run import state_at_values

    run, vstate, _ = state_at_values(pretrained_checkpoint("nu23_3x3"), {"V": [10.0, 21.0]}, n_samples=16,
                                     n_thermalise=0)
    ham = run.hamiltonian
    training = ParameterGrid(run.config.parameters.values["V"], ("V",))
    settings = run.config.ansatz.settings(dtype="float64", n_harmonics=3)
    x = _samples(ham, [[10.0], [21.0]], n=2)
    expected = make_qernel(settings, ham, training).apply(vstate.parameters, None, x)
    np.testing.assert_allclose(np.asarray(vstate.log_value(x)), expected, rtol=1e-12, atol=1e-12)
    evaluation_only = make_qernel(settings, ham, ParameterGrid([10.0, 21.0], ("V",)))
    assert not np.allclose(evaluation_only.apply(vstate.parameters, None, x), expected)
