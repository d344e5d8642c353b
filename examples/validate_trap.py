"""Quantum-dot validations of qernel (issue 4, item 5): electrons in a 2D harmonic trap.

    python examples/validate_trap.py n2      # 2 electrons, omega = 1: exact E = 3 Ha
    python examples/validate_trap.py n6      # 6 electrons, omega = 1: DMC E = 20.1597(2) Ha
    python examples/validate_trap.py omega   # one model for N = 2 over omega in [0.5, 1]

References:
* two electrons: E(omega = 1) = 3 Ha exactly, Taut, J. Phys. A 27, 1045 (1994); other omega from
  the numerically exact radial solver ``examples/exact_two_electron_dot.py``.
* six electrons (S = 0): fixed-node DMC E = 20.1597(2) Ha, attributed to M. Pedersen Lohne, G. Hagen,
  M. Hjorth-Jensen, S. Kvaal, F. Pederiva, PRB 84, 115302 (2011), arXiv:1009.4833 (the table entry
  could not be read when this was written: unverified). Earlier versions cited Pederiva, Umrigar,
  Lipparini, PRB 62, 8120 (2000), whose tables are for a GaAs dot at another confinement strength.

Each command trains (resuming an interrupted run in ``--output-dir``), evaluates on fresh chains
and writes ``results.json`` there; ``--steps`` overrides the number of optimisation steps (a
resumed run continues to that total). ``tests/test_validation.py`` runs the same functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qernel  # noqa: E402
from exact_two_electron_dot import two_electron_energy  # noqa: E402
from validation_common import config_dict, train_and_evaluate, write_results  # noqa: E402

#: Fixed-node DMC ground-state energy (Ha) of 6 electrons at omega = 1 (S = 0): an upper bound to the
#: exact energy. Source as above (Pedersen Lohne et al. 2011; table entry unverified).
DMC_N6_OMEGA1 = (20.1597, 0.0002)
DMC_N6_SOURCE = ("fixed-node DMC, Pedersen Lohne, Hagen, Hjorth-Jensen, Kvaal, Pederiva, PRB 84, 115302 (2011) (table entry not verified)")

#: How far below fixed-node DMC a variational energy may lie before the N = 6 check calls it a
#: violation (Ha): the fixed-node error of this closed-shell dot is not known; 5 mHa (0.025 %) is
#: an assumption, stated, not a measured number. Exact references get no allowance.
FIXED_NODE_ALLOWANCE = 0.005

#: Two electrons at omega = 1 (the omega-foundation config with one omega value and no FiLM input).
N2_CONFIG = {
    "system": {"kind": "trap", "n_electrons": 2, "omega": 1.0},
    "parameters": {"type": "none"},
    "ansatz": {"kind": "qernel", "n_layers": 1, "width": 16, "num_heads": 2, "num_kv_heads": 1,
               "num_experts": 1, "top_k": 1, "n_determinants": 1, "film_hidden": 8,
               "complex_output": False, "log_abs_only": True},
    "sampler": {"n_chains": 64, "n_samples": 512, "n_discard_per_chain": 2, "n_thermalise": 50, "sweep_size": 4},
    "optimizer": {"n_steps": 150, "learning_rate": 0.3, "preconditioner": "minsr", "diag_shift": 1e-3,
                  "max_update_norm": 0.5},
    "run": {"seed": 0, "output_dir": "runs/validation/trap_n2", "checkpoint_every": 50},
}

#: omega values the foundation model is evaluated at that are not in its training grid
UNTRAINED_OMEGAS = (0.55, 0.7, 0.8, 0.95)


def _overrides(steps: int | None, output_dir: str | None) -> dict:
    changes: dict = {}
    if steps is not None:
        changes["optimizer"] = {"n_steps": int(steps)}
    if output_dir is not None:
        changes["run"] = {"output_dir": str(output_dir)}
    return changes


def validate_n2(steps: int | None = None, output_dir: str | None = None, n_eval_samples: int = 32768) -> dict:
    """Two electrons at omega = 1 vs the exact E = 3 Ha (Taut 1994)."""
    data = config_dict(N2_CONFIG, **_overrides(steps, output_dir))
    results = train_and_evaluate(data, n_eval_samples=n_eval_samples)
    for record in results["records"]:
        record["reference"] = 3.0
        record["reference_source"] = "exact, Taut, J. Phys. A 27, 1045 (1994)"
    write_results(Path(data["run"]["output_dir"]) / "results.json", results)
    return results


def validate_n6(steps: int | None = None, output_dir: str | None = None, n_eval_samples: int = 32768) -> dict:
    """Six electrons at omega = 1 (examples/configs/quantum_dot.toml) vs DMC 20.1597(2) Ha."""
    changes = _overrides(steps, output_dir)
    changes.setdefault("run", {}).setdefault("output_dir", "runs/validation/trap_n6")
    data = config_dict("quantum_dot.toml", **changes)
    results = train_and_evaluate(data, n_eval_samples=n_eval_samples)
    for record in results["records"]:
        record["reference"] = DMC_N6_OMEGA1[0]
        record["reference_error"] = DMC_N6_OMEGA1[1]
        record["reference_source"] = DMC_N6_SOURCE
        record["relative_deviation"] = (record["energy"] - DMC_N6_OMEGA1[0]) / DMC_N6_OMEGA1[0]
    write_results(Path(data["run"]["output_dir"]) / "results.json", results)
    return results


def validate_omega_foundation(
    steps: int | None = None, output_dir: str | None = None, n_eval_samples: int = 65536
) -> dict:
    """One N = 2 model over omega (examples/configs/quantum_dot_foundation.toml) vs exact energies,
    at the training values and at :data:`UNTRAINED_OMEGAS`."""
    changes = _overrides(steps, output_dir)
    changes.setdefault("run", {}).setdefault("output_dir", "runs/validation/trap_omega_foundation")
    data = config_dict("quantum_dot_foundation.toml", **changes)
    trained = list(data["parameters"]["values"]["omega"])
    omegas = sorted(set(trained) | set(UNTRAINED_OMEGAS))
    results = train_and_evaluate(data, {"omega": omegas}, n_eval_samples=n_eval_samples)
    for record in results["records"]:
        omega = record["parameters"]["omega"]
        record["reference"] = two_electron_energy(omega)
        record["reference_source"] = "exact radial solver, examples/exact_two_electron_dot.py"
        record["trained"] = any(abs(omega - t) < 1e-12 for t in trained)
    write_results(Path(data["run"]["output_dir"]) / "results.json", results)
    return results


def print_table(results: dict) -> None:
    print(f"steps: {results['steps']}, training time: {results['train_seconds']:.0f} s (code {results['code']})")
    print(f"{'parameters':>16s} {'E [Ha]':>12s} {'error':>9s} {'reference':>12s} {'E - ref':>10s} {'trained':>8s}")
    for r in results["records"]:
        label = ", ".join(f"{k}={v:g}" for k, v in r["parameters"].items()) or "-"
        trained = {True: "yes", False: "no"}.get(r.get("trained"), "yes")
        print(f"{label:>16s} {r['energy']:12.5f} {r['error']:9.5f} {r['reference']:12.5f} "
              f"{r['energy'] - r['reference']:10.5f} {trained:>8s}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["n2", "n6", "omega"])
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the config's)")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--n-eval-samples", type=int, default=None)
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU (one XLA thread) before JAX
    # starts, see docs/howto/devices.md; QERNEL_PIN_CPU=0 skips it (GPUs, many-core nodes)
    qernel.pin_to_one_cpu()
    function = {"n2": validate_n2, "n6": validate_n6, "omega": validate_omega_foundation}[args.which]
    kwargs = {} if args.n_eval_samples is None else {"n_eval_samples": args.n_eval_samples}
    results = function(args.steps, args.output_dir, **kwargs)
    print_table(results)
    return results


if __name__ == "__main__":
    main()
