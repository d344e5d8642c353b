"""Subprocess worker of ``tests/test_sharding.py`` (not a test module).

Builds a small moiré FoundationVMC run with :func:`qernel.run.build_run`, then

1. evaluates the local energies, per-group energies, the MinSR update direction and the plain
   energy gradient on FIXED samples (drawn with NumPy from a fixed seed, placed with the chains'
   sharding);
2. thermalises and runs sampled training steps, recording energies and how the samples are
   sharded;
3. saves a checkpoint, takes one more step, restores the checkpoint and retakes that step,
   counting XLA compilations after the restore.

It prints one JSON line (prefixed ``RESULT``) so the test can compare a 1-device and a 2-device
process. The device count is whatever JAX sees: the test sets
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` for the 2-device run.

Usage: ``python tests/_sharding_worker.py OUTPUT_DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import qernel  # noqa: F401  (first: CPU pinning before JAX starts its threads)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from qernel.run import build_run  # noqa: E402
from qernel.sampler import chain_parameters  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _compile_counter import count_compilations  # noqa: E402
from _tiny_demo import tiny_demo_config  # noqa: E402


#: Small version of ``qernel.cli.DEMO_CONFIG``: N = 4 spin-polarised electrons on a 2 x 2 moiré
#: supercell, two values of V, 8 chains, chunked evaluation (4 samples per chunk and device).
CONFIG = tiny_demo_config(
    parameters={"type": "grid", "values": {"V": [5.0, 15.0]}},
    sampler={"n_chains": 8, "n_samples": 32, "n_discard_per_chain": 1, "n_thermalise": 2, "chunk_size": 4},
    optimizer={"n_steps": 4, "learning_rate": 0.05, "preconditioner": "minsr", "diag_shift": 1e-2,
               "max_update_norm": 0.5},
)
N_STEPS = 2


def fixed_samples(run) -> np.ndarray:
    """(n_chains, chain_length, 2N + P) samples: uniform positions in the supercell (NumPy seed 0),
    each chain's own parameter row in the last column(s)."""
    vstate, ham = run.vstate, run.hamiltonian
    n_chains = vstate.sampler.n_chains
    length = vstate.n_samples // n_chains
    rng = np.random.default_rng(0)
    fractional = rng.uniform(size=(n_chains, length, ham.n_electrons, 2))
    positions = (fractional @ ham.hilbert.supercell.vectors).reshape(n_chains, length, -1)
    carried = np.broadcast_to(np.asarray(chain_parameters(vstate))[:, None, :], (n_chains, length, 1))
    return np.concatenate([positions, carried], axis=-1)


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in jax.tree_util.tree_leaves(tree)])


def main(output_dir: str) -> dict:
    run = build_run(CONFIG)
    driver, vstate = run.driver, run.vstate
    op = driver.operator
    result: dict = {"n_devices": jax.device_count()}

    # 1. fixed samples, sharded like the chains (contiguous blocks of chains per device)
    samples = jax.device_put(fixed_samples(run), vstate.sampler_state.σ.sharding)
    vstate._samples = samples  # NetKet has no public setter for the cached samples
    local = vstate.local_estimators(op).data
    direction = driver.update_direction(samples, local)
    driver.preconditioner = None  # the plain gradient (chunked back-propagation) as well
    gradient = driver.update_direction(samples, local)
    driver.preconditioner = CONFIG["optimizer"]["preconditioner"]
    stats = driver.group_statistics(local, np.zeros(run.parameter_space.n_groups))
    result["fixed"] = {
        "local_energies": np.real(np.asarray(local)).ravel().tolist(),
        "local_energies_imag": np.imag(np.asarray(local)).ravel().tolist(),
        "group_energies": [s.energy for s in stats],
        "direction": _flat(direction).tolist(),
        "gradient": _flat(gradient).tolist(),
        "samples_devices": len(samples.sharding.device_set),
    }
    vstate.reset()

    # 2. sampled training
    driver.thermalise(CONFIG["sampler"]["n_thermalise"])
    records = [driver.step() for _ in range(N_STEPS)]
    sampled = vstate.samples
    result["train"] = {
        "energies": [r["energy"] for r in records],
        "group_energies": [[g["energy"] for g in r["groups"]] for r in records],
        "samples_shape": list(sampled.shape),
        "samples_devices": len(sampled.sharding.device_set),
        "samples_shard_shape": list(sampled.sharding.shard_shape(sampled.shape)),
        "sigma_devices": len(vstate.sampler_state.σ.sharding.device_set),
        "parameters": _flat(vstate.parameters).tolist(),
    }

    # 3. checkpoint round trip: the retaken step equals the original and compiles nothing
    checkpoint = Path(output_dir) / "checkpoint.npz"
    driver.save(checkpoint)
    first = driver.step()["energy"]
    with count_compilations() as compiled:
        driver.restore(checkpoint)
        again = driver.step()["energy"]
    result["resume"] = {
        "first": first,
        "again": again,
        "compiled": compiled,
        "sigma_devices": len(vstate.sampler_state.σ.sharding.device_set),
    }
    return result


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1])), flush=True)
