"""FoundationVMC: exact resume, atomic checkpoints, NaN detection, per-group statistics."""

import json
import os
import warnings

import haiku as hk
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax
import pytest

from qernel.hamiltonian.trap import HarmonicTrap
from qernel.sampler import ParameterGrid, chain_group_ids, make_sampler
from qernel.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from qernel.training.driver import FoundationVMC, NonFiniteError, read_log


def _trap_model(x):
    """Tiny omega-conditioned two-electron wavefunction (Gaussian x Pade Jastrow)."""
    r = x[..., :4].reshape(*x.shape[:-1], 2, 2)
    omega = x[..., 4:5]
    h = hk.nets.MLP([8, 2])(omega)
    r12 = jnp.linalg.norm(r[..., 0, :] - r[..., 1, :], axis=-1)
    return -0.5 * (1.0 + h[..., 0]) * omega[..., 0] * jnp.sum(r**2, (-1, -2)) + r12 / (1.0 + jnp.exp(h[..., 1]) * r12)


def _driver(seed=0, preconditioner="minsr"):
    ham = HarmonicTrap(2, omega=1.0, conditioned_on=("omega",))
    space = ParameterGrid([[0.5, 1.0]], ("omega",))
    sampler = make_sampler(ham.hilbert, space, n_chains=16, sweep_size=4)
    vstate = nk.vqs.MCState(sampler, hk.transform(_trap_model), n_samples=128, n_discard_per_chain=4,
                            seed=seed, sampler_seed=seed + 1)
    return FoundationVMC(ham, vstate, optax.sgd(0.05), preconditioner=preconditioner)


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)])


def test_killed_and_resumed_run_follows_the_uninterrupted_trajectory(tmp_path):
    reference = _driver()
    reference.run(6, progress=False)

    first = _driver()
    first.run(3, output_dir=tmp_path, checkpoint_every=1, progress=False)
    del first  # the process "dies" here
    resumed = _driver()
    resumed.restore(tmp_path / "checkpoint.npz")
    assert resumed.step_count == 3
    resumed.run(6, output_dir=tmp_path, progress=False)

    np.testing.assert_array_equal(_flat(resumed.vstate.parameters), _flat(reference.vstate.parameters))
    np.testing.assert_array_equal(
        np.asarray(resumed.vstate.sampler_state.σ), np.asarray(reference.vstate.sampler_state.σ)
    )
    log = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in log] == list(range(6))
    ref_energies = [r["energy"] for r in reference.history]
    assert [r["energy"] for r in log] == pytest.approx(ref_energies, rel=0, abs=0)


def test_per_group_statistics_and_adaptation():
    driver = _driver()
    records = driver.run(3, progress=False)
    groups = records[-1]["groups"]
    assert [g["parameters"]["omega"] for g in groups] == [0.5, 1.0]
    for g in groups:
        assert np.isfinite(g["energy"]) and g["error"] > 0 and 0 < g["acceptance"] <= 1
    # the harmonic-trap energy scales with omega: the groups are resolved separately
    assert groups[1]["energy"] > groups[0]["energy"] + 0.5


def test_group_statistics_of_an_eigenstate_have_zero_error():
    """A constant local energy (an exact eigenstate, e.g. the 2-electron trap at omega = 1 with the
    Taut wavefunction) has an exact mean: error 0, not NetKet's NaN from 0/0."""
    driver = _driver()
    ids = np.asarray(chain_group_ids(driver.vstate))
    local = jnp.where(jnp.asarray(ids)[:, None] == 0, 1.75, 3.0) * jnp.ones((16, 8))  # per-group constants
    stats = driver.group_statistics(local, np.full(2, 0.5))
    assert [s.energy for s in stats] == [1.75, 3.0]
    assert [s.error for s in stats] == [0.0, 0.0] and [s.variance for s in stats] == [0.0, 0.0]


def test_nan_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    driver = _driver()
    driver.run(2, output_dir=tmp_path, checkpoint_every=1, progress=False)
    good = load_checkpoint(tmp_path / "checkpoint.npz")
    driver.vstate.parameters = jax.tree_util.tree_map(lambda a: a * jnp.nan, driver.vstate.parameters)
    with pytest.raises(NonFiniteError, match="step 2"):
        driver.run(4, output_dir=tmp_path, checkpoint_every=1, progress=False)
    kept = load_checkpoint(tmp_path / "checkpoint.npz")
    assert kept["step"] == good["step"] == 2
    assert np.all(np.isfinite(_flat(kept["params"])))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"step": 1, "params": {"w": np.ones(3)}})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during write")

    monkeypatch.setattr(os, "fsync", killed)  # dies after the bytes are written, before the rename
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "params": {"w": np.zeros(3)}})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]


def test_missing_or_foreign_checkpoint_is_reported(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk.npz: not a qernel checkpoint"):
        load_checkpoint(tmp_path / "junk.npz")


def test_torn_log_line_is_dropped_on_resume(tmp_path):
    driver = _driver()
    driver.run(2, output_dir=tmp_path, progress=False)
    with open(tmp_path / "log.jsonl", "a") as handle:
        handle.write('{"step": 2, "ener')  # killed mid-line
    resumed = _driver()
    resumed.restore(tmp_path / "checkpoint.npz")
    resumed.run(3, output_dir=tmp_path, progress=False)
    assert [r["step"] for r in read_log(tmp_path / "log.jsonl")] == [0, 1, 2]
    json.dumps(read_log(tmp_path / "log.jsonl"))


def test_bad_driver_arguments():
    driver = _driver()
    with pytest.raises(ValueError, match="preconditioner"):
        FoundationVMC(driver.hamiltonian, driver.vstate, optax.sgd(0.1), preconditioner="kfac")
    with pytest.raises(ValueError, match="n_steps"):
        driver.run(-1, progress=False)


# -- FoundationVMC as a NetKet driver ---------------------------------------------------------------
def test_netket_run_with_loggers_and_callbacks_follows_the_legacy_trajectory(tmp_path):
    """``run(n_iter, out=..., callback=..., timeit=...)`` of NetKet: the same steps as qernel's
    former ``run`` (bit-identical energies and parameters), NetKet's logger gets the mean energy and
    every group's, and the checkpoint and log.jsonl callbacks write what the former form wrote."""
    from qernel.training import CheckpointCallback, JsonLinesLog

    reference = _driver()
    reference.run(3, progress=False)
    driver = _driver()
    log = nk.logging.RuntimeLog()
    out = driver.run(3, out=log, callback=[CheckpointCallback(tmp_path, every=2), JsonLinesLog(tmp_path / "log.jsonl")],
                     show_progress=False, timeit=True)
    assert out == (log,) and driver.step_count == 3
    np.testing.assert_array_equal(_flat(driver.vstate.parameters), _flat(reference.vstate.parameters))
    energies = [r["energy"] for r in reference.history]
    assert [r["energy"] for r in read_log(tmp_path / "log.jsonl")] == energies
    assert list(np.asarray(log.data["Energy"]["Mean"])) == pytest.approx(energies, rel=1e-12)
    assert list(np.asarray(log.data["Energy"].iters)) == [0, 1, 2]
    group = log.data["groups"]["omega=0.5"]
    assert list(np.asarray(group["Energy"]["Mean"])) == [r["groups"][0]["energy"] for r in reference.history]
    assert load_checkpoint(tmp_path / "checkpoint.npz")["step"] == 3


def test_checkpoint_callback_resumes_a_fresh_driver_to_the_same_end(tmp_path):
    """NetKet fixes the end of a run before ``on_run_start``: a fresh driver given
    ``CheckpointCallback(resume=True)`` and ``run(4)`` continues a run stopped at step 2 to step 4,
    bit-identical to an uninterrupted run."""
    from qernel.training import CheckpointCallback, JsonLinesLog

    reference = _driver()
    reference.run(4, show_progress=False)
    callbacks = lambda: [CheckpointCallback(tmp_path, every=1, resume=True), JsonLinesLog(tmp_path / "log.jsonl")]
    _driver().run(2, callback=callbacks(), show_progress=False)
    resumed = _driver()
    resumed.run(4, callback=callbacks(), show_progress=False)
    assert resumed.step_count == 4
    np.testing.assert_array_equal(_flat(resumed.vstate.parameters), _flat(reference.vstate.parameters))
    assert [r["step"] for r in read_log(tmp_path / "log.jsonl")] == [0, 1, 2, 3]
    assert [r["energy"] for r in read_log(tmp_path / "log.jsonl")] == [r["energy"] for r in reference.history]


#: energies of the first 3 steps of ``_driver(preconditioner=...)`` computed by qernel's own driver
#: loop before FoundationVMC became a NetKet driver (commit aaa8b8c): the step math is unchanged
_ENERGIES_BEFORE = {
    "minsr": [2.8190152568677993, 2.782656010955863, 2.336597410428343],
    "spring": [2.8190152568677993, 2.782656010955863, 2.337183875703837],
    None: [2.8190152568677993, 2.5492015508381978, 2.223776308969538],
}


@pytest.mark.parametrize("preconditioner", ["minsr", "spring", None])
def test_energies_equal_those_of_the_former_driver_loop(preconditioner):
    driver = _driver(preconditioner=preconditioner)
    driver.run(3, show_progress=False)
    assert [r["energy"] for r in driver.history] == pytest.approx(_ENERGIES_BEFORE[preconditioner], rel=1e-12)


def test_stock_netket_driver_on_several_parameter_values_warns_once():
    from qernel.hamiltonian.driver_check import StockDriverWarning
    import qernel.hamiltonian.driver_check as check

    check._warned = False
    driver = _driver()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StockDriverWarning)
        driver.run(1, show_progress=False)  # FoundationVMC centers per group: no warning
        driver.vstate.expect(driver.operator)  # a measurement outside a driver: no warning
    stock = nk.driver.VMC(driver.operator, optax.sgd(0.01), variational_state=driver.vstate)
    with pytest.warns(StockDriverWarning, match=r"VMC centers the gradient over all chains, but they carry 2"):
        stock.run(1, show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StockDriverWarning)
        stock.run(1, show_progress=False)  # once per process
    check._warned = False


def test_tree_all_finite_sees_every_entry_of_every_leaf():
    """The check of the updated parameters (one jitted program on the flattened tree) flags a NaN or
    an inf in any entry of any leaf, float32 or float64, and passes a finite tree."""
    from qernel.training.driver import _tree_all_finite

    tree = {"a": {"w": jnp.ones((3, 4)), "b": jnp.zeros(5)}, "c": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3)}
    assert _tree_all_finite(tree)
    for path, index, bad in ((("a", "w"), (2, 3), jnp.nan), (("a", "b"), (4,), jnp.inf), (("c",), (1, 2), -jnp.inf)):
        broken = jax.tree_util.tree_map(lambda x: x, tree)
        leaf = broken
        for key in path[:-1]:
            leaf = leaf[key]
        leaf[path[-1]] = leaf[path[-1]].at[index].set(bad)
        assert not _tree_all_finite(broken), (path, index, bad)
