"""Training and evaluation sharded over 2 (emulated CPU) devices match one device.

NetKet 3.23 shards the Markov chains over all visible JAX devices (``NETKET_SHARDING``, on by
default). ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` makes XLA expose two CPU
devices; it must be set before JAX starts, so both runs happen in fresh subprocesses
(``tests/_sharding_worker.py``, same configuration and seeds). Reference for every number: the
same computation on one device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).parent / "_sharding_worker.py"


def _run_worker(n_devices: int, output_dir: Path) -> dict:
    env = dict(os.environ)
    env.pop("NETKET_EXPERIMENTAL_SHARDING_CPU", None)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    if n_devices > 1:
        flags.append(f"--xla_force_host_platform_device_count={n_devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    output_dir.mkdir()
    completed = subprocess.run(
        [sys.executable, str(WORKER), str(output_dir)], env=env, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, f"worker on {n_devices} device(s) failed:\n{completed.stderr[-4000:]}"
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def _assert_close(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)))


@pytest.mark.slow  # ~5 min under load; the default suite keeps the two-process test (tests/test_distributed.py)
def test_two_devices_match_one_device(tmp_path):
    one = _run_worker(1, tmp_path / "one")
    two = _run_worker(2, tmp_path / "two")
    assert (one["n_devices"], two["n_devices"]) == (1, 2)

    # fixed samples, split over the 2 devices: local energies (chunked, 4 per chunk and device),
    # per-group energies, the per-group centered MinSR direction and the plain gradient (both
    # with per-sample work chunked per device) equal the 1-device values
    assert two["fixed"]["samples_devices"] == 2
    for key in ("local_energies", "local_energies_imag", "group_energies", "direction", "gradient"):
        _assert_close(two["fixed"][key], one["fixed"][key], rtol=1e-10)

    # sampled training: the chains and samples really are split over both devices ...
    train = two["train"]
    n_chains = train["samples_shape"][0]
    assert train["samples_devices"] == 2 and train["sigma_devices"] == 2
    assert train["samples_shard_shape"] == [n_chains // 2] + train["samples_shape"][1:]
    # ... and the trajectory is the 1-device one: NetKet draws every chain's random numbers
    # from one key (partitionable threefry), so sharding does not change the Markov chains
    assert np.all(np.isfinite(train["energies"]))
    _assert_close(train["energies"], one["train"]["energies"], rtol=1e-10)
    _assert_close(train["group_energies"], one["train"]["group_energies"], rtol=1e-10)
    _assert_close(train["parameters"], one["train"]["parameters"], rtol=1e-10)

    # a checkpoint restored on 2 devices keeps the chains sharded, retakes the same step and
    # reuses the compiled programs
    for result in (one, two):
        resume = result["resume"]
        assert resume["again"] == resume["first"]
        assert resume["compiled"] == []
    assert two["resume"]["sigma_devices"] == 2
