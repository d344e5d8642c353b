"""Multi-process training on JAX's distributed runtime: 2 CPU processes on this machine.

``qernel train --distributed`` is started twice (process 0 and 1, gloo collectives over loopback);
NetKet shards the chains over the 2 processes' devices. Reference: the 1-process run of the same
configuration and seed, started alongside. The Markov chains draw their random numbers from one
key (partitionable threefry), so sharding does not change them, and the reductions differ only in
summation order: the energies agree to rtol 1e-9 (measured on this machine: bit-identical). The
2-process run is SIGKILLed mid-run and resumed on 2 processes; its whole log must match.

The same test also checks what depends on the number of processes only through the checkpoint:
the 1-process run stops one step early and is resumed on 2 processes (its last step then equals
the 2-process run's), and ``qernel evaluate --distributed`` on 2 processes prints and writes the
same records as on 1 process (only process 0 writes).
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


def _config(tmp_path: Path, name: str, n_steps: int = N_STEPS) -> Path:
    data = copy.deepcopy(TINY)
    data["optimizer"]["n_steps"] = n_steps
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


def _start(config: Path, *extra: str, distributed: int | None = None, port: int = 0,
           command: str = "train") -> subprocess.Popen:
    argv = [sys.executable, "-m", "qernel.cli", command, str(config), *extra]
    if command == "train":
        argv.append("--no-progress")
    if distributed is not None:
        argv += ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                 "--process-id", str(distributed)]
    return subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _two(config: Path, *extra: str, command: str = "train") -> list[subprocess.Popen]:
    port = _free_port()
    return [_start(config, *extra, distributed=i, port=port, command=command) for i in (0, 1)]


def _wait(processes, timeout=900) -> list[str]:
    """Wait for every process (exit 0 required); returns their standard outputs."""
    outputs = []
    for p in processes:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, f"exit {p.returncode}:\n{err[-3000:]}"
        outputs.append(out)
    return outputs


def _energies(directory: Path) -> np.ndarray:
    log = [json.loads(line) for line in (directory / "log.jsonl").read_text().splitlines() if line]
    assert [r["step"] for r in log] == list(range(len(log)))
    return np.array([[g["energy"] for g in r["groups"]] for r in log])


def test_two_processes_reproduce_one_process_and_resume_after_kill(tmp_path):
    """One 2-process run, SIGKILLed after its second logged step and resumed on 2 processes: its
    whole log (steps before the kill and after the resume) equals the 1-process run's. The
    1-process run stops a step early and is resumed on 2 processes (checkpoint written by 1
    process, read by 2). Then ``evaluate`` of the final checkpoint on 2 processes equals 1 process."""
    one = _start(_config(tmp_path, "one", N_STEPS - 1))  # the 1-process reference, run alongside
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
    _wait([one])
    assert len(_energies(tmp_path / "one")) == N_STEPS - 1
    one_on_two = _two(_config(tmp_path, "one"), "--resume")  # n_steps may change on --resume
    _wait([*resumed, *one_on_two])
    reference = _energies(tmp_path / "one")
    assert reference.shape == (N_STEPS, 2)
    np.testing.assert_allclose(_energies(tmp_path / "two"), reference, rtol=1e-9)
    assert not (tmp_path / "two" / "run.lock").exists()  # the stale lock was taken over and released

    checkpoint = tmp_path / "two" / "checkpoint.npz"
    options = ("--n-samples", "128", "--block-size", "64")
    evaluations = [_start(checkpoint, *options, "--json", str(tmp_path / "eval_one.json"), command="evaluate"),
                   *_two(checkpoint, *options, "--json", str(tmp_path / "eval_two.json"), command="evaluate")]
    out_one, out_zero, out_first = _wait(evaluations)
    one_process = json.loads((tmp_path / "eval_one.json").read_text())
    two_processes = json.loads((tmp_path / "eval_two.json").read_text())
    assert [r["n_samples"] for r in one_process] == [r["n_samples"] for r in two_processes] == [64, 64]
    for a, b in zip(one_process, two_processes):
        assert a["parameters"] == b["parameters"]
        np.testing.assert_allclose([a["energy"], a["error"]], [b["energy"], b["error"]], rtol=1e-9)
    def table(out):  # the printed rows (the collectives' own messages may share the stream)
        return [line for line in out.splitlines() if "omega=" in line]

    assert table(out_zero) == table(out_one) and len(table(out_one)) == 2
    assert table(out_first) == []  # process 1 prints no table
