"""Reproduction study of ``docs/reproduction.md`` (issue 5, item 3).

WSe2/WS2 (m* = 0.35, a_M = 8.031 nm, eps = 10, phi = 45 deg), 3x3 moiré supercell at filling 1
(N = 9, spin polarised): one QERNEL model trained on V = 0, 4, ..., 24 meV at once
(``configs/moire_reproduction.toml``) against single-V models of the same architecture, each
trained with the same number of steps and the same samples per V and per step.

    python examples/reproduction_study.py foundation          # train + evaluate the foundation model
    python examples/reproduction_study.py single --V 4 12 20  # train + evaluate single-V models
    python examples/reproduction_study.py compare             # table of the two (needs both)
    python examples/reproduction_study.py references          # model-independent reference energies
    qernel scan runs/reproduction/foundation/checkpoint.npz --param V=0:24:25 --density-at 0,12,24 \
        --output-dir docs/_static/reproduction

Every stage resumes an interrupted run from its checkpoint and writes ``results.json`` next to it;
the two training stages are independent processes (one CPU core each).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import qernel  # noqa: E402
import numpy as np  # noqa: E402

from qernel.config import config_from_dict  # noqa: E402
from qernel.reference import bloch_slater_energy  # noqa: E402
from qernel.run import build_hamiltonian  # noqa: E402
from validation_common import config_dict, train_and_evaluate, write_results  # noqa: E402

CONFIG = "moire_reproduction.toml"


def _foundation(root: Path) -> dict:
    return config_dict(CONFIG, run={"output_dir": str(root / "foundation")})


def _single(root: Path, V: float) -> dict:
    """Same ansatz, optimiser and steps; the chains and samples of one V value of the foundation run."""
    foundation = _foundation(root)
    n_groups = len(foundation["parameters"]["values"]["V"])
    return config_dict(
        foundation,
        parameters={"values": {"V": [float(V)]}},
        system={"V": float(V)},
        sampler={"n_chains": foundation["sampler"]["n_chains"] // n_groups,
                 "n_samples": foundation["sampler"]["n_samples"] // n_groups},
        run={"output_dir": str(root / f"single_V{V:g}")},
    )


def train_foundation(root: Path, n_eval_samples_per_value: int) -> dict:
    data = _foundation(root)
    n_groups = len(data["parameters"]["values"]["V"])
    results = train_and_evaluate(data, n_eval_samples=n_eval_samples_per_value * n_groups)
    write_results(root / "foundation" / "results.json", results)
    return results


def train_single(root: Path, values: list[float], n_eval_samples_per_value: int) -> list[dict]:
    out = []
    for V in values:
        data = _single(root, V)
        results = train_and_evaluate(data, n_eval_samples=n_eval_samples_per_value)
        write_results(Path(data["run"]["output_dir"]) / "results.json", results)
        out.append(results)
    return out


def compare(root: Path) -> list[dict]:
    """Foundation vs single-V energies at every V that has a single-V run."""
    foundation = json.loads((root / "foundation" / "results.json").read_text())
    by_V = {r["parameters"]["V"]: r for r in foundation["records"]}
    table = []
    for path in sorted(root.glob("single_V*/results.json"), key=lambda p: float(p.parent.name[8:])):
        single = json.loads(path.read_text())["records"][0]
        V = single["parameters"]["V"]
        f = by_V[V]
        table.append({"V": V, "E_foundation": f["energy"], "error_foundation": f["error"],
                      "E_single": single["energy"], "error_single": single["error"],
                      "variance_foundation": f["variance"], "variance_single": single["variance"]})
    write_results(root / "comparison.json", {"table": table})
    return table


def references(root: Path, values: list[float], n_samples: int = 8192) -> dict:
    """Model-independent reference energies of the study's Hamiltonian (meV, whole supercell).

    * ``E_bloch``: energy, Coulomb included, of the Slater determinant of the exact
      non-interacting Bloch orbitals at each V (:func:`qernel.reference.bloch_slater_energy`):
      a variational upper bound the trained models must beat at every V.
    * ``E_int_classical``: Coulomb energy (Ewald, neutralising background) of point charges on the
      moiré sites, one per cell: the interaction energy of the V -> infinity crystal, which the
      quantum crystal approaches from above as its wave packets narrow (Bonsall & Maradudin,
      PRB 15, 1959 (1977): -1.106103 e^2/(eps r_s a_B*) per electron for the triangular lattice).
    """
    ham = build_hamiltonian(config_from_dict(_foundation(root)))
    cell = ham.supercell
    n = ham.n_electrons
    # one electron per moiré cell: the moiré lattice points inside the supercell
    frac = np.stack(np.meshgrid(np.arange(3), np.arange(3), indexing="ij"), -1).reshape(-1, 2) / 3.0
    sites = frac @ cell.vectors
    assert len(sites) == n == cell.n_cells, "the classical crystal assumes filling 1 on a 3x3 supercell"
    carried = np.array([ham.parameters[name] for name in ham.conditioned_on])
    e_int = float(ham.interaction_energy(sites, carried)) * ham.energy_unit
    bloch = []
    for V in values:
        energy, error = bloch_slater_energy(ham, V, n_samples=n_samples)
        bloch.append({"V": V, "E_bloch": energy, "error": error})
    results = {"E_int_classical": e_int, "E_int_classical_per_electron": e_int / n, "bloch": bloch}
    write_results(root / "references.json", results)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["foundation", "single", "compare", "references"])
    parser.add_argument("--V", type=float, nargs="+", default=[4.0, 12.0, 20.0], help="single-V values (meV)")
    parser.add_argument("--output-dir", default="runs/reproduction")
    parser.add_argument("--n-eval-samples-per-value", type=int, default=8192)
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU (one XLA thread) before JAX
    # starts, see docs/howto/devices.md; QERNEL_PIN_CPU=0 skips it (GPUs, many-core nodes)
    qernel.pin_to_one_cpu()
    root = Path(args.output_dir)
    if args.stage == "foundation":
        train_foundation(root, args.n_eval_samples_per_value)
    elif args.stage == "single":
        train_single(root, args.V, args.n_eval_samples_per_value)
    elif args.stage == "references":
        grid = _foundation(root)["parameters"]["values"]["V"]
        refs = references(root, grid)
        print(f"classical crystal interaction energy: {refs['E_int_classical']:.3f} meV "
              f"({refs['E_int_classical_per_electron']:.4f} meV per electron)")
        for row in refs["bloch"]:
            print(f"V = {row['V']:5.1f} meV: Bloch determinant {row['E_bloch']:10.3f} ± {row['error']:.3f} meV")
    else:
        print(f"{'V [meV]':>8s} {'E_foundation [meV]':>22s} {'E_single [meV]':>22s}")
        for row in compare(root):
            print(f"{row['V']:8.2f} {row['E_foundation']:13.3f} ± {row['error_foundation']:6.3f} "
                  f"{row['E_single']:13.3f} ± {row['error_single']:6.3f}")


if __name__ == "__main__":
    main()
