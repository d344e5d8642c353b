"""Cost per sample vs system size N: forward, per-sample Jacobian and local energy of a QERNEL model.

For moiré supercells at filling 1 (fully spin-polarised, N = number of moiré cells), measured
side by side in one process on the same samples:

* ``forward``: batched ``log psi`` (``model.apply``);
* ``jacobian``: per-sample gradients of ``log psi`` w.r.t. all network parameters, real and
  imaginary parts, centered per group (the Jacobian MinSR/SR build; the same helper the driver uses);
* ``E_loc``: the local energy ``T + U + W`` (:class:`qernel.hamiltonian.operators.LocalEnergy`,
  folx forward Laplacian + moiré potential + Ewald Coulomb).

Time per sample: best of ``--repeats`` rounds (the minimum is robust against other processes on a
shared machine), each round long enough (>= 0.2 s) for the timer. Clock (``--clock auto``): the
CPU time of this process on CPU backends (the script pins it to one core, so CPU time is the work
done and does not count the time other processes hold the core), wall time on GPUs. Memory per
sample (MiB): XLA's compiled memory analysis (temp + argument + output bytes of the jitted
function, divided by the batch; computed by the compiler, so deterministic for a backend, on CPU
and GPU alike; the argument bytes include the parameters, shared by the batch). The batch is fixed over N: ``--batch`` for forward and Jacobian, ``--eloc-batch`` for
the local energy, whose working set grows as N^3 per sample (about 1.2 GB at N = 150 in float64,
see docs/benchmarks.md). The log-log slopes ``d log(cost) / d log N`` are fitted over all sizes
and over the three largest.

    python benchmarks/scaling.py [--sizes 16 36 64 100 150] [--batch 16] [--eloc-batch 2]
                                 [--repeats 3] [--dtype float64] [--width 32] [--layers 2]
"""

from __future__ import annotations

import argparse
import time

import qernel
import jax
import jax.numpy as jnp
import netket  # noqa: F401  (enables float64 as in production)
import numpy as np

from qernel.ansatz import QERNELConfig, count_parameters, make_qernel
from qernel.hamiltonian import MoireHamiltonian
from qernel.geometry.hilbert import join_sample
from qernel.hamiltonian.operators import LocalEnergy
from qernel.training.gradient import centered_jacobian
from qernel.training.groups import group_sample_weights

from _measure import clock, memory_bytes

#: moiré supercell (integer n for n x n, or a 2x2 integer matrix) with N cells = N electrons
SUPERCELLS = {16: 4, 36: 6, 64: 8, 100: 10, 144: 12, 150: [[10, 0], [0, 15]]}
#: the small model of benchmarks/kinetic.py
CONFIG = QERNELConfig(n_layers=2, width=32, num_heads=4, num_kv_heads=2, num_experts=4, top_k=2, n_determinants=2)
N_GROUPS = 4  # parameter values V in the batch, as in foundation training
KINDS = ("forward", "jacobian", "E_loc")


def samples(hamiltonian: MoireHamiltonian, batch: int, dtype) -> jax.Array:
    """Uniform positions in the supercell and V values on a grid of N_GROUPS values, (B, 2N + 1)."""
    n = hamiltonian.n_electrons
    fractional = jax.random.uniform(jax.random.PRNGKey(n), (batch, n, 2), dtype)
    V = jnp.linspace(2.0, 25.0, N_GROUPS, dtype=dtype)[jnp.arange(batch) % N_GROUPS]
    return join_sample(hamiltonian.supercell.to_cartesian(fractional), V[:, None])


def functions(config: QERNELConfig, hamiltonian: MoireHamiltonian, x):
    """Parameters and the three jitted functions ``f(params, x)`` to be measured."""
    model = make_qernel(config, hamiltonian.hilbert, parameter_center=[15.0], parameter_scale=[10.0])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x[:1])
    energy = LocalEnergy(hamiltonian)

    def logpsi(p, s):
        return model.apply(p, None, s)

    def jacobian(p, s):
        group_ids = jnp.arange(s.shape[0]) % N_GROUPS  # samples() cycles through the V values
        weights = group_sample_weights(group_ids, N_GROUPS)
        blocks, _ = centered_jacobian(logpsi, p, s, group_ids, N_GROUPS, weights)
        return jnp.concatenate(blocks, axis=0)

    fns = {
        "forward": logpsi,
        "jacobian": jacobian,
        "E_loc": lambda p, s: energy._expect_kernel(logpsi, p, s),
    }
    return params, fns


def best_time(compiled, params, x, repeats: int, timer, min_round: float = 0.2) -> float:
    """Best time (s) of one call over ``repeats`` rounds of >= ``min_round`` seconds each."""
    start = timer()
    jax.block_until_ready(compiled(params, x))  # first call after compilation: not timed
    calls = max(1, int(min_round / max(timer() - start, 1e-6)))
    best = float("inf")
    for _ in range(repeats):
        start = timer()
        for _ in range(calls):
            jax.block_until_ready(compiled(params, x))
        best = min(best, (timer() - start) / calls)
    return best


def slope(sizes, values) -> float:
    """Least-squares slope of log(values) vs log(sizes)."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 36, 64, 100, 150], choices=sorted(SUPERCELLS))
    parser.add_argument("--batch", type=int, default=16, help="samples per forward / Jacobian call (every N)")
    parser.add_argument("--eloc-batch", type=int, default=2, help="samples per local-energy call (every N)")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds; the best is kept")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--clock", default="auto", choices=["auto", "cpu", "wall"],
                        help="auto: process CPU time on CPU backends, wall time otherwise")
    parser.add_argument("--compare-fused-determinant", action="store_true",
                        help="only E_loc, with the fused orbital slogdet off and on, side by side")
    parser.add_argument("--width", type=int, default=CONFIG.width)
    parser.add_argument("--layers", type=int, default=CONFIG.n_layers)
    args = parser.parse_args()
    # one core: avoids jaxlib 0.10's CPU LAPACK deadlock on few cores (docs/howto/devices.md) and makes
    # CPU time this process's work; QERNEL_PIN_CPU=0 skips it (GPUs)
    qernel.pin_to_one_cpu()
    if min(args.batch, args.eloc_batch) < 1:
        parser.error("--batch and --eloc-batch must be >= 1")
    dtype = jnp.float32 if args.dtype == "float32" else jnp.float64
    sizes = sorted(args.sizes)
    config = CONFIG.replace(dtype=args.dtype, width=args.width, n_layers=args.layers)
    timer = clock(args.clock)

    print(f"jax {jax.__version__}, {jax.devices()[0].platform} ({jax.devices()[0].device_kind}), "
          f"dtype {args.dtype}, batch {args.batch} (E_loc {args.eloc_batch}), best of {args.repeats} rounds, "
          f"{'CPU' if timer is time.process_time else 'wall'} time")
    print(f"model: {config}")
    if args.compare_fused_determinant:
        compare_fused_determinant(config, sizes, args, dtype, timer)
        return
    print("| N | params | forward [ms/sample] | jacobian [ms/sample] | E_loc [ms/sample] | "
          "forward [MiB/sample] | jacobian [MiB/sample] | E_loc [MiB/sample] | compile [s] |")
    print("|---|---|---|---|---|---|---|---|---|")
    times = {k: [] for k in KINDS}
    memory = {k: [] for k in KINDS}
    for n in sizes:
        hamiltonian = MoireHamiltonian(supercell=SUPERCELLS[n], filling=1.0)
        x = samples(hamiltonian, max(args.batch, args.eloc_batch), dtype)
        params, fns = functions(config, hamiltonian, x)
        compile_seconds = 0.0
        for kind in KINDS:
            batch = args.eloc_batch if kind == "E_loc" else args.batch
            start = timer()
            compiled = jax.jit(fns[kind]).lower(params, x[:batch]).compile()
            compile_seconds += timer() - start
            memory[kind].append(memory_bytes(compiled) / batch)
            times[kind].append(best_time(compiled, params, x[:batch], args.repeats, timer) / batch)
            del compiled
        print(f"| {n} | {count_parameters(params)} | "
              + " | ".join(f"{1e3 * times[k][-1]:.3f}" for k in KINDS) + " | "
              + " | ".join(f"{memory[k][-1] / 2**20:.2f}" for k in KINDS)
              + f" | {compile_seconds:.0f} |", flush=True)

    if len(sizes) >= 2:
        tail = slice(-3, None)
        print("\nlog-log slopes d log(cost) / d log N (all sizes; three largest):")
        print("| quantity | forward | jacobian | E_loc |")
        print("|---|---|---|---|")
        for label, data in (("time", times), ("memory", memory)):
            cells = [f"{slope(sizes, data[k]):.2f}; {slope(sizes[tail], data[k][tail]):.2f}" for k in KINDS]
            print(f"| {label} | " + " | ".join(cells) + " |")


def compare_fused_determinant(config: QERNELConfig, sizes, args, dtype, timer) -> None:
    """E_loc per sample on the same samples, per N: "plain" = ``fused_determinant=False`` and the
    attention rule on all Jacobian rows at once; "fused" = the fused determinant and the attention
    rule's default row chunks (:data:`qernel.ansatz.fused.ATTENTION_CHUNK_ENTRIES`)."""
    from qernel.ansatz import fused as fused_rules

    default_chunk = fused_rules.ATTENTION_CHUNK_ENTRIES
    print("| N | E_loc plain [ms/sample] | E_loc fused [ms/sample] | time ratio | "
          "plain [MiB/sample] | fused [MiB/sample] | memory ratio | compile plain / fused [s] |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        hamiltonian = MoireHamiltonian(supercell=SUPERCELLS[n], filling=1.0)
        x = samples(hamiltonian, args.eloc_batch, dtype)
        t, m, c = [], [], []
        for fused in (False, True):
            fused_rules.ATTENTION_CHUNK_ENTRIES = default_chunk if fused else 2**62
            params, fns = functions(config.replace(fused_determinant=fused), hamiltonian, x)
            start = timer()
            compiled = jax.jit(fns["E_loc"]).lower(params, x).compile()
            c.append(timer() - start)
            m.append(memory_bytes(compiled) / args.eloc_batch)
            t.append(best_time(compiled, params, x, args.repeats, timer) / args.eloc_batch)
            del compiled
        print(f"| {n} | {1e3 * t[0]:.1f} | {1e3 * t[1]:.1f} | {t[0] / t[1]:.2f} | {m[0] / 2**20:.1f} | "
              f"{m[1] / 2**20:.1f} | {m[0] / m[1]:.2f} | {c[0]:.0f} / {c[1]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
