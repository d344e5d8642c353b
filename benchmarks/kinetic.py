"""Kinetic energy: qernel's forward Laplacian (folx) vs ``nk.operator.KineticEnergy``.

Same QERNEL model, same samples, one process, side by side. NetKet's operator is given
infinite mass on the carried-parameter columns (otherwise it differentiates them too, which is
wrong for parameter-carrying samples). Prints the largest difference between the two local
kinetic energies and the time ratio (NetKet / qernel) for N = 8, 16, 36 electrons.

    python benchmarks/kinetic.py [--samples 16] [--repeats 3] [--sizes 8,16,36]
"""

from __future__ import annotations

import argparse
import time

import qernel  # noqa: F401  (first: pins the process to one CPU before NetKet starts JAX, see qernel/_xla.py)
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np

from qernel.ansatz import QERNELConfig, make_qernel
from qernel.hamiltonian import MoireHamiltonian
from qernel.hamiltonian.operators import KineticEnergy

SUPERCELLS = {8: [[2, 0], [0, 4]], 16: 4, 36: 6, 64: 8}


def _timed(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best


def run(sizes, n_samples: int, repeats: int) -> None:
    config = QERNELConfig(n_layers=2, width=32, num_heads=4, num_kv_heads=2, num_experts=4, top_k=2, n_determinants=2)
    print(f"model: {config}")
    print(f"{'N':>4s} {'samples':>8s} {'max |dE|':>10s} {'qernel [s]':>11s} {'netket [s]':>11s} {'ratio':>7s}")
    for n in sizes:
        ham = MoireHamiltonian(supercell=SUPERCELLS[n], filling=1.0)
        hilbert = ham.hilbert
        model = make_qernel(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0])
        key = jax.random.PRNGKey(n)
        fractional = jax.random.uniform(key, (n_samples, n, 2))
        positions = hilbert.supercell.to_cartesian(fractional)
        x = jnp.concatenate([positions.reshape(n_samples, -1), jnp.full((n_samples, 1), 15.0)], axis=-1)
        params = model.init(jax.random.PRNGKey(0), x[:1])

        def logpsi(variables, samples):
            return model.apply(variables, None, samples)

        ours = KineticEnergy(hilbert)
        mass = np.concatenate([np.ones(2 * n), np.full(hilbert.n_parameters, np.inf)])
        theirs = nk.operator.KineticEnergy(hilbert, mass=mass)
        ours_fn = jax.jit(lambda p, s: ours._expect_kernel(logpsi, p, s))
        theirs_fn = jax.jit(lambda p, s: theirs._expect_kernel(logpsi, p, s))
        e_ours, e_theirs = ours_fn(params, x), theirs_fn(params, x)
        diff = float(jnp.max(jnp.abs(e_ours - e_theirs)))
        scale = float(jnp.max(jnp.abs(e_theirs)))
        t_ours = _timed(ours_fn, params, x, repeats=repeats)
        t_theirs = _timed(theirs_fn, params, x, repeats=repeats)
        print(f"{n:4d} {n_samples:8d} {diff:10.2e} {t_ours:11.4f} {t_theirs:11.4f} {t_theirs / t_ours:7.2f}"
              f"   (relative difference {diff / scale:.1e})", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="8,16,36")
    args = parser.parse_args()
    run([int(s) for s in args.sizes.split(",")], args.samples, args.repeats)
