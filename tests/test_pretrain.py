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
    (its bias), so the loss (normalised residual of the best linear fit, in [0, 1]) must go to ~0."""
    run = _tiny_run()
    hilbert = run.hamiltonian.hilbert
    k = plane_wave_kpoints(hilbert.supercell, hilbert.n_up)
    phases = np.exp(1j * np.linspace(0.3, 2.0, hilbert.n_up))[:, None]
    target = BlochOrbitals(k=k, G=np.zeros((1, 2)), coefficients=phases)
    pretrainer = OrbitalPretrainer(run.vstate, [(target, None)], learning_rate=2e-2)
    initial = pretrainer.loss()
    losses = pretrainer.run(300, progress=False)
    final = pretrainer.loss()
    assert initial > 0.1
    assert final < 1e-3 * initial, (initial, losses[-5:], final)


@pytest.mark.slow  # about a minute of CPU (two runs built and compiled)
def test_bloch_pretraining_reduces_the_loss_per_group_and_is_skipped_when_stored(tmp_path):
    """Two groups, each fitted to its own Bloch orbitals; a stored complete pretraining is not redone."""
    run = _tiny_run((5.0, 25.0), {"steps": 30, "learning_rate": 1e-2, "reference": "bloch"})
    losses = pretrain_orbitals(run, tmp_path, progress=False)
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    assert (tmp_path / "pretrain.npz").is_file()
    again = _tiny_run((5.0, 25.0), {"steps": 30, "learning_rate": 1e-2, "reference": "bloch"})
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
    with pytest.raises(ConfigError, match=r"pretrain.learning_rate_decay: must be >= 0"):
        config_from_dict({**base, "pretrain": {"learning_rate_decay": -0.1}})
    with pytest.raises(ConfigError, match="pretrain.reference: 'hartree_fock' supports runs that carry V only"):
        config_from_dict({**base, "parameters": {"type": "grid", "values": {"V": [15.0], "phi": [45.0]}},
                          "pretrain": {"steps": 10}})
    trap = {"system": {"kind": "trap", "n_electrons": 2}, "pretrain": {"steps": 10}}
    with pytest.raises(ConfigError, match="pretrain.steps: orbital pretraining needs reference orbitals"):
        config_from_dict(trap)
    assert config_from_dict({"system": {"kind": "trap", "n_electrons": 2}}).pretrain.steps == 0  # not moiré: none


def test_pretraining_learning_rate_follows_the_configured_decay(tmp_path, monkeypatch):
    """The configured ``learning_rate_decay`` reaches the pretrainer, whose Adam steps are then
    ``lr / (1 + decay * t)``: with a constant gradient Adam's normalised step is the rate itself."""
    import qernel.training.pretrain as pretrain_module

    built = []

    class Recording(pretrain_module.OrbitalPretrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(pretrain_module, "OrbitalPretrainer", Recording)
    lr, decay = 1e-2, 0.5
    run = _tiny_run(pretrain={"steps": 1, "learning_rate": lr, "learning_rate_decay": decay, "reference": "bloch"})
    pretrain_orbitals(run, tmp_path, progress=False)
    optimizer = built[0].optimizer
    params = run.vstate.parameters
    gradient = jax.tree_util.tree_map(np.ones_like, params)
    state = optimizer.init(params)
    for t in range(4):
        updates, state = optimizer.update(gradient, state, params)
        step = np.concatenate([np.ravel(u) for u in jax.tree_util.tree_leaves(updates)])
        np.testing.assert_allclose(step, -lr / (1 + decay * t), rtol=1e-6)


def test_a_left_out_section_stands_for_the_measured_cpu_recipe():
    """Only [system]: one state at the system's V, the CPU-sized model, SPRING, Hartree-Fock
    pretraining; a section that is given keeps the dataclass defaults for the keys it leaves out."""
    from qernel.config import SECTION_DEFAULTS

    config = config_from_dict({"system": {"kind": "moire", "supercell": 3, "n_electrons": 6, "eps": 5.0}})
    assert config.parameters.type == "none"
    assert config.optimizer.preconditioner == "spring" and config.pretrain.reference == "hartree_fock"
    assert config.pretrain.steps == SECTION_DEFAULTS["pretrain"]["steps"] > 0
    assert config.ansatz.options["width"] == SECTION_DEFAULTS["ansatz"]["width"]
    given = config_from_dict({"system": {"kind": "moire"}, "optimizer": {"n_steps": 3}, "pretrain": {"steps": 0}})
    assert given.optimizer.preconditioner == "minsr" and given.optimizer.n_steps == 3


def test_hartree_fock_reference_is_the_self_consistent_determinant_of_each_group():
    """Per group, the pretraining target spans the Hartree-Fock orbitals at that group's V (checked
    on random positions against an independent call of the solver), which differ from the Bloch
    orbitals once the interaction matters; a run carrying more than V is refused by name."""
    from qernel.reference.hartree_fock import hartree_fock

    run = _tiny_run()
    hamiltonian = run.hamiltonian
    refs = reference_orbitals(hamiltonian, "hartree_fock", np.array([[5.0], [25.0]]), ("V",))
    positions = np.random.default_rng(0).uniform(0, 3, size=(24, 2))  # more points than orbitals: spans are testable
    for (up, _), V in zip(refs, (5.0, 25.0)):
        expected = hartree_fock(hamiltonian, V=V).orbitals_up(positions)
        # same span: the least-squares fit of one set by the other is exact
        mixing, *_ = np.linalg.lstsq(expected, up(positions), rcond=None)
        np.testing.assert_allclose(expected @ mixing, up(positions), atol=1e-8)
    bloch = hamiltonian.noninteracting_ground_state(V=25.0).orbitals_up(positions)
    mixing, *_ = np.linalg.lstsq(bloch, refs[1][0](positions), rcond=None)
    assert np.abs(bloch @ mixing - refs[1][0](positions)).max() > 1e-3
    # a run carrying no parameter: one group at the Hamiltonian's own values
    (single,) = reference_orbitals(hamiltonian, "hartree_fock", np.zeros((1, 0)), ())
    own = hartree_fock(hamiltonian).orbitals_up(positions)
    mixing, *_ = np.linalg.lstsq(own, single[0](positions), rcond=None)
    np.testing.assert_allclose(own @ mixing, single[0](positions), atol=1e-8)
    with pytest.raises(ValueError, match="hartree_fock.*carry V only"):
        reference_orbitals(hamiltonian, "hartree_fock", np.array([[15.0, 45.0]]), ("V", "phi"))


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


def test_pretraining_loss_ignores_any_invertible_mixing_of_the_reference_orbitals():
    """A random invertible complex mixing of the reference orbitals per group (an eigensolver fixes
    a degenerate multiplet only up to such a rotation; the determinant depends only on the span)
    leaves the loss unchanged; a network spanning the reference per group has loss ~0; one mixing
    for two groups mixed differently, a perturbed or a collapsed network do not fit."""
    from qernel.training.pretrain import pretraining_loss

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(6, 3, 3)) + 1j * rng.normal(size=(6, 3, 3))
    groups = np.array([0, 0, 0, 1, 1, 1])
    mixing = rng.normal(size=(2, 3, 3)) + 1j * rng.normal(size=(2, 3, 3))  # per group, invertible a.s.
    assert np.all(np.abs(np.linalg.det(mixing)) > 1e-3)
    mixed = np.einsum("bij,bjk->bik", ref, mixing[groups])
    net = rng.normal(size=(6, 2, 3, 3)) + 1j * rng.normal(size=(6, 2, 3, 3))  # K = 2, unrelated
    base = float(pretraining_loss([net], [ref], groups, 2))
    assert 0.05 < base <= 1.0
    np.testing.assert_allclose(float(pretraining_loss([net], [mixed], groups, 2)), base, rtol=1e-8)
    exact = mixed[:, None]  # the network spans the reference in each group
    assert abs(float(pretraining_loss([exact], [ref], groups, 2))) < 1e-5
    assert float(pretraining_loss([exact], [ref], None, 1)) > 0.1  # one U for both groups cannot fit
    assert float(pretraining_loss([exact + 0.1], [ref], groups, 2)) > 1e-3
    collapsed = float(pretraining_loss([1e-6 * np.ones_like(exact)], [ref], groups, 2))
    assert collapsed > 0.5  # a vanishing (rank-one) network is penalised, not rewarded


def test_orbital_matrices_are_captured_from_the_fused_determinant_model():
    """The default QERNEL model evaluates its determinants fused (``Orbitals.slogdets``, no
    ``__call__``); pretraining must still see its orbital matrices, the same as the unfused
    model's with the same parameters, and their slogdet must carry the model's position dependence."""
    import jax.numpy as jnp

    from qernel.training.pretrain import orbital_matrices

    def matrices(fused):
        config = tiny_demo_config({"type": "grid", "values": {"V": [15.0]}}, {"n_chains": 16, "n_samples": 64}, {})
        config["ansatz"]["fused_determinant"] = fused
        config["ansatz"]["use_jastrow"] = False
        run = build_run(config)
        vstate = run.vstate
        x = vstate.samples.reshape(-1, vstate.samples.shape[-1])[:4]

        class Model:  # hk.Transformed-like: apply(params, rng, x)
            @staticmethod
            def apply(p, rng, x):
                return vstate._apply_fun({"params": p, **vstate.model_state}, x)

        return orbital_matrices(Model, vstate.parameters, x), vstate.log_value(x)

    (fused,), log_psi = matrices(True)
    (plain,), _ = matrices(False)
    assert fused.shape == (4, 1, 4, 4)
    np.testing.assert_allclose(np.asarray(fused), np.asarray(plain), rtol=1e-10, atol=1e-12)
    log_det = np.asarray(jnp.linalg.slogdet(fused[:, 0])[1])
    np.testing.assert_allclose(np.real(np.asarray(log_psi)) - log_det, np.real(log_psi[0]) - log_det[0], atol=1e-8)


@pytest.mark.slow  # about a minute of CPU (a tiny run built and compiled)
def test_signal_during_pretraining_saves_the_step_and_the_same_command_continues(tmp_path, monkeypatch):
    """SIGTERM in the middle of pretraining: the current step finishes, pretrain.npz holds it, the
    interruption names the phase; pretraining again continues from there to the planned steps."""
    import os
    import signal

    from qernel.training.checkpoint import load_checkpoint
    from qernel.training.driver import TrainingInterrupted

    original = OrbitalPretrainer.step

    def step_then_signal(self):
        loss = original(self)
        if self.step_count == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    monkeypatch.setattr(OrbitalPretrainer, "step", step_then_signal)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the handler under test must be the one installed
    try:
        run = _tiny_run((15.0,), {"steps": 5, "learning_rate": 1e-2, "reference": "bloch"})
        with pytest.raises(TrainingInterrupted) as stop:
            pretrain_orbitals(run, tmp_path, progress=False)
        assert stop.value.phase == "pretraining" and stop.value.step == 2 and stop.value.saved
        assert load_checkpoint(tmp_path / "pretrain.npz")["pretrain_step"] == 2
        monkeypatch.setattr(OrbitalPretrainer, "step", original)
        again = _tiny_run((15.0,), {"steps": 5, "learning_rate": 1e-2, "reference": "bloch"})
        assert len(pretrain_orbitals(again, tmp_path, progress=False)) == 3
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.slow  # about a minute of CPU (a tiny run pretrained and one VMC step)
def test_the_pretrained_state_is_measured_before_vmc_next_to_its_reference(tmp_path, capsys):
    """After pretraining, before VMC, `train` measures the state's energy per V with the thermalised
    chains: printed next to the reference's energy and written to log.jsonl (a step -1 record that the
    VMC log keeps). The reference energy of each group is the Bloch determinant's at that group's V
    (computed independently); the measurement leaves the chains as they were, so the first VMC step
    measures the same samples and the same energy."""
    from qernel.reference.bloch import bloch_determinant
    from qernel.run import train
    from qernel.training.callbacks import read_log

    config = tiny_demo_config({"type": "grid", "values": {"V": [5.0, 25.0]}},
                              {"n_chains": 32, "n_samples": 256, "n_thermalise": 20}, {"n_steps": 1})
    config["pretrain"] = {"steps": 3, "learning_rate": 1e-2, "reference": "bloch"}
    run = train(config, output_dir=tmp_path, progress=False)
    check, first = read_log(tmp_path / "log.jsonl")
    assert check["step"] == -1 and check["phase"] == "pretrained" and check["reference"] == "bloch"
    assert first["step"] == 0
    n = run.hamiltonian.n_electrons
    printed = capsys.readouterr().out
    for group, vmc in zip(check["groups"], first["groups"]):
        V = group["parameters"]["V"]
        assert vmc["parameters"]["V"] == V
        expected = bloch_determinant(run.hamiltonian, V)["energy_meV"]
        assert group["reference_energy"] == pytest.approx(expected, rel=1e-9)
        assert np.isfinite(group["energy"]) and group["error"] > 0
        # the measurement puts the chains back: the first VMC step draws the same samples of the same state
        assert group["energy"] == pytest.approx(vmc["energy"], rel=1e-12, abs=1e-12), (group, vmc)
        assert f"{group['energy'] / n:10.3f}" in printed and f"{expected / n:12.3f}" in printed


def test_a_non_finite_pretrained_energy_stops_the_run():
    """A state whose energy is NaN (here: NaN parameters) is refused before VMC, naming the group."""
    from qernel.run import check_pretrained_state
    from qernel.training.driver import NonFiniteError

    run = _tiny_run((15.0,), {"steps": 1, "learning_rate": 1e-2, "reference": "bloch"})
    run.pretrain_references = [run.hamiltonian.noninteracting_ground_state(V=15.0)]
    run.vstate.parameters = jax.tree_util.tree_map(lambda a: a * np.nan, run.vstate.parameters)
    with pytest.raises(NonFiniteError, match="not finite at"):
        check_pretrained_state(run, print_fn=None)
