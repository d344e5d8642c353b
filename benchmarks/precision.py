"""float32 against float64 on the same samples and the same weights (issue 18, item 1): where does
single precision lose accuracy that matters?

For each system the float64 run is built from its config, its chains thermalised, and one batch
of samples drawn; the samples are rounded to float32 so that both precisions see *the same*
points. The float32 model gets the float64 parameters rounded to float32. Measured:

* ``log_psi``: |log psi_32 - log psi_64| (the relative error of psi; includes the log-determinant);
* ``local_energy``: |E_32 - E_64| / |E_64| per sample (median, 99th percentile, max), and the shift
  of the batch mean in units of its Monte Carlo error bar;
* ``statistics``: the batch mean of the float32 local energies accumulated in float32 vs float64,
  in units of the error bar;
* ``direction``: the MinSR update direction (same float64 local energies for both, so only the
  Jacobian and the solve differ) with the float32 Jacobian and a float32 or float64 solve, against
  the all-float64 direction: relative error ||d - d_64|| / ||d_64|| and cosine, with the condition
  number of the regularised matrix ``J J^T + lambda I`` it depends on.

The float64 run first takes ``--train-steps`` optimisation steps so that the parameters are not at
their initialisation (where the Gram matrix is unusually well conditioned).

Run (writes JSON with ``--output``)::

    nice -n 15 python benchmarks/precision.py --output benchmarks/results/precision.json

Systems: ``trap2`` (2 electrons, omega = 1, the validation model of examples/validate_trap.py),
``moire2x2`` (the demo system, N = 4, interacting) and ``nu23_3x3`` (the model and system of
examples/configs/moire_nu23_3x3.toml, N = 6).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import qernel  # noqa: E402

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from qernel.cli import DEMO_CONFIG  # noqa: E402
from qernel.config import config_from_dict, load_config  # noqa: E402
from qernel.run import build_run  # noqa: E402
from qernel.sampler import chain_group_ids  # noqa: E402
from qernel.training.gradient import centered_local_energies, natural_gradient  # noqa: E402
from validate_trap import N2_CONFIG  # noqa: E402


def system_config(name: str) -> dict:
    if name == "trap2":
        data = copy.deepcopy(N2_CONFIG)
    elif name == "moire2x2":
        data = copy.deepcopy(DEMO_CONFIG)
    elif name == "nu23_3x3":
        data = load_config(ROOT / "examples/configs/moire_nu23_3x3.toml").to_dict()
        data["parameters"]["values"]["V"] = [5.0, 12.5, 20.0, 27.5]
        data["sampler"].update(n_chains=64)
    else:
        raise ValueError(f"system must be trap2, moire2x2 or nu23_3x3, got {name!r}")
    data["pretrain"] = {"steps": 0}
    return data


def _stats(values: np.ndarray) -> dict:
    return {"median": float(np.median(values)), "p99": float(np.percentile(values, 99)), "max": float(np.max(values))}


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(leaf, np.float64)) for leaf in jax.tree_util.tree_leaves(tree)])


def measure(name: str, n_samples: int, n_thermalise: int, seed: int, train_steps: int = 0) -> dict:
    data = system_config(name)
    data["sampler"]["n_samples"] = n_samples
    data["run"]["seed"] = seed
    runs = {}
    for dtype in ("float64", "float32"):
        d = copy.deepcopy(data)
        d["run"]["dtype"] = dtype
        runs[dtype] = build_run(config_from_dict(d))
    r64, r32 = runs["float64"], runs["float32"]
    r64.driver.thermalise(n_thermalise)
    for _ in range(train_steps):  # away from the initialisation: a less well-conditioned Gram matrix
        r64.driver.step()
    samples = np.asarray(r64.vstate.sample())
    samples = samples.astype(np.float32)  # the points both precisions evaluate
    flat32 = jnp.asarray(samples.reshape(-1, samples.shape[-1]))
    flat64 = flat32.astype(jnp.float64)
    params64 = r64.vstate.parameters
    params32 = jax.tree_util.tree_map(lambda w: w.astype(jnp.float32), params64)
    params64 = jax.tree_util.tree_map(lambda w: w.astype(jnp.float64), params32)  # the same numbers
    unit = r64.hamiltonian.energy_unit

    def evaluate(run, params, x):
        apply = run.vstate._apply_fun
        state = run.vstate.model_state

        def logpsi(p, y):
            return apply({"params": p, **state}, y)

        kernel = jax.jit(lambda p, y: (logpsi(p, y), run.driver.operator._expect_kernel(logpsi, p, y)))
        jax.block_until_ready(kernel(params, x))
        start = time.process_time()
        out = jax.block_until_ready(kernel(params, x))
        return out, time.process_time() - start

    (lp64, el64), t64 = evaluate(r64, params64, flat64)
    (lp32, el32), t32 = evaluate(r32, params32, flat32)
    assert lp32.dtype in (jnp.complex64, jnp.float32) and el32.dtype in (jnp.complex64, jnp.float32)
    e64 = np.real(np.asarray(el64)) * unit
    e32 = np.real(np.asarray(el32)) * unit
    relative = np.abs(e32 - e64) / np.abs(e64)
    error_bar = float(np.std(e64) / np.sqrt(e64.size))
    # the same float32 numbers summed in float32 (the accumulator of a float32 pipeline) and in float64
    mean32_acc32 = float(jnp.mean(jnp.asarray(e32, jnp.float32)))
    mean32_acc64 = float(np.mean(e32.astype(np.float64)))

    group_ids = jnp.broadcast_to(jnp.asarray(chain_group_ids(r64.vstate))[:, None], samples.shape[:2]).reshape(-1)
    n_groups = r64.parameter_space.n_groups
    o = r64.config.optimizer

    def direction(run, params, x, solve_dtype):
        apply = run.vstate._apply_fun
        state = run.vstate.model_state
        real = jnp.float32 if run is r32 else jnp.float64
        energies = jnp.asarray(np.asarray(el64), jnp.complex64 if real == jnp.float32 else jnp.complex128)
        if not jnp.iscomplexobj(el64):
            energies = jnp.real(energies)

        def logpsi(p, y):
            return apply({"params": p, **state}, y)

        @jax.jit
        def f(p, y, e):  # MinSR (SPRING without its momentum term): all of it goes through the solve
            centered, weights = centered_local_energies(e, group_ids, n_groups, o.clip_width)
            return natural_gradient(logpsi, p, y, centered, weights, group_ids, n_groups, o.diag_shift, "minsr",
                                    solve_dtype=solve_dtype)

        return _flat(f(params, x, energies))

    # condition number of the regularised sample-space matrix T + lambda I (float64)
    centered, weights = centered_local_energies(jnp.asarray(el64), group_ids, n_groups, o.clip_width)
    from qernel.training.gradient import centered_jacobian

    def logpsi64(p, y):
        return r64.vstate._apply_fun({"params": p, **r64.vstate.model_state}, y)

    blocks, _ = centered_jacobian(logpsi64, params64, flat64, group_ids, n_groups, weights)
    J = np.concatenate([np.asarray(b) for b in blocks])
    eigenvalues = np.linalg.eigvalsh(J @ J.T) + o.diag_shift
    condition = float(eigenvalues.max() / eigenvalues.min())

    d64 = direction(r64, params64, flat64, None)
    directions = {}
    for label, solve in (("float32 Jacobian, float32 solve", None), ("float32 Jacobian, float64 solve", jnp.float64)):
        d = direction(r32, params32, flat32, solve)
        directions[label] = {
            "relative_error": float(np.linalg.norm(d - d64) / np.linalg.norm(d64)),
            "cosine": float(d @ d64 / (np.linalg.norm(d) * np.linalg.norm(d64))),
        }
    return {
        "system": name,
        "n_samples": int(flat32.shape[0]),
        "n_electrons": r64.hamiltonian.n_electrons,
        "n_parameters": int(_flat(params64).size),
        "energy_unit": r64.hamiltonian.energy_unit_name,
        "log_psi_abs_error": _stats(np.abs(np.asarray(lp32, np.complex128) - np.asarray(lp64))),
        "local_energy_relative_error": _stats(relative),
        "mean_local_energy_float64": float(np.mean(e64)),
        "error_bar_of_mean": error_bar,
        "mean_shift_in_error_bars": float((np.mean(e32) - np.mean(e64)) / error_bar),
        "float32_accumulation_shift_in_error_bars": float((mean32_acc32 - mean32_acc64) / error_bar),
        "direction": directions,
        "local_energy_seconds": {"float64": t64, "float32": t32},
        "diag_shift": o.diag_shift,
        "condition_number": condition,
        "train_steps_before": train_steps,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=["trap2", "moire2x2", "nu23_3x3"])
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--n-thermalise", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=20, help="float64 steps before measuring")
    parser.add_argument("--output", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU before JAX starts
    # (docs/howto/devices.md); QERNEL_PIN_CPU=0 skips it
    qernel.pin_to_one_cpu()
    results = []
    command = "python benchmarks/precision.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name in args.systems:
        r = measure(name, args.n_samples, args.n_thermalise, args.seed, args.train_steps)
        results.append(r)
        if args.output:  # after every system: a long run interrupted later keeps what it measured
            payload = {"command": command, "jax": jax.__version__, "results": results}
            Path(args.output).write_text(json.dumps(payload, indent=1) + "\n")
        le = r["local_energy_relative_error"]
        print(f"{name}: N = {r['n_electrons']}, {r['n_parameters']} parameters, {r['n_samples']} samples")
        print(f"  |log psi_32 - log psi_64|: median {r['log_psi_abs_error']['median']:.2e}, max {r['log_psi_abs_error']['max']:.2e}")
        print(f"  local energy relative error: median {le['median']:.2e}, p99 {le['p99']:.2e}, max {le['max']:.2e}")
        print(f"  batch mean shift: {r['mean_shift_in_error_bars']:+.2e} error bars "
              f"(mean {r['mean_local_energy_float64']:.4f} +- {r['error_bar_of_mean']:.4f} {r['energy_unit']}); "
              f"float32 vs float64 accumulation: {r['float32_accumulation_shift_in_error_bars']:+.2e} error bars")
        print(f"  condition number of J J^T + lambda I (lambda = {r['diag_shift']:g}): {r['condition_number']:.2e}")
        for label, d in r["direction"].items():
            print(f"  MinSR direction, {label}: relative error {d['relative_error']:.2e}, cosine {d['cosine']:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
