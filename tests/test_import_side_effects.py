"""``import qernel`` leaves the process alone; CPU pinning is opt-in (issue 16, qernel/_xla.py).

Each case runs in a fresh interpreter that first widens its CPU affinity to every CPU it may use
(the test process itself is pinned to one by tests/conftest.py), without ``QERNEL_PIN_CPU`` unless
the case sets it. References: the affinity before the import, and ``jax_enable_x64`` after
``import netket`` alone (NetKet switches x64 on at import; qernel must add nothing to it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, os, sys
try:  # every CPU this process may use (cpuset limits still apply)
    os.sched_setaffinity(0, range(os.cpu_count()))
except OSError:
    pass
before = sorted(os.sched_getaffinity(0))
mode = sys.argv[1]
x64 = None
if mode == "netket":
    import netket, jax
    x64 = bool(jax.config.jax_enable_x64)
elif mode == "qernel_all":
    import qernel
    for name in qernel.__all__:  # loads the curated names: NetKet and JAX included
        getattr(qernel, name)
    import jax
    x64 = bool(jax.config.jax_enable_x64)
elif mode == "import":
    import qernel
elif mode == "call":
    import qernel
    qernel.pin_to_one_cpu()
elif mode == "cli":
    from qernel.cli import main
    try:
        main(["--help"])  # the CLI's set-up, then argparse's help and exit (no JAX import)
    except SystemExit:
        pass
print(json.dumps({"before": before, "after": sorted(os.sched_getaffinity(0)), "x64": x64}))
"""


def start(mode: str, pin: str | None, tmp_path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "QERNEL_PIN_CPU"}
    if pin is not None:
        env["QERNEL_PIN_CPU"] = pin
    return subprocess.Popen([sys.executable, "-c", PROBE, mode], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result(process: subprocess.Popen) -> dict | subprocess.CompletedProcess:
    """The probe's JSON line, or the failed process (with its stderr)."""
    stdout, stderr = process.communicate(timeout=600)
    if process.returncode != 0:
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return json.loads(stdout.strip().splitlines()[-1])


def probe(mode: str, pin: str | None, tmp_path) -> dict | subprocess.CompletedProcess:
    return result(start(mode, pin, tmp_path))


@pytest.fixture(scope="module")
def cpus(tmp_path_factory):
    """The CPUs a fresh process may use; pinning is only observable with two or more."""
    allowed = probe("none", None, tmp_path_factory.mktemp("cpus"))["before"]
    if len(allowed) < 2:
        pytest.skip(f"only CPU {allowed} available: a pinning would not change the affinity")
    return allowed


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_import_qernel_leaves_affinity_and_jax_config_unchanged(cpus, tmp_path):
    processes = [start("netket", None, tmp_path), start("qernel_all", None, tmp_path)]  # side by side
    reference, loaded = (result(p) for p in processes)
    assert isinstance(reference, dict) and isinstance(loaded, dict), (reference, loaded)
    assert loaded["before"] == cpus
    assert loaded["after"] == loaded["before"]
    assert loaded["x64"] == reference["x64"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
@pytest.mark.parametrize(
    "mode, pin, pinned",
    [
        ("import", None, False),  # default: no side effect
        ("import", "1", True),  # QERNEL_PIN_CPU=1: pins on import
        ("call", None, True),  # the public function
        ("call", "0", False),  # QERNEL_PIN_CPU=0 vetoes every pinning
        ("cli", None, True),  # the qernel command pins
    ],
)
def test_pinning_is_opt_in(cpus, tmp_path, mode, pin, pinned):
    out = probe(mode, pin, tmp_path)
    assert isinstance(out, dict), out.stderr[-2000:]
    if pinned:
        assert len(out["after"]) == 1 and set(out["after"]) <= set(out["before"])
    else:
        assert out["after"] == out["before"] == cpus


def test_bad_pin_setting_is_a_clear_error(tmp_path):
    result = probe("import", "yes", tmp_path)
    assert isinstance(result, subprocess.CompletedProcess) and result.returncode != 0
    assert "QERNEL_PIN_CPU must be 0 or 1 (or unset), got 'yes'" in result.stderr
