"""Stored Hartree-Fock states (qernel.reference.hartree_fock_store) and their use in orbital pretraining.

* a stored determinant reloads to the same energy (recomputed from the orbitals, not copied) and the same span;
* a file of another system, or a determinant whose orbitals do not give the stored energy, is refused;
* pretraining takes the stored state of a group's V and computes only the V the file does not hold.
"""

from __future__ import annotations

import numpy as np
import pytest

import qernel.reference.hartree_fock as hf_module
from qernel.config import ConfigError, config_from_dict
from qernel.hamiltonian import WSE2_WS2, MoireHamiltonian
from qernel.reference.hartree_fock import hartree_fock
from qernel.reference.hartree_fock_store import (load_hartree_fock_states, save_hartree_fock_states,
                                                 stored_hartree_fock_values)
from qernel.training.pretrain import reference_orbitals

from _tiny_demo import tiny_demo_config

CUTOFF = 1.5


def _ham(**kwargs):
    return MoireHamiltonian(**{**WSE2_WS2, **kwargs}, supercell=2, filling=1)  # N = 4, spin polarised


@pytest.fixture(scope="module")
def states():
    ham = _ham()
    return ham, {V: hartree_fock(ham, V=V, cutoff=CUTOFF, starts=("noninteracting", "crystal")) for V in (5.0, 25.0)}


def _same_span(a, b, positions):
    mixing, *_ = np.linalg.lstsq(a(positions), b(positions), rcond=None)
    return np.abs(a(positions) @ mixing - b(positions)).max()


def test_round_trip_keeps_energy_span_and_metadata(states, tmp_path):
    ham, results = states
    path = tmp_path / "hf.npz"
    save_hartree_fock_states(path, [results[5.0]])
    save_hartree_fock_states(path, [results[25.0]])  # extends the file
    loaded = load_hartree_fock_states(path, ham)
    assert sorted(loaded) == stored_hartree_fock_values(path) == [5.0, 25.0]
    positions = np.random.default_rng(0).uniform(0, 2, size=(16, 2))
    for V, original in results.items():
        state = loaded[V]
        assert state.energy_meV == pytest.approx(original.energy_meV, abs=1e-4)
        assert state.kinetic_meV == pytest.approx(original.kinetic_meV, abs=1e-4)
        assert (state.start, state.converged) == (original.start, original.converged)
        assert _same_span(original.orbitals_up, state.orbitals_up, positions) < 1e-5
        gram = state.coefficients_up @ state.coefficients_up.conj().T
        np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-12)  # orthonormal again after complex64


def test_another_system_or_a_wrong_determinant_is_refused(states, tmp_path):
    ham, results = states
    path = tmp_path / "hf.npz"
    save_hartree_fock_states(path, [results[25.0]])
    with pytest.raises(ValueError, match="another system: eps"):
        load_hartree_fock_states(path, _ham(eps=10.0))
    with pytest.raises(ValueError, match="another system: eps"):
        save_hartree_fock_states(path, [hartree_fock(_ham(eps=10.0), V=25.0, cutoff=CUTOFF, starts=("noninteracting",))])
    with pytest.raises(ValueError, match="does not exist"):
        load_hartree_fock_states(tmp_path / "missing.npz", ham)
    # orbitals that are not the stored determinant: its energy, recomputed on loading, disagrees
    with np.load(path) as data:
        arrays = dict(data)
    arrays["25/coefficients_up"] = arrays["25/coefficients_up"][::-1].copy()  # same determinant: accepted
    np.savez(path, **arrays)
    assert load_hartree_fock_states(path, ham)[25.0].energy_meV == pytest.approx(results[25.0].energy_meV, abs=1e-4)
    arrays["25/coefficients_up"][0] = np.roll(arrays["25/coefficients_up"][0], 1)  # another one: refused
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="V = 25 meV has energy"):
        load_hartree_fock_states(path, ham)


def test_pretraining_uses_stored_states_and_computes_the_rest(states, monkeypatch):
    ham, results = states
    calls = []

    def counting(hamiltonian, **kwargs):
        calls.append(kwargs.get("V"))
        return results[kwargs["V"]]

    monkeypatch.setattr(hf_module, "hartree_fock", counting)
    refs = reference_orbitals(ham, "hartree_fock", np.array([[5.0], [25.0]]), ("V",), stored={25.0: results[25.0]})
    assert calls == [5.0]  # only the V the store does not hold
    assert refs[1][0] is not None
    with pytest.raises(ValueError, match="stored reference states are Hartree-Fock"):
        reference_orbitals(ham, "bloch", np.array([[5.0]]), ("V",), stored={25.0: results[25.0]})


def test_reference_file_is_validated(tmp_path):
    base = tiny_demo_config({"type": "grid", "values": {"V": [15.0]}}, {"n_chains": 16, "n_samples": 64}, {})
    with pytest.raises(ConfigError, match="pretrain.reference_file"):
        config_from_dict({**base, "pretrain": {"steps": 1, "reference": "bloch", "reference_file": "hf.npz"}})
    from qernel.run import build_run, pretrain_orbitals

    config = {**base, "pretrain": {"steps": 1, "reference": "hartree_fock",
                                   "reference_file": str(tmp_path / "missing.npz")}}
    with pytest.raises(ConfigError, match="missing.npz does not exist"):
        pretrain_orbitals(build_run(config))
