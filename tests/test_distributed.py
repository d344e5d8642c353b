"""Multi-process training on JAX's distributed runtime: 2 CPU processes on this machine.

``qernel train --distributed`` is started twice (process 0 and 1, gloo collectives over loopback);
NetKet shards the chains over the 2 processes' devices. Reference: the 1-process run of the same
configuration and seed, started alongside. The Markov chains draw their random numbers from one
key (partitionable threefry), so sharding does not change them, and the reductions differ only in
summation order: the energies agree to rtol 1e-9 (measured on this machine: bit-identical). The
2-process run is SIGKILLed mid-run and resumed on 2 processes; its whole log must match.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from test_config_cli import TINY, _toml  # noqa: E402

N_STEPS = 4


def _config(tmp_path: Path, name: str) -> Path:
    data = copy.deepcopy(TINY)
    data["optimizer"]["n_steps"] = N_STEPS
    data["run"].update(output_dir=str(tmp_path / name), checkpoint_every=1)
    path = tmp_path / f"{name}.toml"
    path.write_text(_toml(data))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)  # spread the processes over the CPUs by PID
    return env


def _start(config: Path, *extra: str, distributed: int | None = None, port: int = 0) -> subprocess.Popen:
    argv = [sys.executable, "-m", "qernel.cli", "train", str(config), "--no-progress", *extra]
    if distributed is not None:
        argv += ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                 "--process-id", str(distributed)]
    return subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _two(config: Path, *extra: str) -> list[subprocess.Popen]:
    port = _free_port()
    return [_start(config, *extra, distributed=i, port=port) for i in (0, 1)]


def _wait(processes, timeout=900) -> None:
    for p in processes:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, f"exit {p.returncode}:\n{err[-3000:]}"


def _energies(directory: Path) -> np.ndarray:
    log = [json.loads(line) for line in (directory / "log.jsonl").read_text().splitlines() if line]
    assert [r["step"] for r in log] == list(range(len(log)))
    return np.array([[g["energy"] for g in r["groups"]] for r in log])


def test_two_processes_reproduce_one_process_and_resume_after_kill(tmp_path):
    """One 2-process run, SIGKILLed after its second logged step and resumed on 2 processes: its
    whole log (steps before the kill and after the resume) equals the 1-process run's."""
    one = _start(_config(tmp_path, "one"))  # the 1-process reference, run alongside
    config = _config(tmp_path, "two")
    two = _two(config)
    log = tmp_path / "two" / "log.jsonl"
    deadline = time.monotonic() + 900
    while not (log.exists() and len(log.read_text().splitlines()) >= 2):
        assert time.monotonic() < deadline and all(p.poll() is None for p in two), "2-process run ended early"
        time.sleep(0.2)
    for p in two:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert (tmp_path / "two" / "run.lock").exists()  # left behind by the killed process 0
    resumed = _two(config, "--resume")
    _wait([one, *resumed])
    reference = _energies(tmp_path / "one")
    assert reference.shape == (N_STEPS, 2)
    np.testing.assert_allclose(_energies(tmp_path / "two"), reference, rtol=1e-9)
    assert not (tmp_path / "two" / "run.lock").exists()  # the stale lock was taken over and released
