"""Filling 2/3 of WSe2/WS2: one QERNEL model over V against Bloch, Hartree-Fock and ED, at two sizes.

The systems of ``configs/moire_nu23_3x3.toml`` (N = 6 spin-polarised electrons on a 3x3 moiré
supercell, eps = 5) and ``configs/moire_nu23_6x6.toml`` (N = 24, 6x6); the foundation models are
trained with ``qernel train``::

    qernel train examples/configs/moire_nu23_3x3.toml          # pretrained to Hartree-Fock
    qernel train examples/configs/moire_nu23_3x3_continue.toml --init-from nu23_3x3
    qernel train examples/configs/moire_nu23_6x6.toml
    python examples/nu23_study.py references [--size 6]         # Bloch, HF (and ED n_b = 1, 2, 3 at N = 6)
    python examples/nu23_study.py hf-states --size 6 [--reverse] # HF orbitals stored for pretraining
    qernel train examples/configs/moire_nu23_6x6_hf.toml         # pretrained to the stored HF states
    python examples/nu23_study.py evaluate runs/nu23_3x3_continue runs/nu23_6x6
    python examples/nu23_study.py table [--size 6]              # the comparison (markdown + JSON)
    qernel scan runs/nu23_3x3/checkpoint.npz --param V=0:30:61 --n-samples 124928 --density-at 5,25 \
        --output-dir docs/_static/nu23_3x3
    python examples/nu23_study.py finite-size                   # both scans side by side

Everything is written to ``examples/nu23_results/`` with repository-relative paths only. Energies
are meV per electron; the references come from :mod:`qernel.reference` (cutoff 3).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import qernel

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "examples" / "nu23_results"
#: supercell size -> its configuration; band-projected ED only at N = 6 (at N = 24 one band alone
#: has C(36, 24) ~ 1.3e9 determinants)
CONFIGS = {3: "examples/configs/moire_nu23_3x3.toml", 6: "examples/configs/moire_nu23_6x6.toml"}
ED_BANDS_BY_SIZE = {3: (1, 2, 3), 6: ()}
#: Hartree-Fock at both sizes (at N = 24, cutoff 3: 1332 plane waves, minutes per V on one core since the
#: exchange became one real matrix product; set a size to False to skip it there)
HARTREE_FOCK_BY_SIZE = {3: True, 6: True}
CUTOFF = 3.0


def _relative(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _grid(size: int = 3) -> list[float]:
    from qernel.config import load_config

    return [float(v) for v in load_config(ROOT / CONFIGS[size]).parameters.values["V"]]


def _hamiltonian(size: int = 3):
    from qernel.config import load_config
    from qernel.run import build_hamiltonian

    return build_hamiltonian(load_config(ROOT / CONFIGS[size]))


def _tag(size: int) -> str:
    return f"{size}x{size}"


def references(size: int = 3, reverse: bool = False) -> dict:
    """Bloch determinant (its exact <H>), Hartree-Fock (lowest of its starts) and band-projected ED at every trained V;
    an existing file is extended, not recomputed (each method is a resumable stage). Two processes may share the
    work (one with ``reverse``: the grid from the top): each rereads the file before every V and merges on writing."""
    from qernel.reference.bloch import bloch_determinant

    out = RESULTS / f"references_{_tag(size)}.json"
    from qernel.reference.ed import band_projected_ed
    from qernel.reference.hartree_fock import hartree_fock
    from qernel.reference.planewave import PlaneWaveBasis

    ham = _hamiltonian(size)
    n = ham.n_electrons
    data = json.loads(out.read_text()) if out.is_file() else {"config": CONFIGS[size], "cutoff": CUTOFF, "rows": {}}
    for V in sorted(_grid(size), reverse=reverse):
        if out.is_file():  # another process may have finished this V meanwhile
            _merge(data, json.loads(out.read_text()))
        row = data["rows"].setdefault(f"{V:g}", {"V": V})
        if "hartree_fock" not in row and not HARTREE_FOCK_BY_SIZE[size]:
            row["hartree_fock"] = None
            row["hartree_fock_skipped"] = "not run at this size: too slow on one core (see HARTREE_FOCK_BY_SIZE)"
            _write(out, data)
        if row.get("hartree_fock") is None and HARTREE_FOCK_BY_SIZE[size]:
            row.pop("hartree_fock_skipped", None)
            basis = PlaneWaveBasis.from_hamiltonian(ham, V=V, cutoff=CUTOFF)
            t0 = time.process_time()
            hf = hartree_fock(ham, basis=basis)
            row["hartree_fock"] = hf.energy_per_electron_meV
            row["hartree_fock_start"] = hf.start
            row["hartree_fock_gap_meV"] = hf.gap_meV
            row["hartree_fock_cpu_seconds"] = time.process_time() - t0
            _write(out, data)
        if "bloch" not in row and not ED_BANDS_BY_SIZE[size]:  # else ED reports it (its best choice in a multiplet)
            row["bloch"] = bloch_determinant(ham, V, CUTOFF)["energy_per_electron_meV"]
            _write(out, data)
        for nb in ED_BANDS_BY_SIZE[size]:
            key = f"ed_{nb}"
            if key not in row:
                t0 = time.process_time()
                try:
                    ed = band_projected_ed(ham, n_bands=nb, V=V, cutoff=CUTOFF, n_levels=1, max_memory_GB=8.0)
                except ValueError as error:  # too large (e.g. multiplets extended at V = 0): say so, go on
                    row[key], row[f"{key}_skipped"] = None, str(error)
                    _write(out, data)
                    continue
                row[key] = ed.energy_meV / n
                row[f"{key}_orbitals"] = int(np.sum(ed.bands_per_k))
                row[f"{key}_cpu_seconds"] = time.process_time() - t0
                # <H> of the determinant of the lowest single-particle (Bloch) levels, exact (no sampling)
                row.setdefault("bloch", ed.bloch_determinant_energy_meV / n)
                _write(out, data)
        print(f"V = {V:5.1f} meV: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if v is not None and (
            k in ("bloch", "hartree_fock") or k in [f"ed_{b}" for b in ED_BANDS_BY_SIZE[size]])), flush=True)
    return data


def _merge(data: dict, other: dict) -> None:
    """Fill what ``data`` lacks (missing or None) from ``other``'s rows; a computed value drops its skip note."""
    for key, other_row in other.get("rows", {}).items():
        row = data["rows"].setdefault(key, {})
        for name, value in other_row.items():
            if name.endswith("_skipped") and row.get(name.removesuffix("_skipped")) is not None:
                continue
            if row.get(name) is None and value is not None:
                row[name] = value
                row.pop(f"{name}_skipped", None)


def _write(out: Path, data: dict) -> None:
    if out.is_file() and "rows" in data:  # a second process may have written rows meanwhile
        _merge(data, json.loads(out.read_text()))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(out)


def evaluate(run_dirs: list[str], n_samples_per_value: int = 8192, block_size: int = 4096) -> None:
    """Energies of each trained model at its trained V values on fresh chains."""
    from qernel.pretrained import training_wall_seconds
    from qernel.run import evaluate_checkpoint
    from qernel.training.checkpoint import load_checkpoint

    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        checkpoint = run_dir / "checkpoint.npz"
        data = load_checkpoint(checkpoint)
        grid = data["config"]["parameters"]["values"]["V"]
        t0 = time.perf_counter()
        records = evaluate_checkpoint(checkpoint, {"V": grid}, n_samples=n_samples_per_value * len(grid),
                                      block_size=block_size)
        n = data["config"]["system"]["n_electrons"]
        start = dict(data.get("init_from") or {})  # qernel train --init-from: the steps before this run
        if start:
            start["checkpoint"] = Path(str(start.get("checkpoint", ""))).name
        # a start exported with its own history (qernel export-pretrained) knows its total step count
        total = int(data["step"]) + int(start.get("provenance", {}).get("total_steps", start.get("step", 0)))
        result = {
            "run": run_dir.name, "steps": int(data["step"]), "total_steps": total,
            **({"init_from": start} if start else {}), "config": data["config"],
            "train_wall_seconds": training_wall_seconds(run_dir / "log.jsonl"), "evaluate_wall_seconds": time.perf_counter() - t0,
            "n_samples_per_value": n_samples_per_value,
            "rows": [{"V": r["parameters"]["V"], "energy": r["energy"] / n, "error": r["error"] / n,
                      "tau_corr": r.get("tau_corr"), "acceptance": r.get("acceptance")} for r in records],
        }
        out = RESULTS / f"model_{run_dir.name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"wrote {_relative(out)}")


def table(size: int = 3) -> str:
    """One row per trained V: every model of this size and every reference (meV per electron), and
    the variational order checks (a model below ED with all bands would violate it; HF <= Bloch)."""
    out_md = RESULTS / f"table_{_tag(size)}.md"
    refs = json.loads((RESULTS / f"references_{_tag(size)}.json").read_text())["rows"]
    models = {p.stem.removeprefix("model_"): json.loads(p.read_text()) for p in sorted(RESULTS.glob("model_*.json"))}
    # evaluated models only (other model_*.json records, e.g. the first steps of a stopped run, have no rows)
    models = {name: m for name, m in models.items() if "rows" in m and m["config"]["system"]["supercell"] == size}
    ed_bands = ED_BANDS_BY_SIZE[size]
    ed_keys = [f"ed_{b}" for b in ed_bands]
    with_hf = HARTREE_FOCK_BY_SIZE[size]
    baseline = "hartree_fock" if with_hf else "bloch"  # the difference column: model minus the best mean field run
    head = ["V [meV]", "Bloch"] + (["HF"] if with_hf else []) + [f"ED n_b={b}" for b in ed_bands] + \
        [f"{name} ({m.get('total_steps', m['steps'])} steps)" for name, m in models.items()] + \
        [f"{name} - {'HF' if with_hf else 'Bloch'}" for name in models]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    checks = []
    for key, ref in sorted(refs.items(), key=lambda kv: kv[1]["V"]):
        V = ref["V"]
        cells = [f"{V:g}", f"{ref['bloch']:.3f}"] + ([f"{ref['hartree_fock']:.3f}"] if with_hf else [])
        cells += [f"{ref[k]:.3f}" if ref.get(k) is not None else "too large" for k in ed_keys]
        diffs = []
        for name, m in models.items():
            row = next((r for r in m["rows"] if abs(r["V"] - V) < 1e-9), None)
            if row is None:
                cells.append("")
                diffs.append("")
                continue
            cells.append(f"{row['energy']:.3f}({round(row['error'] * 1000):d})")
            d = row["energy"] - ref[baseline]
            diffs.append(f"{d:+.3f} ({d / row['error']:+.1f} σ)")
            checks.append({"V": V, "model": name, "energy": row["energy"], "error": row["error"],
                           "below_hartree_fock": (row["energy"] + 2 * row["error"] < ref["hartree_fock"]) if with_hf else None,
                           "below_bloch": row["energy"] + 2 * row["error"] < ref["bloch"],
                           "minus_best_ed": (row["energy"] - min(ref[k] for k in ed_keys if ref.get(k) is not None)
                                             if any(ref.get(k) is not None for k in ed_keys) else None),
                           "hf_below_bloch": (ref["hartree_fock"] <= ref["bloch"] + 1e-9) if with_hf else None})
        lines.append("| " + " | ".join(cells + diffs) + " |")
    text = "\n".join(lines) + "\n"
    out_md.write_text(text)
    (RESULTS / f"checks_{_tag(size)}.json").write_text(json.dumps(checks, indent=1))
    print(text)
    return text


SCANS = {3: ROOT / "docs" / "_static" / "nu23_3x3" / "scan.json", 6: ROOT / "docs" / "_static" / "nu23_6x6" / "scan.json"}


def finite_size(out: Path = RESULTS / "finite_size.json",
                figure: Path = ROOT / "docs" / "_static" / "nu23_finite_size.png") -> dict:
    """The two sizes' scans side by side: per size, the located change of each quantity (steepest
    point with its bootstrap uncertainty, from ``qernel scan``), the maximum slope of the K-point
    order parameter and of E_int per electron, and the order parameter at both ends; plus one figure
    with energy per electron, order parameter and dE_int/dV per electron of both sizes on the same axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qernel.scan import step_fits

    scans = {size: json.loads(path.read_text()) for size, path in SCANS.items() if path.is_file()}
    result: dict = {"scans": {str(size): _relative(SCANS[size]) for size in scans}, "sizes": {}}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for size, scan in scans.items():
        rows = scan["rows"]
        n = round(rows[0]["E"] / rows[0]["E_per_electron"])
        V = np.array([r["V"] for r in rows])
        order = np.array([r["order_K"] for r in rows])
        order_err = np.array([r["order_K_error"] for r in rows])
        e_int = np.array([r["E_int"] for r in rows]) / n
        slopes = np.diff(order) / np.diff(V)
        e_slopes = np.diff(e_int) / np.diff(V)
        result["sizes"][str(size)] = {
            "n_electrons": n, "n_values": len(rows),
            "transitions": {t["quantity"]: {"location_meV": t["location"], "bootstrap_error_meV": t["error"]}
                            for t in scan["transitions"]},
            # tanh-step fits of the whole curve (qernel.transition): the width says how sharp the change is
            "step_fits": {f.quantity: {"location_meV": f.location, "location_error_meV": f.location_error,
                                       "width_meV": f.width, "width_error_meV": f.width_error,
                                       "height": f.height, "chi2_per_dof": f.chi2_per_dof}
                          for f in step_fits(rows, "V")},
            "max_order_K_slope_per_meV": float(slopes.max()),
            "max_order_K_slope_at_meV": float(0.5 * (V[1:] + V[:-1])[slopes.argmax()]),
            "max_abs_dE_int_dV_per_electron": float(np.abs(e_slopes).max()),
            "max_abs_dE_int_dV_at_meV": float(0.5 * (V[1:] + V[:-1])[np.abs(e_slopes).argmax()]),
            "order_K_first": [float(order[0]), float(order_err[0])],
            "order_K_last": [float(order[-1]), float(order_err[-1])],
            "order_K_noise_floor_median": float(np.median([r["order_K_noise_floor"] for r in rows])),
        }
        label = f"N = {n} ({size}x{size})"
        axes[0].errorbar(V, [r["E_per_electron"] for r in rows], [r["E_error"] / n for r in rows], fmt=".-", label=label)
        axes[1].errorbar(V, order, order_err, fmt=".-", label=label)
        axes[1].plot(V, [r["order_K_noise_floor"] for r in rows], ":", color=axes[1].lines[-1].get_color(),
                     label=f"noise floor, N = {n}")
        axes[2].plot(0.5 * (V[1:] + V[:-1]), e_slopes, ".-", label=label)
    axes[0].set(xlabel="V [meV]", ylabel="E / N [meV]", title="energy per electron")
    axes[1].set(xlabel="V [meV]", ylabel="|<ρ(K)>| (per electron; point charges: 0.5)", title="order parameter at K")
    axes[2].set(xlabel="V [meV]", ylabel="dE_int/dV per electron", title="interaction energy slope")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=120)
    result["figure"] = _relative(figure)
    _write(out, result)
    print(json.dumps(result["sizes"], indent=1))
    return result


def hf_states(size: int = 6, reverse: bool = False) -> Path:
    """Store the Hartree-Fock determinant of every trained V (``hartree_fock_states_<n>x<n>.npz``) for orbital
    pretraining (``[pretrain] reference_file``). Each V reruns only the start that was lowest in the references
    file (the other starts are not repeated) and prints the energy against that file's: the stored orbitals
    reproduce the reference table. Resumable; two processes may share the grid (``reverse``)."""
    from qernel.reference.hartree_fock import hartree_fock
    from qernel.reference.hartree_fock_store import (load_hartree_fock_states, save_hartree_fock_states,
                                                     stored_hartree_fock_values)
    from qernel.reference.planewave import PlaneWaveBasis

    rows = json.loads((RESULTS / f"references_{_tag(size)}.json").read_text())["rows"]
    out = RESULTS / f"hartree_fock_states_{_tag(size)}.npz"
    ham = _hamiltonian(size)
    if out.is_file():  # a file of another system is refused before any new Hartree-Fock run
        load_hartree_fock_states(out, ham)
    for V in sorted(_grid(size), reverse=reverse):
        if out.is_file() and V in stored_hartree_fock_values(out):  # another process may have stored it
            continue
        row = rows[f"{V:g}"]
        t0 = time.process_time()
        hf = hartree_fock(ham, basis=PlaneWaveBasis.from_hamiltonian(ham, V=V, cutoff=CUTOFF),
                          starts=(row["hartree_fock_start"],))
        save_hartree_fock_states(out, [hf])
        print(f"V = {V:g} meV: HF ({hf.start}, converged {hf.converged}) {hf.energy_per_electron_meV:.6f} meV/e, "
              f"references file {row['hartree_fock']:.6f} (difference {hf.energy_per_electron_meV - row['hartree_fock']:+.2e}); "
              f"{time.process_time() - t0:.0f} CPU-s", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["references", "hf-states", "evaluate", "table", "finite-size"])
    parser.add_argument("--size", type=int, choices=sorted(CONFIGS), default=3, help="supercell size n (n x n)")
    parser.add_argument("--reverse", action="store_true",
                        help="references, hf-states: the grid from its top (a second process shares the work)")
    parser.add_argument("runs", nargs="*", help="evaluate: run directories (each with checkpoint.npz, log.jsonl)")
    parser.add_argument("--n-samples-per-value", type=int, default=8192)
    parser.add_argument("--block-size", type=int, default=4096,
                        help="evaluate: samples per block (memory: ~8.5 MB per sample at N = 24 in float64)")
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU before JAX starts
    # (docs/howto/devices.md); QERNEL_PIN_CPU=0 skips it
    qernel.pin_to_one_cpu()
    if args.stage == "references":
        references(args.size, args.reverse)
    elif args.stage == "hf-states":
        hf_states(args.size, args.reverse)
    elif args.stage == "evaluate":
        if not args.runs:
            sys.exit("evaluate: give the run directories, e.g. runs/nu23_3x3")
        evaluate(args.runs, args.n_samples_per_value, args.block_size)
    elif args.stage == "table":
        table(args.size)
    else:
        finite_size()


if __name__ == "__main__":
    main()
