"""float32 against float64 end to end (issue 18, item 1): the same run trained and evaluated in both
precisions, energies compared with each other (within error bars) and with the exact reference.

    python examples/validate_float32.py trap    # 2 electrons, omega = 1: exact E = 3 Ha
    python examples/validate_float32.py moire   # moiré 2x2, N = 4, interaction 0: exact filled band
    python examples/validate_float32.py all --output examples/validation_results/float32_vs_float64.json

* ``trap``: the validation run of ``examples/validate_trap.py n2`` (QERNEL, MinSR), exact
  E = 3 Ha (Taut, J. Phys. A 27, 1045 (1994)).
* ``moire``: the demo system (WSe2/WS2, eps = 10, 2x2 cell, filling 1, N = 4, spin polarised) with
  the interaction off at V = 5 and 15 meV, orbitals pretrained to the Bloch determinant, then
  SPRING. Without interaction the Bloch Slater determinant is the exact ground state (the 4
  k-points of the 2x2 cell fill the lowest band: a closed shell), so the reference is exact: the
  filled-band energy (qernel.hamiltonian.bands), checked against the Monte Carlo energy of the Bloch
  determinant itself (:func:`qernel.reference.bloch_slater_energy`).

Both precisions use the same seeds and settings; each is evaluated on fresh chains of its own
precision (:func:`qernel.run.state_at_values`). Runs resume in ``--output-dir``.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path

import qernel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qernel.cli import DEMO_CONFIG  # noqa: E402
from qernel.config import config_from_dict  # noqa: E402
from qernel.run import build_hamiltonian  # noqa: E402
from validate_trap import N2_CONFIG  # noqa: E402
from validation_common import config_dict, train_and_evaluate, write_results  # noqa: E402

MOIRE_VALUES = (5.0, 15.0)


def _compare(results: dict[str, dict], references: list[float], source: str) -> list[dict]:
    rows = []
    for r32, r64, reference in zip(results["float32"]["records"], results["float64"]["records"], references):
        assert r32["parameters"] == r64["parameters"]
        combined = math.hypot(r32["error"], r64["error"])
        rows.append({
            "parameters": r32["parameters"],
            "float32": {k: r32[k] for k in ("energy", "error", "variance")},
            "float64": {k: r64[k] for k in ("energy", "error", "variance")},
            "difference": r32["energy"] - r64["energy"],
            "combined_error": combined,
            "difference_in_error_bars": (r32["energy"] - r64["energy"]) / combined,
            "reference": reference,
            "reference_source": source,
        })
    return rows


def _both(data: dict, root: Path, n_eval_samples: int) -> dict[str, dict]:
    out = {}
    for dtype in ("float64", "float32"):
        d = copy.deepcopy(data)
        d["run"].update(dtype=dtype, output_dir=str(root / dtype))
        out[dtype] = train_and_evaluate(config_dict(d), n_eval_samples=n_eval_samples)
    return out


def compare_trap(steps: int | None = None, output_dir: str | Path | None = None, n_eval_samples: int = 16384) -> dict:
    """2 electrons at omega = 1 in both precisions vs the exact 3 Ha."""
    root = Path(output_dir or "runs/validation/float32_trap")
    data = copy.deepcopy(N2_CONFIG)
    if steps is not None:
        data["optimizer"]["n_steps"] = int(steps)
    results = _both(data, root, n_eval_samples)
    return {"system": "trap_n2", **results,
            "comparison": _compare(results, [3.0], "exact, Taut, J. Phys. A 27, 1045 (1994)")}


def moire_config(steps: int | None = None) -> dict:
    data = copy.deepcopy(DEMO_CONFIG)
    data["system"]["interaction"] = 0.0
    data["parameters"]["values"]["V"] = list(MOIRE_VALUES)
    data["sampler"].update(n_chains=32, n_samples=256)
    data["optimizer"]["n_steps"] = 100 if steps is None else int(steps)
    data["pretrain"] = {"steps": 300, "learning_rate": 1e-2, "reference": "bloch"}
    return data


def compare_moire(steps: int | None = None, output_dir: str | Path | None = None, n_eval_samples: int = 16384) -> dict:
    """Moiré 2x2, N = 4, interaction 0, V = 5 and 15 meV, in both precisions vs the exact energy."""
    from qernel.reference import bloch_slater_energy

    root = Path(output_dir or "runs/validation/float32_moire")
    data = moire_config(steps)
    results = _both(data, root, n_eval_samples)
    ham = build_hamiltonian(config_from_dict(data))
    exact = [ham.noninteracting_ground_state(V=V).energy_meV for V in MOIRE_VALUES]
    assert all(ham.noninteracting_ground_state(V=V).closed_shell_up for V in MOIRE_VALUES)
    bloch_mc = [bloch_slater_energy(ham, V, n_samples=8192) for V in MOIRE_VALUES]
    rows = _compare(results, exact, "exact: lowest plane-wave band filled (qernel.hamiltonian.bands)")
    for row, (energy, error) in zip(rows, bloch_mc):
        row["bloch_determinant_mc"] = {"energy": energy, "error": error}
    return {"system": "moire_2x2_noninteracting", **results, "comparison": rows}


def print_table(result: dict) -> None:
    print(f"{result['system']}: steps {result['float64']['steps']}; training time float64 "
          f"{result['float64']['train_seconds']:.0f} s, float32 {result['float32']['train_seconds']:.0f} s")
    print(f"{'parameters':>12s} {'E float32':>20s} {'E float64':>20s} {'diff / sigma':>12s} {'exact':>12s}")
    for row in result["comparison"]:
        label = ", ".join(f"{k}={v:g}" for k, v in row["parameters"].items()) or "-"
        e32, e64 = row["float32"], row["float64"]
        print(f"{label:>12s} {e32['energy']:11.5f} ± {e32['error']:6.5f} {e64['energy']:11.5f} ± {e64['error']:6.5f} "
              f"{row['difference_in_error_bars']:12.2f} {row['reference']:12.5f}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["trap", "moire", "all"])
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the config's)")
    parser.add_argument("--output-dir", default=None, help="root of the run directories")
    parser.add_argument("--n-eval-samples", type=int, default=16384)
    parser.add_argument("--output", default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU before JAX starts
    # (docs/howto/devices.md); QERNEL_PIN_CPU=0 skips it
    qernel.pin_to_one_cpu()
    root = Path(args.output_dir) if args.output_dir else None
    results = {}
    if args.which in ("trap", "all"):
        results["trap"] = compare_trap(args.steps, root and root / "trap", args.n_eval_samples)
        print_table(results["trap"])
    if args.which in ("moire", "all"):
        results["moire"] = compare_moire(args.steps, root and root / "moire", args.n_eval_samples)
        print_table(results["moire"])
    if args.output:
        write_results(args.output, results)
    return results


if __name__ == "__main__":
    main()
