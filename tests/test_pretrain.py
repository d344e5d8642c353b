"""Orbital pretraining: the loss reaches ~0 when the network can represent the reference exactly."""

import jax
import numpy as np
import pytest

from qernel.ansatz.orbitals import plane_wave_kpoints
from qernel.config import ConfigError, config_from_dict
from qernel.hamiltonian.bands import BlochOrbitals
from qernel.run import build_run, pretrain_orbitals
from qernel.training.pretrain import OrbitalPretrainer, reference_orbitals

from _tiny_demo import tiny_demo_config


def _tiny_run(values=(15.0,), pretrain=None):
    config = tiny_demo_config(
        {"type": "grid", "values": {"V": list(values)}},
        {"n_chains": 16 * len(values), "n_samples": 64 * len(values), "n_thermalise": 5},
        {"n_steps": 0},
    )
    if pretrain is not None:
        config["pretrain"] = pretrain
    return build_run(config)


@pytest.mark.slow  # about a minute of CPU (300 Adam steps with sampling)
def test_pretraining_fits_representable_plane_wave_orbitals():
    """Target: one plane-wave orbital c_n exp(i k_n . r) per envelope wavevector k_n, with unit
    complex c_n: exactly the network's one determinant with a constant generalized orbital
    (its bias), so the loss (sum over the 4 x 4 matrix, initially O(10)) must go to ~0."""
    run = _tiny_run()
    hilbert = run.hamiltonian.hilbert
    k = plane_wave_kpoints(hilbert.supercell, hilbert.n_up)
    phases = np.exp(1j * np.linspace(0.3, 2.0, hilbert.n_up))[:, None]
    target = BlochOrbitals(k=k, G=np.zeros((1, 2)), coefficients=phases)
    pretrainer = OrbitalPretrainer(run.vstate, [(target, None)], learning_rate=2e-2)
    initial = pretrainer.loss()
    losses = pretrainer.run(300, progress=False)
    final = pretrainer.loss()
    assert initial > 1.0
    assert final < 1e-3 * initial, (initial, losses[-5:], final)


@pytest.mark.slow  # about a minute of CPU (two runs built and compiled)
def test_bloch_pretraining_reduces_the_loss_per_group_and_is_skipped_when_stored(tmp_path):
    """Two groups, each fitted to its own Bloch orbitals; a stored complete pretraining is not redone."""
    run = _tiny_run((5.0, 25.0), {"steps": 30, "learning_rate": 1e-2})
    losses = pretrain_orbitals(run, tmp_path, progress=False)
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    assert (tmp_path / "pretrain.npz").is_file()
    again = _tiny_run((5.0, 25.0), {"steps": 30, "learning_rate": 1e-2})
    assert pretrain_orbitals(again, tmp_path, progress=False) == []
    np.testing.assert_array_equal(
        np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(again.vstate.parameters)]),
        np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(run.vstate.parameters)]),
    )


def test_pretrain_config_is_validated():
    base = tiny_demo_config({"type": "grid", "values": {"V": [15.0]}}, {"n_chains": 16, "n_samples": 64}, {})
    with pytest.raises(ConfigError, match="pretrain.stepz"):
        config_from_dict({**base, "pretrain": {"stepz": 3}})
    with pytest.raises(ConfigError, match="pretrain.reference"):
        config_from_dict({**base, "pretrain": {"reference": "dft"}})
    with pytest.raises(ConfigError, match="pretrain.learning_rate"):
        config_from_dict({**base, "pretrain": {"learning_rate": -1.0}})


def test_hartree_fock_reference_names_its_absence():
    run = _tiny_run()
    with pytest.raises(ValueError, match="hartree_fock"):
        reference_orbitals(run.hamiltonian, "hartree_fock", np.array([[15.0]]), ("V",))


def test_reference_matrices_are_block_diagonal_for_a_full_determinant():
    """Up orbitals on the up rows, down orbitals on the down rows, zeros elsewhere; each sample
    uses the orbitals of its own group (nearest carried parameter row)."""
    from qernel.training.pretrain import reference_matrices

    rng = np.random.default_rng(0)
    k = rng.normal(size=(2, 2))

    def orbitals(scale):
        return BlochOrbitals(k=k, G=np.zeros((1, 2)), coefficients=scale * np.ones((2, 1), complex))

    down = BlochOrbitals(k=k[:1], G=np.zeros((1, 2)), coefficients=np.ones((1, 1), complex))
    references = [(orbitals(1.0), down), (orbitals(2.0), down)]
    positions = rng.normal(size=(2, 3, 2))
    x = np.concatenate([positions.reshape(2, 6), np.array([[5.1], [14.0]])], axis=-1)
    (full,) = reference_matrices(references, np.array([[5.0], [15.0]]), x, 2, 1, True)
    assert full.shape == (2, 3, 3)
    np.testing.assert_array_equal(full[:, :2, 2], 0)
    np.testing.assert_array_equal(full[:, 2, :2], 0)
    for s, scale in enumerate((1.0, 2.0)):
        np.testing.assert_allclose(full[s, :2, :2], scale * np.exp(1j * positions[s, :2] @ k.T))
        np.testing.assert_allclose(full[s, 2, 2], np.exp(1j * positions[s, 2] @ k[0]))


def test_pretraining_loss_ignores_a_phase_per_orbital_and_group():
    """Column phases of the reference (arbitrary in an eigensolver) do not change the loss; a
    wrong matrix does."""
    from qernel.training.pretrain import pretraining_loss

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(6, 3, 3)) + 1j * rng.normal(size=(6, 3, 3))
    groups = np.array([0, 0, 0, 1, 1, 1])
    phases = np.exp(1j * rng.uniform(0, 6.3, size=(2, 3)))  # per group and column
    net = (ref * phases[groups][:, None, :])[:, None]  # K = 1
    assert abs(float(pretraining_loss([net], [ref], groups, 2))) < 1e-10
    assert float(pretraining_loss([net], [ref], None, 1)) > 1.0  # one phase for both groups cannot fit
    assert float(pretraining_loss([net + 0.1], [ref], groups, 2)) > 0.05
