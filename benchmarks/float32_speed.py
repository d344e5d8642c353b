"""float32 against float64 speed, side by side in one process: the local energy of a batch and
one full optimisation step (sample + local energy + statistics + SPRING direction + update), at
batch 256 and 1024 on the filling-2/3 3x3 system with the model of
``examples/configs/moire_nu23_3x3.toml``.

Both runs of a batch size are built from that config (only ``run.dtype`` differs; 4 V values, 0
to 30 meV, of 16 chains each, so that 256 samples are 4 per chain as in the config) and are
timed in alternation, round after round, so that both precisions see the same load of a shared
machine; the best round of each counts (process CPU time on CPU: the script pins the process to
one core). Compilation (first call) is timed separately.

float32 runs need ``import qernel`` before JAX starts its backend: with jaxlib 0.10.2 qernel then
turns off XLA's YNNPACK fusions, which segfault on the rank-7 float32 arrays of the attention
softmax's forward Laplacian (``qernel/_ynn.py``). This script imports qernel first.

    nice -n 10 python benchmarks/float32_speed.py --batch 256 1024 --output benchmarks/results/float32_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import qernel  # noqa: E402  (first: its YNNPACK guard must precede JAX's backend)

import jax
import jax.numpy as jnp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import clock  # noqa: E402
from qernel.ansatz.qernel import count_parameters  # noqa: E402
from qernel.config import load_config  # noqa: E402
from qernel.run import build_run  # noqa: E402

CONFIG = "examples/configs/moire_nu23_3x3.toml"
V_VALUES = [0.0, 10.0, 20.0, 30.0]


def build(dtype: str, batch: int, model: str = "config"):
    """The run of the config at ``dtype`` and ``batch``; ``model="predecessor"``: with the model of
    ``benchmarks/compile_time.py`` (no FiLM, no MoE, 4 heads on 4 kv heads) instead."""
    data = load_config(ROOT / CONFIG).to_dict()
    if model == "predecessor":
        from compile_time import PREDECESSOR_ANSATZ

        data["ansatz"] = dict(PREDECESSOR_ANSATZ)
    data["parameters"]["values"]["V"] = list(V_VALUES)
    data["sampler"].update(n_chains=16 * len(V_VALUES), n_samples=batch)
    data["run"].update(dtype=dtype)
    data["pretrain"] = {"steps": 0}
    return build_run(data)


def local_energy(run):
    return jax.block_until_ready(jnp.asarray(run.vstate.local_estimators(run.driver.operator).data))


def step(run):
    run.driver.step()


def measure(batch: int, rounds: int, n_thermalise: int, timer, model: str = "config") -> dict:
    """CPU (or wall) seconds of the local energy and the step at ``batch``, both precisions."""
    runs = {dtype: build(dtype, batch, model) for dtype in ("float64", "float32")}
    compile_times = {}
    for dtype, run in runs.items():
        run.driver.thermalise(n_thermalise)
        for name, fn in (("local_energy", local_energy), ("step", step)):
            start = timer()
            fn(run)
            compile_times[f"{name}_{dtype}"] = timer() - start
    times = {f"{name}_{dtype}": [] for name in ("local_energy", "step") for dtype in runs}
    for _ in range(rounds):  # alternate: both precisions see the same load
        for name, fn in (("local_energy", local_energy), ("step", step)):
            for dtype, run in runs.items():
                start = timer()
                fn(run)
                times[f"{name}_{dtype}"].append(timer() - start)
    best = {key: min(values) for key, values in times.items()}
    run64 = runs["float64"]
    return {
        "batch": batch, "n_parameters": count_parameters(run64.vstate.parameters),
        "n_electrons": run64.hamiltonian.n_electrons,
        "seconds_best": best, "seconds_all": times, "first_call_seconds": compile_times,
        "ratio_float32_over_float64": {
            "local_energy": best["local_energy_float32"] / best["local_energy_float64"],
            "step": best["step_float32"] / best["step_float64"],
            "first_step": compile_times["step_float32"] / compile_times["step_float64"],
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-thermalise", type=int, default=20)
    parser.add_argument("--clock", default="auto", choices=["auto", "cpu", "wall"])
    parser.add_argument("--model", default="config", choices=["config", "predecessor"],
                        help="the config's model, or compile_time.py's (whose float32 runs also with YNNPACK fusions)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU before JAX starts
    # (docs/howto/devices.md); QERNEL_PIN_CPU=0 skips it
    qernel.pin_to_one_cpu()
    timer = clock(args.clock)
    results = []
    for batch in args.batch:
        results.append(measure(batch, args.rounds, args.n_thermalise, timer, args.model))
        r = results[-1]
        print(f"{CONFIG}, {args.model} model ({r['n_parameters']} parameters), N = {r['n_electrons']}, batch {batch}; best of "
              f"{args.rounds} alternating rounds, {args.clock} clock")
        print(f"{'':>22s} {'float64 [s]':>12s} {'float32 [s]':>12s} {'float32/float64':>16s}")
        for name in ("local_energy", "step"):
            a, b = r["seconds_best"][f"{name}_float64"], r["seconds_best"][f"{name}_float32"]
            print(f"{name:>22s} {a:12.3f} {b:12.3f} {b / a:16.2f}")
        a, b = r["first_call_seconds"]["step_float64"], r["first_call_seconds"]["step_float32"]
        print(f"{'first step (compile)':>22s} {a:12.3f} {b:12.3f} {b / a:16.2f}", flush=True)
    result = {
        "command": "python benchmarks/float32_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": CONFIG, "model": args.model, "V_values": V_VALUES, "platform": platform.machine(),
        "backend": jax.devices()[0].platform, "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "clock": args.clock, "rounds": args.rounds,
        "results": results,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
