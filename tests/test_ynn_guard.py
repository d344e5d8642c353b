"""``import qernel`` turns off jaxlib 0.10.2's YNNPACK fusions, which segfault on rank-7 float32
arrays (qernel/_ynn.py). The float32 program below is the shape of the attention softmax's forward
Laplacian in the model of examples/configs/moire_nu23_3x3.toml; without the guard it dies with
SIGSEGV on jaxlib 0.10.2 (measured on x86-64; other CPUs may hang instead, so the unguarded
program is not run here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qernel._ynn import AFFECTED, GUARD_VARIABLE, YNN_FLAG, guarded_xla_flags, jaxlib_version

PROBE = r"""
import sys
import qernel  # before JAX starts its backend
import os
if sys.argv[1] == "flags":  # what import qernel left in the environment, nothing run
    print(repr(os.environ.get("XLA_FLAGS")))
    sys.exit(0)
import jax, jax.numpy as jnp
shape = (256, 12, 1, 2, 2, 6, 6)  # (batch, 2N Jacobian rows, 1, kv heads, heads per kv head, N, N)
a = jnp.ones(shape, jnp.float32)
f = jax.jit(lambda x, y: jnp.sum(x * y, axis=1))
hlo = f.lower(a, a).compile().as_text()
print(hlo.count('"__ynn_fusion"'), float(f(a, a).sum()), os.environ.get("XLA_FLAGS", ""))
"""


def run_probe(env_changes: dict, mode: str = "run") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", GUARD_VARIABLE)}
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=600)


def test_flags_added_only_for_affected_versions_and_never_override():
    ynn_off = f"--{YNN_FLAG}="
    assert guarded_xla_flags("", (0, 10, 2)) == ynn_off
    assert guarded_xla_flags("--xla_cpu_multi_thread_eigen=false", (0, 11, 0)) == (
        f"--xla_cpu_multi_thread_eigen=false {ynn_off}"
    )
    assert guarded_xla_flags("", (0, 10, 1)) is None
    assert guarded_xla_flags("", (0, 11, 1)) is None
    assert guarded_xla_flags("", None) is None
    assert guarded_xla_flags(f"--{YNN_FLAG}=dot", (0, 10, 2)) is None  # the user's own setting wins


@pytest.mark.skipif(not (jaxlib_version() and AFFECTED[0] <= jaxlib_version() <= AFFECTED[1]),
                    reason="installed jaxlib is not one with the YNNPACK crash")
def test_rank7_float32_reduction_runs_after_import_qernel():
    out = run_probe({})
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    n_ynn, total, flags = out.stdout.split(maxsplit=2)
    assert int(n_ynn) == 0 and flags.strip() == f"--{YNN_FLAG}="
    assert float(total) == 256 * 1 * 2 * 2 * 6 * 6 * 12  # sum over 12 rows of 1 * 1


@pytest.mark.skipif(not (jaxlib_version() and AFFECTED[0] <= jaxlib_version() <= AFFECTED[1]),
                    reason="installed jaxlib is not one with the YNNPACK crash")
def test_guard_keeps_other_flags_and_can_be_switched_off():
    kept = run_probe({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}, "flags")
    assert kept.stdout.strip() == repr(f"--xla_cpu_multi_thread_eigen=false --{YNN_FLAG}=")
    off = run_probe({GUARD_VARIABLE: "0"}, "flags")
    assert off.returncode == 0 and off.stdout.strip() == "None"


def test_bad_guard_setting_is_a_clear_error():
    bad = run_probe({GUARD_VARIABLE: "yes"}, "flags")
    assert bad.returncode != 0
    assert f"{GUARD_VARIABLE} must be 0 or 1 (or unset), got 'yes'" in bad.stderr


@pytest.mark.skipif(not (jaxlib_version() and AFFECTED[0] <= jaxlib_version() <= AFFECTED[1]),
                    reason="installed jaxlib is not one with the YNNPACK crash")
def test_import_after_jax_started_warns_that_the_flag_comes_too_late():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", GUARD_VARIABLE)}
    code = "import jax; jax.devices(); import qernel"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "XLA has read XLA_FLAGS already" in out.stderr
