"""Timing of one jitted Ewald evaluation (qernel.hamiltonian.ewald.EwaldSum) on this machine.

Usage: python benchmarks/ewald.py [--factors 2 3 4 5 6] [--batch 1] [--float32]

Prints, for N = 36 (6 x 6 triangular supercell) and N = 150 (10 x 15), the number of real-space
shifts S and reciprocal vectors K and the median wall time per call (after compilation) for each
``alpha = factor * sqrt(pi / A)``.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import qernel  # noqa: E402
from qernel.hamiltonian.ewald import EwaldSum  # noqa: E402
from qernel.geometry.lattice import Supercell, triangular_lattice  # noqa: E402


def _time(fn, *args, repeats: int = 30) -> float:
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factors", type=float, nargs="+", default=[None])
    parser.add_argument("--batch", type=int, default=1, help="walkers per call (vmap); 1 = single configuration")
    parser.add_argument("--float32", action="store_true")
    parser.add_argument("--tolerance", type=float, default=1e-12)
    args = parser.parse_args()
    # one core: avoids jaxlib 0.10's CPU LAPACK deadlock on few cores (docs/howto/devices.md) and makes
    # CPU time this process's work; QERNEL_PIN_CPU=0 skips it (GPUs)
    qernel.pin_to_one_cpu()
    dtype = np.float32 if args.float32 else np.float64
    rng = np.random.default_rng(0)
    for matrix, n in (([[6, 0], [0, 6]], 36), ([[10, 0], [0, 15]], 150)):
        cell = Supercell(triangular_lattice(1.0), matrix)
        for factor in args.factors:
            alpha = None if factor is None else factor * math.sqrt(math.pi / cell.area)
            ewald = EwaldSum(cell.vectors, alpha=alpha, tolerance=args.tolerance)
            if args.batch == 1:
                positions = (rng.uniform(size=(n, 2)) @ cell.vectors).astype(dtype)
                fn = jax.jit(ewald)
            else:
                positions = (rng.uniform(size=(args.batch, n, 2)) @ cell.vectors).astype(dtype)
                fn = jax.jit(jax.vmap(ewald))
            seconds = _time(fn, positions)
            label = "default" if factor is None else f"{factor:g}"
            print(
                f"N={n:4d} alpha factor={label:>7s} S={ewald.n_shifts:3d} K={ewald.n_kpoints:4d} "
                f"batch={args.batch} {np.dtype(dtype).name}: {seconds * 1e3:8.3f} ms"
            )


if __name__ == "__main__":
    main()
