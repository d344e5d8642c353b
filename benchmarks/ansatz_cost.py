"""Cost of the QERNEL ansatz variants: parameters, forward FLOPs (XLA cost analysis), time per sample.

Variants (4 blocks, width 64, 4 query heads, 4 determinants, PeriodicWave-sized trunk):

* ``dense MHA``: 4 kv heads, one dense FFN of hidden 4 x width (the reference);
* ``GQA``: 2 kv heads;
* ``MoE``: 8 experts, top-2, routed on the Hamiltonian parameter (per walker);
* ``MoE+GQA``: both.

Each non-reference variant is shown twice: at *matched parameter count* (expert / FFN hidden
width chosen so the total number of parameters equals the reference) and at *matched compute*
(hidden width chosen so the forward FLOPs per sample equal the reference at the smallest N).
Systems: moiré supercells at filling 1, fully spin-polarised, N = 16 (4 x 4), 64 (8 x 8),
150 (10 x 15). Run: ``python benchmarks/ansatz_cost.py [--sizes 16 64 150] [--dtype float32] [--clock auto]``.
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
from qernel.geometry.hilbert import ElectronHilbert, join_sample
from qernel.geometry.lattice import triangular_lattice

from _measure import clock

SUPERCELLS = {16: [[4, 0], [0, 4]], 64: [[8, 0], [0, 8]], 150: [[10, 0], [0, 15]]}
BASE = QERNELConfig(n_layers=4, width=64, num_heads=4, num_kv_heads=4, num_experts=1, top_k=1, n_determinants=4)
VARIANTS = {
    "dense MHA": dict(num_kv_heads=4, num_experts=1, top_k=1),
    "GQA": dict(num_kv_heads=2, num_experts=1, top_k=1),
    "MoE": dict(num_kv_heads=4, num_experts=8, top_k=2),
    "MoE+GQA": dict(num_kv_heads=2, num_experts=8, top_k=2),
}


def system(n: int) -> ElectronHilbert:
    cell = triangular_lattice(1.0).supercell(SUPERCELLS[n])
    return ElectronHilbert(n, 0, cell, ("V",))


def samples(hilbert: ElectronHilbert, batch: int, dtype) -> jax.Array:
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    s = jax.random.uniform(key1, (batch, hilbert.n_electrons, 2), dtype)
    V = jax.random.uniform(key2, (batch, 1), dtype, 0.0, 30.0)  # spread walkers over routing choices
    return join_sample(hilbert.supercell.to_cartesian(s), V)


def build(config: QERNELConfig, hilbert: ElectronHilbert, x):
    model = make_qernel(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    return model, params


def n_params(config: QERNELConfig, hilbert: ElectronHilbert, x) -> int:
    model = make_qernel(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0])
    return count_parameters(jax.eval_shape(model.init, jax.random.PRNGKey(0), x))


def compile_forward(model, params, x):
    return jax.jit(model.apply).lower(params, None, x).compile()


def flops_of(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis["flops"])


def flops(model, params, x) -> float:
    return flops_of(compile_forward(model, params, x))


def solve_hidden(measure, target: float, lo: int = 16, hi: int = 256) -> int:
    """Hidden width h with measure(h) ~ target, assuming measure is affine in h."""
    a, b = measure(lo), measure(hi)
    return max(1, int(round(lo + (target - a) * (hi - lo) / (b - a))))


def timing(compiled, params, x, repeats: int, timer=time.perf_counter) -> float:
    """Best of 5 mean times per sample (s) of the compiled forward pass (the minimum is
    robust against other processes on a shared machine)."""
    compiled(params, None, x).block_until_ready()
    best = float("inf")
    for _ in range(5):
        start = timer()
        for _ in range(repeats):
            compiled(params, None, x).block_until_ready()
        best = min(best, (timer() - start) / repeats)
    return best / x.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 150], choices=sorted(SUPERCELLS))
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clock", default="auto", choices=["auto", "cpu", "wall"],
                        help="auto: process CPU time on CPU backends, wall time otherwise")
    args = parser.parse_args()
    # one core: avoids jaxlib 0.10's CPU LAPACK deadlock on few cores (docs/howto/devices.md) and makes
    # CPU time this process's work; QERNEL_PIN_CPU=0 skips it (GPUs)
    qernel.pin_to_one_cpu()
    timer = clock(args.clock)
    dtype = jnp.float32 if args.dtype == "float32" else jnp.float64
    base = BASE.replace(dtype=args.dtype)

    # hidden widths matched on the smallest system (parameter count does not depend on N; the
    # FLOPs that differ between variants, projections and FFNs, are all linear in N)
    n0 = min(args.sizes)
    hilbert0 = system(n0)
    x0 = samples(hilbert0, 2, dtype)
    reference = base.replace(**VARIANTS["dense MHA"])
    ref_params = n_params(reference, hilbert0, x0)
    ref_flops = flops(*build(reference, hilbert0, x0), x0)
    rows = [("dense MHA", "reference", reference)]
    for name in ("GQA", "MoE", "MoE+GQA"):
        variant = base.replace(**VARIANTS[name])
        h_par = solve_hidden(lambda h: n_params(variant.replace(ffn_hidden=h), hilbert0, x0), ref_params)
        h_cmp = solve_hidden(lambda h: flops(*build(variant.replace(ffn_hidden=h), hilbert0, x0), x0), ref_flops)
        rows.append((name, "matched params", variant.replace(ffn_hidden=h_par)))
        rows.append((name, "matched compute", variant.replace(ffn_hidden=h_cmp)))

    print(f"dtype {args.dtype}, {jax.devices()[0].platform}; ms/sample: best of 5 x {args.repeats} calls "
          f"({'CPU' if timer is time.process_time else 'wall'} time); "
          "MoE rows: gather dispatch (default) and dense dispatch (all experts, masked)")
    header = (f"{'N':>4} {'variant':<10} {'matching':<16} {'kv':>2} {'E/k':>4} {'hidden':>6} {'params':>9} "
              f"{'MFLOP/sample':>12} {'ms/sample':>10} {'ms (dense)':>10}")
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        hilbert = system(n)
        batch = {16: 64, 64: 16, 150: 4}[n]
        x = samples(hilbert, batch, dtype)
        for name, matching, config in rows:
            model, params = build(config, hilbert, x)
            compiled = compile_forward(model, params, x)
            f = flops_of(compiled) / batch
            t = timing(compiled, params, x, args.repeats, timer)
            t_dense = "-"
            if config.num_experts > 1:
                dense = make_qernel(config.replace(moe_dispatch="dense"), hilbert, parameter_center=[15.0], parameter_scale=[10.0])
                t_dense = f"{1e3 * timing(compile_forward(dense, params, x), params, x, args.repeats, timer):.3f}"
            print(
                f"{n:>4} {name:<10} {matching:<16} {config.num_kv_heads:>2} {config.num_experts}/{config.top_k:<2}"
                f" {config.expert_hidden:>6} {count_parameters(params):>9} {f / 1e6:>12.2f} {1e3 * t:>10.3f} {t_dense:>10}",
                flush=True,
            )


if __name__ == "__main__":
    main()
