"""Moiré validations of qernel (issue 4, item 5), on the ``qernel demo`` system: WSe2/WS2
(m* = 0.35, a_M = 8.031 nm, eps = 10, phi = 45 deg), 2x2 moiré supercell at filling 1 (N = 4,
spin polarised).

    python examples/validate_moire.py foundation-vs-single [--steps 150]
    python examples/validate_moire.py noninteracting [--steps 500]

* ``foundation-vs-single``: one model trained on V = 2, 8, 15, 25 meV at once (the demo config,
  :data:`qernel.cli.DEMO_CONFIG`) against four models of the same architecture, each trained on
  one V with the same number of steps and the same samples per V and per step (the foundation
  run's ``n_samples / 4``, ``n_chains / 4``). All five are evaluated on fresh chains with the
  same number of samples per V.
* ``noninteracting``: the same model and optimiser at interaction 0 on V = 5 and 15 meV, compared
  with the exact non-interacting energy (lowest plane-wave bands filled; the 4 commensurate
  k-points of the 2x2 cell fill the lowest band: a closed shell).

Each command resumes interrupted runs in ``--output-dir`` and writes ``results.json`` there.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qernel  # noqa: E402
from qernel.cli import DEMO_CONFIG  # noqa: E402
from qernel.run import build_hamiltonian  # noqa: E402
from qernel.config import config_from_dict  # noqa: E402
from validation_common import config_dict, train_and_evaluate, write_results  # noqa: E402


def _demo(steps: int | None, output_dir: str | Path) -> dict:
    data = copy.deepcopy(DEMO_CONFIG)
    if steps is not None:
        data["optimizer"]["n_steps"] = int(steps)
    data["run"]["output_dir"] = str(output_dir)
    return data


def validate_foundation_vs_single(
    steps: int | None = None, output_dir: str | Path | None = None, n_eval_samples_per_value: int = 8192
) -> dict:
    """Foundation model over V vs single-V models with the same budget per V; returns the table."""
    root = Path(output_dir or "runs/validation/moire_foundation_vs_single")
    foundation = config_dict(_demo(steps, root / "foundation"))
    grid = list(foundation["parameters"]["values"]["V"])
    n_groups = len(grid)
    results = {"foundation": train_and_evaluate(foundation, n_eval_samples=n_eval_samples_per_value * n_groups)}
    for V in grid:
        single = config_dict(
            foundation,
            parameters={"values": {"V": [V]}},
            sampler={"n_chains": foundation["sampler"]["n_chains"] // n_groups,
                     "n_samples": foundation["sampler"]["n_samples"] // n_groups},
            run={"output_dir": str(root / f"single_V{V:g}")},
        )
        results[f"single_V{V:g}"] = train_and_evaluate(single, n_eval_samples=n_eval_samples_per_value)
    ham = build_hamiltonian(config_from_dict(foundation))
    table = []
    for i, V in enumerate(grid):
        f = results["foundation"]["records"][i]
        s = results[f"single_V{V:g}"]["records"][0]
        assert f["parameters"]["V"] == V and s["parameters"]["V"] == V
        table.append({
            "V": V, "E_foundation": f["energy"], "error_foundation": f["error"],
            "E_single": s["energy"], "error_single": s["error"],
            "E_noninteracting": ham.noninteracting_ground_state(V=V).energy_meV,
            "n_electrons": ham.n_electrons,
        })
    results["table"] = table
    write_results(root / "results.json", results)
    return results


def validate_noninteracting(
    steps: int | None = None, output_dir: str | Path | None = None, n_eval_samples_per_value: int = 8192,
    values: tuple[float, ...] = (5.0, 15.0), orbital_init: str | None = None, dtype: str | None = None,
) -> dict:
    """QERNEL at interaction 0 vs the exact non-interacting energy (filled plane-wave bands).

    ``orbital_init`` / ``dtype``: override the demo's ``ansatz.orbital_init`` / ``run.dtype``."""
    root = Path(output_dir or "runs/validation/moire_noninteracting")
    data = _demo(steps if steps is not None else 500, root)
    data["system"]["interaction"] = 0.0
    if orbital_init is not None:
        data["ansatz"]["orbital_init"] = orbital_init
    if dtype is not None:
        data["run"]["dtype"] = dtype
    data["parameters"]["values"]["V"] = list(values)
    data = config_dict(data)
    results = train_and_evaluate(data, n_eval_samples=n_eval_samples_per_value * len(values))
    ham = build_hamiltonian(config_from_dict(data))
    for record in results["records"]:
        exact = ham.noninteracting_ground_state(V=record["parameters"]["V"])
        assert exact.closed_shell_up
        record["reference"] = exact.energy_meV
        record["reference_source"] = "exact: lowest plane-wave bands filled (qernel.hamiltonian.bands)"
    write_results(root / "results.json", results)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["foundation-vs-single", "noninteracting"])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--n-eval-samples-per-value", type=int, default=8192)
    parser.add_argument("--orbital-init", choices=["random", "plane_waves"], default=None,
                        help="noninteracting: the ansatz's orbital_init (default: the demo's)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default=None,
                        help="noninteracting: the training precision (default: the demo's)")
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU (one XLA thread) before JAX
    # starts, see docs/howto/devices.md; QERNEL_PIN_CPU=0 skips it (GPUs, many-core nodes)
    qernel.pin_to_one_cpu()
    if args.which == "foundation-vs-single":
        results = validate_foundation_vs_single(args.steps, args.output_dir, args.n_eval_samples_per_value)
        print(f"{'V [meV]':>8s} {'E_foundation [meV]':>22s} {'E_single [meV]':>22s} {'E_nonint [meV]':>15s}")
        for row in results["table"]:
            print(f"{row['V']:8.2f} {row['E_foundation']:13.3f} ± {row['error_foundation']:6.3f} "
                  f"{row['E_single']:13.3f} ± {row['error_single']:6.3f} {row['E_noninteracting']:15.3f}")
    else:
        results = validate_noninteracting(args.steps, args.output_dir, args.n_eval_samples_per_value,
                                          orbital_init=args.orbital_init, dtype=args.dtype)
        print(f"{'V [meV]':>8s} {'E [meV]':>12s} {'error':>8s} {'exact [meV]':>12s}")
        for r in results["records"]:
            print(f"{r['parameters']['V']:8.2f} {r['energy']:12.4f} {r['error']:8.4f} {r['reference']:12.4f}")
    return results


if __name__ == "__main__":
    main()
