"""Local energy: qernel's ``LocalEnergy`` (forward Laplacian) vs NetKet's ``KineticEnergy`` + the same potential.

Same QERNEL model, same samples, one process, side by side, both jitted over the whole batch
(no chunking), or both chunked exactly as ``MCState(chunk_size=...)`` chunks ``expect``
(``netket.jax.apply_chunked`` over the samples) with ``--chunk-size``. The local energy is ``E_loc = -1/2 [lap log psi + (grad log psi)^2] + U + W``
(moiré potential + Ewald Coulomb) of a moiré Hamiltonian at filling 1.

* qernel: :class:`qernel.hamiltonian.operators.LocalEnergy` (one folx forward-Laplacian pass
  per sample, with the ansatz's fused forward-Laplacian rules, plus the potential).
* NetKet: ``nk.operator.KineticEnergy`` (``2N + P`` Hessian-vector products per sample) with
  infinite mass on the carried-parameter columns (otherwise it also differentiates the
  parameter V, which is wrong for parameter-carrying samples), plus qernel's
  :class:`~qernel.hamiltonian.operators.PotentialEnergy` (the same potential code).

Prints, per N: the largest relative difference ``max |E_q - E_nk| / max |E_nk|``, the best
time of each (``--repeats`` timed calls after one compiling call), the ratio NetKet/qernel and
the compiled programs' temporary memory (XLA's memory analysis; NetKet needs ~8x more: at
N = 64 and 16 samples about 13 GB, so the default is 8 samples).
Timings use wall-clock by default (runs unchanged on GPU); on a shared CPU machine
``--timer process`` measures this process's CPU time instead (meaningless on GPU).

    python benchmarks/kinetic.py [--samples 8] [--repeats 3] [--sizes 16,36,64] [--timer wall]
                                 [--chunk-size C]
"""

from __future__ import annotations

import argparse

import qernel
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np

from qernel.ansatz import QERNELConfig, make_qernel
from qernel.hamiltonian import MoireHamiltonian
from qernel.hamiltonian.operators import LocalEnergy, PotentialEnergy

from _measure import clock

#: moiré supercells (integer matrices of the triangular moiré lattice) with N = n_cells electrons
SUPERCELLS = {8: [[2, 0], [0, 4]], 16: 4, 36: 6, 64: 8}
#: the benchmark model of issue 7 (PeriodicWave-like trunk, smaller width)
CONFIG = QERNELConfig(n_layers=2, width=32, num_heads=4, num_kv_heads=2, num_experts=4, top_k=2, n_determinants=2)
_TIMERS = {"wall": "wall", "process": "cpu"}  # --timer choice -> _measure.clock name


def _timed(fn, *args, repeats: int, timer) -> float:
    """Best time of ``repeats`` calls (the first, compiling call is not timed)."""
    jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(repeats):
        start = timer()
        jax.block_until_ready(fn(*args))
        best = min(best, timer() - start)
    return best


def samples(hilbert, n_samples: int, key, value: float = 15.0):
    """Uniform random positions in the supercell and the carried V, shape (n_samples, 2N + 1)."""
    n = hilbert.n_electrons
    positions = hilbert.supercell.to_cartesian(jax.random.uniform(key, (n_samples, n, 2)))
    return jnp.concatenate([positions.reshape(n_samples, -1), jnp.full((n_samples, 1), value)], axis=-1)


def local_energy_functions(n: int, n_samples: int, config: QERNELConfig = CONFIG, chunk_size: int | None = None):
    """``(ours, theirs, params, x)``: two jitted ``f(params, x) -> E_loc (n_samples,)``."""
    if n not in SUPERCELLS:
        raise ValueError(f"N must be one of {sorted(SUPERCELLS)}, got {n}")
    ham = MoireHamiltonian(supercell=SUPERCELLS[n], filling=1.0)
    hilbert = ham.hilbert
    model = make_qernel(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0])
    x = samples(hilbert, n_samples, jax.random.PRNGKey(n))
    params = model.init(jax.random.PRNGKey(0), x[:1])

    def logpsi(variables, s):
        return model.apply(variables, None, s)

    mass = np.concatenate([np.ones(2 * n), np.full(hilbert.n_parameters, np.inf)])
    netket_operator = nk.operator.KineticEnergy(hilbert, mass=mass) + PotentialEnergy(ham)
    def chunked(operator):  # as NetKet's expect for continuous operators with chunk_size
        kernel = nk.jax.apply_chunked(
            lambda p, s: operator._expect_kernel(logpsi, p, s), in_axes=(None, 0), chunk_size=chunk_size
        )
        return jax.jit(kernel)

    return chunked(LocalEnergy(ham)), chunked(netket_operator), params, x


def _temp_memory_mb(fn, *args) -> float:
    """Temporary memory of the compiled program in MB (NaN if the backend does not report it)."""
    try:
        return fn.lower(*args).compile().memory_analysis().temp_size_in_bytes / 1e6
    except Exception:  # noqa: BLE001  (memory analysis is optional per backend)
        return float("nan")


def run(sizes, n_samples: int, repeats: int, timer: str = "wall", chunk_size: int | None = None) -> list[dict]:
    timer_fn = clock(_TIMERS[timer])
    print(f"model: {CONFIG}")
    print(
        f"backend: {jax.default_backend()}, timer: {timer}, samples: {n_samples}, chunk size: {chunk_size}, "
        f"best of {repeats}"
    )
    print(
        f"{'N':>4s} {'max rel diff':>13s} {'qernel [s]':>11s} {'netket [s]':>11s} {'ratio':>7s}"
        f" {'qernel [MB]':>12s} {'netket [MB]':>12s}"
    )
    rows = []
    for n in sizes:
        ours, theirs, params, x = local_energy_functions(n, n_samples, chunk_size=chunk_size)
        e_ours, e_theirs = ours(params, x), theirs(params, x)
        rel = float(jnp.max(jnp.abs(e_ours - e_theirs)) / jnp.max(jnp.abs(e_theirs)))
        t_ours = _timed(ours, params, x, repeats=repeats, timer=timer_fn)
        t_theirs = _timed(theirs, params, x, repeats=repeats, timer=timer_fn)
        m_ours, m_theirs = _temp_memory_mb(ours, params, x), _temp_memory_mb(theirs, params, x)
        rows.append(dict(n=n, rel=rel, qernel=t_ours, netket=t_theirs, ratio=t_theirs / t_ours,
                         qernel_mb=m_ours, netket_mb=m_theirs))
        print(
            f"{n:4d} {rel:13.1e} {t_ours:11.4f} {t_theirs:11.4f} {t_theirs / t_ours:7.2f}"
            f" {m_ours:12.0f} {m_theirs:12.0f}",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="16,36,64")
    parser.add_argument("--timer", choices=sorted(_TIMERS), default="wall")
    parser.add_argument("--chunk-size", type=int, default=None, help="samples per chunk (default: no chunking)")
    args = parser.parse_args()
    # one core: avoids jaxlib 0.10's CPU LAPACK deadlock on few cores (docs/howto/devices.md) and makes
    # CPU time this process's work; QERNEL_PIN_CPU=0 skips it (GPUs)
    qernel.pin_to_one_cpu()
    run([int(s) for s in args.sizes.split(",")], args.samples, args.repeats, args.timer, args.chunk_size)
