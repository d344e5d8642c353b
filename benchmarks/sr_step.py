"""Time and memory of one natural-gradient step, MinSR vs SR, vs samples S and parameters P.

One call of :func:`qernel.training.gradient.natural_gradient` (per-sample Jacobian, per-group
centering, linear solve), jitted, for ``mode="minsr"`` and ``mode="sr"`` side by side in one
process on the same samples and energies; the Jacobian alone is timed too, so that the linear
algebra can be told apart. The wavefunction is complex, so the real least-squares problem has
2S rows (real and imaginary parts) and P columns:

* SR:    S_mat = J^T J   (P x P):   O(2S P^2) to build + O(P^3 / 3) Cholesky;  memory O(P^2)
* MinSR: T = J J^T      (2S x 2S): O(4S^2 P) to build + O(8S^3 / 3) Cholesky; memory O(S^2)

both after the Jacobian, O(S) backward passes (memory O(S P)). MinSR is the cheaper one when
2S < P (the usual regime of neural wavefunctions); SR when 2S > P.

Sweeps: S in ``--samples`` at the model of width ``--width`` (P fixed), and P (token widths
``--widths``) at ``--fixed-samples`` samples. Model: one dense QERNEL block (no MoE), 2 heads,
one determinant, on a 4 x 4 moiré supercell (N = 16) at filling 1. Times: best of
``--repeats`` calls after compilation; clock (``--clock auto``): the CPU time of this process on
CPU backends (the script pins it to one core: CPU time is the work done, not the time other processes
hold the core), wall time on GPUs. Memory: XLA's compiled memory analysis (temp + argument +
output bytes). Slopes: least-squares ``d log t / d log S`` and ``d log t / d log P``.

    python benchmarks/sr_step.py [--samples 256 512 1024 2048] [--width 12]
                                 [--widths 8 12 16 24] [--fixed-samples 512] [--repeats 3]
    python benchmarks/sr_step.py --model predecessor --samples 256 1024 --widths   # issue 18's model
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
from qernel.training.gradient import centered_jacobian, centered_local_energies, natural_gradient

from _measure import clock, memory_bytes

N_GROUPS = 4  # parameter values V in the batch, as in foundation training
DIAG_SHIFT = 1e-3
CONFIG = QERNELConfig(
    n_layers=1, width=12, num_heads=2, num_kv_heads=1, num_experts=1, top_k=1, n_determinants=1, film_hidden=16
)
#: issue 18's model sized to the authors' predecessor code (4 blocks, width 64, 4 heads, dense
#: feed-forward 64, 4 complex determinants, no FiLM: 104 514 parameters) on that code's system
PREDECESSOR = QERNELConfig(
    n_layers=4, width=64, num_heads=4, num_kv_heads=4, ffn_hidden=64, num_experts=1, top_k=1, n_determinants=4,
    use_film=False,
)
MODES = ("minsr", "sr")
#: SR's P x P matrix is skipped above this many bytes (P = 10^5 would need 80 GB in float64)
SR_MAX_BYTES = 4 * 2**30


def problem(width: int, n_samples: int, dtype: str, model_name: str = "small"):
    """Parameters, samples, centered energies, weights, group ids and the jitted functions.

    ``model_name``: "small" (:data:`CONFIG` at token width ``width``, N = 16) or "predecessor"
    (:data:`PREDECESSOR`, ``width`` ignored, the 3 x 3 supercell at filling 2/3, N = 6, eps = 5).
    """
    if model_name == "predecessor":
        hamiltonian = MoireHamiltonian(supercell=3, filling=2.0 / 3.0, eps=5.0)
        config = PREDECESSOR.replace(dtype=dtype)
    else:
        hamiltonian = MoireHamiltonian(supercell=4, filling=1.0)
        config = CONFIG.replace(width=width, dtype=dtype)
    n = hamiltonian.n_electrons
    key_r, key_e = jax.random.split(jax.random.PRNGKey(n_samples))
    real = jnp.float32 if dtype == "float32" else jnp.float64
    group_ids = jnp.arange(n_samples) % N_GROUPS
    V = jnp.linspace(2.0, 25.0, N_GROUPS, dtype=real)[group_ids]
    positions = hamiltonian.supercell.to_cartesian(jax.random.uniform(key_r, (n_samples, n, 2), real))
    x = join_sample(positions, V[:, None])
    model = make_qernel(config, hamiltonian.hilbert, parameter_center=[15.0], parameter_scale=[10.0])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x[:1])
    local_energies = jax.random.normal(key_e, (n_samples,), real) + 0.1 * V  # stand-in energies, per-group offsets
    centered, weights = centered_local_energies(local_energies, group_ids, N_GROUPS)

    def logpsi(p, s):
        return model.apply(p, None, s)

    def jacobian(p, s, dE, w, g):
        return centered_jacobian(logpsi, p, s, g, N_GROUPS, w)[0]

    fns = {"jacobian": jacobian}
    n_params = count_parameters(params)
    for mode in MODES:
        if mode == "sr" and n_params**2 * jnp.dtype(real).itemsize > SR_MAX_BYTES:
            continue
        fns[mode] = (
            lambda p, s, dE, w, g, mode=mode: natural_gradient(logpsi, p, s, dE, w, g, N_GROUPS, DIAG_SHIFT, mode)
        )
    return params, (params, x, centered, weights, group_ids), fns


def measure(fn, args, repeats: int, timer) -> tuple[float, float]:
    """(best time of one call in s, compiled temp + argument + output bytes)."""
    compiled = jax.jit(fn).lower(*args).compile()
    memory = memory_bytes(compiled)
    jax.block_until_ready(compiled(*args))
    best = float("inf")
    for _ in range(repeats):
        start = timer()
        jax.block_until_ready(compiled(*args))
        best = min(best, timer() - start)
    return best, float(memory)


def _cell(values: dict, key: str, form: str) -> str:
    return format(values[key], form) if key in values else "—"


def sweep(points, repeats: int, dtype: str, label: str, timer, model_name: str = "small"):
    """Measure every (width, samples) point; print one table row per point; return the results
    (SR's entries are absent where its P x P matrix would exceed :data:`SR_MAX_BYTES`)."""
    print(f"| {label} | S | P | jacobian [s] | MinSR step [s] | SR step [s] | MinSR / SR time | "
          "MinSR [MiB] | SR [MiB] |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for width, n_samples in points:
        params, args, fns = problem(width, n_samples, dtype, model_name)
        result = {name: measure(fn, args, repeats, timer) for name, fn in fns.items()}
        n_params = count_parameters(params)
        rows.append((n_samples, n_params, result))
        t = {k: v[0] for k, v in result.items()}
        m = {k: v[1] / 2**20 for k, v in result.items()}
        value = n_samples if label == "S sweep" else width
        ratio = {"ratio": t["minsr"] / t["sr"]} if "sr" in t else {}
        print(f"| {value} | {n_samples} | {n_params} | {t['jacobian']:.3f} | {t['minsr']:.3f} | "
              f"{_cell(t, 'sr', '.3f')} | {_cell(ratio, 'ratio', '.2f')} | {m['minsr']:.0f} | {_cell(m, 'sr', '.0f')} |",
              flush=True)
    return rows


def slopes(x, rows) -> str:
    """Fitted log-log slopes of the step times, and of the linear algebra (step - jacobian) if > 0."""
    out = []
    for mode in MODES:
        if not all(mode in r[2] for r in rows):
            continue
        step = np.array([r[2][mode][0] for r in rows])
        solve = step - np.array([r[2]["jacobian"][0] for r in rows])
        text = f"{mode}: step {np.polyfit(np.log(x), np.log(step), 1)[0]:.2f}"
        if np.all(solve > 0):
            text += f", step - jacobian {np.polyfit(np.log(x), np.log(solve), 1)[0]:.2f}"
        out.append(text)
    return "; ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, nargs="+", default=[256, 512, 1024, 2048], help="S sweep")
    parser.add_argument("--width", type=int, default=CONFIG.width, help="token width of the S sweep")
    parser.add_argument("--widths", type=int, nargs="*", default=[8, 12, 16, 24],
                        help="P sweep (token widths; none: no P sweep)")
    parser.add_argument("--model", default="small", choices=["small", "predecessor"],
                        help="small: CONFIG at --width, N = 16; predecessor: issue 18's 104 514-parameter "
                             "model on the 3 x 3, filling-2/3 system (S sweep only)")
    parser.add_argument("--fixed-samples", type=int, default=512, help="S of the P sweep")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls; the best is kept")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--clock", default="auto", choices=["auto", "cpu", "wall"],
                        help="auto: process CPU time on CPU backends, wall time otherwise")
    args = parser.parse_args()
    # one core: avoids jaxlib 0.10's CPU LAPACK deadlock on few cores (docs/howto/devices.md) and makes
    # CPU time this process's work; QERNEL_PIN_CPU=0 skips it (GPUs)
    qernel.pin_to_one_cpu()
    timer = clock(args.clock)
    if any(w % CONFIG.num_heads for w in [args.width, *args.widths]):
        parser.error(f"widths must be multiples of num_heads = {CONFIG.num_heads}")
    if min([*args.samples, args.fixed_samples]) < N_GROUPS:
        parser.error(f"sample counts must be >= {N_GROUPS} (one per parameter group)")

    if args.model == "predecessor" and args.widths:
        parser.error("--model predecessor has a fixed width: pass --widths with no values")
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, dtype {args.dtype}, "
          f"N = {6 if args.model == 'predecessor' else 16}, "
          f"{N_GROUPS} parameter groups, best of {args.repeats} calls, diag_shift {DIAG_SHIFT}, "
          f"{'CPU' if timer is time.process_time else 'wall'} time")
    print(f"model: {PREDECESSOR}\n" if args.model == "predecessor" else f"model: {CONFIG} (width varied)\n")
    rows_s = sweep([(args.width, s) for s in sorted(args.samples)], args.repeats, args.dtype, "S sweep", timer,
                   args.model)
    rows_p = []
    if args.widths:
        print()
        rows_p = sweep([(w, args.fixed_samples) for w in sorted(args.widths)], args.repeats, args.dtype, "width", timer)
    print("\nlog-log slopes:")
    if len(rows_s) >= 2:
        print(f"  vs S (P = {rows_s[0][1]}): " + slopes([r[0] for r in rows_s], rows_s))
    if len(rows_p) >= 2:
        print(f"  vs P (S = {args.fixed_samples}): " + slopes([r[1] for r in rows_p], rows_p))


if __name__ == "__main__":
    main()
