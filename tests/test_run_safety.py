"""Run safety: the output-directory lock, SIGINT/SIGTERM during training, config-safe resume and
output-directory checks, all before anything is built or compiled."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qernel.run as qrun
from qernel.cli import main
from qernel.config import ConfigError, config_from_dict
from qernel.training.checkpoint import load_checkpoint, save_checkpoint
from qernel.training.driver import TrainingInterrupted, read_log
from qernel.training.lock import LockError, RunLock

sys.path.insert(0, str(Path(__file__).parent))
from test_config_cli import TINY, _toml  # noqa: E402
from test_driver import _driver, _flat  # noqa: E402


def _no_build(config):  # building compiles the model: must not happen before the checks
    raise AssertionError("build_run called before the run-safety checks")


def _config(tmp_path, **changes) -> dict:
    data = copy.deepcopy(TINY)
    data["run"]["output_dir"] = str(tmp_path / "run")
    for section, values in changes.items():
        data[section] = {**data[section], **values}
    return data


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# -- lock -----------------------------------------------------------------------------------------
def test_second_run_into_a_locked_directory_fails_at_once_naming_the_pid(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(qrun, "build_run", _no_build)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "run.lock").write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        path = tmp_path / "tiny.toml"
        path.write_text(_toml(_config(tmp_path)))
        assert main(["train", str(path), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"in use by process {holder.pid}" in err and err.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    pid = _dead_pid()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
    with RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(LockError, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / "run.lock").exists()
    assert f"stale lock {tmp_path / 'run.lock'} of process {pid}" in capsys.readouterr().err


# -- signals ----------------------------------------------------------------------------------------
def test_sigterm_saves_the_current_step_and_resume_follows_the_same_trajectory(tmp_path):
    """SIGTERM here, SIGINT (Ctrl-C) through the CLI below: same handler."""
    signum = signal.SIGTERM
    reference = _driver()
    reference.run(4, progress=False)

    def interrupt(step, record, driver):
        if step == 1:
            os.kill(os.getpid(), signum)  # arrives mid-run: the step is finished, then saved

    first = _driver()
    # the handlers before the run (SIGINT is ignored, not the default, in a job started in the
    # background by a non-interactive shell)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(TrainingInterrupted) as info:
        first.run(4, output_dir=tmp_path, checkpoint_every=100, progress=False, callback=interrupt)
    assert (info.value.step, info.value.saved) == (2, True)
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored
    assert load_checkpoint(tmp_path / "checkpoint.npz")["step"] == 2

    resumed = _driver()
    resumed.restore(tmp_path / "checkpoint.npz")
    resumed.run(4, output_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(_flat(resumed.vstate.parameters), _flat(reference.vstate.parameters))
    assert [r["energy"] for r in read_log(tmp_path / "log.jsonl")] == [r["energy"] for r in reference.history]


def test_cli_interrupt_prints_one_line_and_exits_130(tmp_path, monkeypatch, capsys):
    from qernel.training.driver import FoundationVMC

    original = FoundationVMC.update_parameters

    def update_then_ctrl_c(self, dp):
        original(self, dp)
        if self.step_count == 0:  # the update of step 0: 1 step done
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(FoundationVMC, "update_parameters", update_then_ctrl_c)
    path = tmp_path / "tiny.toml"
    path.write_text(_toml(_config(tmp_path, optimizer={"n_steps": 5}, run={"checkpoint_every": 10})))
    assert main(["train", str(path), "--no-progress"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted at step 1; resume with --resume"
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz")["step"] == 1
    assert not (tmp_path / "run" / "run.lock").exists()


# -- resume and output-directory checks -------------------------------------------------------------
def test_resume_with_a_changed_config_is_refused_with_the_diff(tmp_path, monkeypatch, capsys):
    stored = _config(tmp_path)
    save_checkpoint(tmp_path / "run" / "checkpoint.npz",
                    {"step": 1, "config": config_from_dict(stored).to_dict(), "params": {}})
    monkeypatch.setattr(qrun, "build_run", _no_build)
    changed = _config(tmp_path, parameters={"values": {"omega": [0.5, 2.0]}},
                      optimizer={"learning_rate": 0.1, "n_steps": 9})
    path = tmp_path / "changed.toml"
    path.write_text(_toml(changed))
    assert main(["train", str(path), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "parameters.values.omega: [0.5, 1.0] -> [0.5, 2.0]" in err
    assert "optimizer.learning_rate: 0.05 -> 0.1" in err
    assert "n_steps" not in err.split("only")[0]  # n_steps may change
    allowed = _config(tmp_path, optimizer={"n_steps": 9}, run={"checkpoint_every": 3})
    assert qrun.config_changes(config_from_dict(stored).to_dict(), config_from_dict(allowed)) == []


def test_output_dir_that_cannot_be_created_fails_before_building(tmp_path, monkeypatch):
    monkeypatch.setattr(qrun, "build_run", _no_build)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"run.output_dir: cannot create .*file/run: Not a directory"):
        qrun.train(_config(tmp_path, run={"output_dir": str(tmp_path / "file" / "run")}))


def test_existing_checkpoint_is_refused_before_building(tmp_path, monkeypatch):
    monkeypatch.setattr(qrun, "build_run", _no_build)
    save_checkpoint(tmp_path / "run" / "checkpoint.npz", {"step": 1})
    with pytest.raises(ConfigError, match="exists: pass --resume"):
        qrun.train(_config(tmp_path))


# -- init-from ------------------------------------------------------------------------------------
def test_init_from_starts_a_new_run_at_the_given_parameters_and_records_its_source(tmp_path):
    import jax

    first = qrun.train(_config(tmp_path), progress=False)
    source = tmp_path / "run" / "checkpoint.npz"
    second_dir = tmp_path / "second"
    started = {}

    real_run_to = qrun.FoundationVMC.run_to

    def probing_run_to(self, *args, **kwargs):  # the parameters at the first VMC step of the new run
        started["params"] = jax.tree_util.tree_map(np.asarray, self.vstate.parameters)
        return real_run_to(self, *args, **kwargs)

    qrun.FoundationVMC.run_to = probing_run_to
    try:
        second = qrun.train(_config(tmp_path, run={"seed": 3}), progress=False, output_dir=second_dir,
                            init_from=source)
    finally:
        qrun.FoundationVMC.run_to = real_run_to
    trained = jax.tree_util.tree_leaves(first.vstate.parameters)
    for a, b in zip(jax.tree_util.tree_leaves(started["params"]), trained):
        np.testing.assert_array_equal(a, np.asarray(b))
    stored = load_checkpoint(second_dir / "checkpoint.npz")
    assert stored["init_from"]["step"] == 2 and not Path(stored["init_from"]["checkpoint"]).is_absolute()
    assert Path(stored["init_from"]["checkpoint"]).name == "checkpoint.npz"
    assert int(stored["step"]) == 2 and second.driver.step_count == 2  # a new run: its own step count


def test_init_from_refuses_resume_and_a_model_that_does_not_fit(tmp_path, monkeypatch):
    from qernel.training.checkpoint import CheckpointError

    qrun.train(_config(tmp_path), progress=False)
    source = tmp_path / "run" / "checkpoint.npz"
    with pytest.raises(ConfigError, match="only one of them"):
        qrun.train(_config(tmp_path), resume=True, init_from=source, progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        qrun.train(_config(tmp_path), init_from=tmp_path / "missing.npz", progress=False,
                   output_dir=tmp_path / "other")
    wider = _config(tmp_path, ansatz={"jastrow_smooth": 3})
    with pytest.raises(CheckpointError):
        qrun.train(wider, init_from=source, progress=False, output_dir=tmp_path / "wider")
