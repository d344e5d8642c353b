"""The ``qernel`` command line: ``train``, ``evaluate``, ``demo``.

    qernel train CONFIG.toml [--resume] [--output-dir DIR] [--no-progress]
    qernel evaluate CHECKPOINT [--param V=5,10,12.5] [--n-samples 4096] [--json OUT]
    qernel scan CHECKPOINT --param V=0:30:31 [--density-at 2,25] [--output-dir scan]
    qernel demo [--output-dir DIR] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

__all__ = ["main", "DEMO_CONFIG"]

#: The README's main job: one QERNEL model over the moiré depth V for WSe2/WS2 at filling 1 on a
#: 2x2 moiré supercell (4 spin-polarised electrons), a few minutes on 2 CPU cores.
DEMO_CONFIG = {
    "system": {"kind": "moire", "V": 15.0, "phi": 45.0, "m_star": 0.35, "a_M": 8.031, "eps": 10.0,
               "supercell": 2, "filling": 1.0, "polarized": True},
    "parameters": {"type": "grid", "values": {"V": [2.0, 8.0, 15.0, 25.0]}},
    "ansatz": {"kind": "qernel", "n_layers": 2, "width": 16, "num_heads": 2, "num_kv_heads": 1,
               "num_experts": 2, "top_k": 1, "n_determinants": 1, "film_hidden": 16, "n_harmonics": 2},
    "sampler": {"n_chains": 64, "n_samples": 512, "n_discard_per_chain": 4, "n_thermalise": 50},
    "optimizer": {"n_steps": 150, "learning_rate": 0.3, "learning_rate_decay": 0.0, "preconditioner": "spring",
                  "momentum": 0.8, "warmup_steps": 10, "diag_shift": 1e-2, "max_update_norm": 0.5},
    "run": {"seed": 0, "output_dir": "runs/demo", "checkpoint_every": 25},
    "pretrain": {"steps": 1000, "learning_rate": 1e-2, "reference": "bloch"},
}


def _parse_params(items: list[str] | None) -> dict[str, list[float]] | None:
    if not items:
        return None
    values: dict[str, list[float]] = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--param must look like NAME=v1,v2,... or NAME=start:stop:count, got {item!r}")
        name, spec = item.split("=", 1)
        try:
            if ":" in spec:
                start, stop, count = spec.split(":")
                import numpy as np

                values[name] = [float(v) for v in np.linspace(float(start), float(stop), int(count))]
            else:
                values[name] = [float(v) for v in spec.split(",") if v]
        except ValueError as error:
            raise SystemExit(f"--param {item!r}: {error}") from error
    return values


def _print_table(records, unit: str) -> None:
    print(f"{'parameters':>24s}  {'E [' + unit + ']':>14s}  {'error':>9s}  {'acceptance':>10s}")
    for r in records:
        label = ", ".join(f"{k}={v:g}" for k, v in r["parameters"].items())
        print(f"{label:>24s}  {r['energy']:14.5f}  {r['error']:9.5f}  {r['acceptance']:10.2f}")


def _cmd_train(args) -> int:
    from .config import load_config
    from .run import train

    config = load_config(args.config)
    run = train(config, resume=args.resume, progress=not args.no_progress, output_dir=args.output_dir)
    out = Path(args.output_dir or config.run.output_dir)
    print(f"checkpoint: {out / 'checkpoint.pkl'}\nlog: {out / 'log.jsonl'}")
    if run.driver.history:
        _print_table(run.driver.history[-1]["groups"], run.hamiltonian.energy_unit_name)
    return 0


def _cmd_evaluate(args) -> int:
    from .run import evaluate_checkpoint

    records = evaluate_checkpoint(args.checkpoint, _parse_params(args.param), n_samples=args.n_samples)
    _print_table(records, args.unit)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2))
    return 0


def _cmd_demo(args) -> int:
    import copy

    from .config import config_from_dict
    from .run import train

    data = copy.deepcopy(DEMO_CONFIG)
    data["run"]["output_dir"] = args.output_dir
    if args.steps is not None:
        data["optimizer"]["n_steps"] = args.steps
    config = config_from_dict(data)
    checkpoint = Path(args.output_dir) / "checkpoint.pkl"
    print("qernel demo: one QERNEL model for WSe2/WS2 (m*=0.35, a_M=8.031 nm, eps=10, phi=45 deg),")
    print(f"filling 1 on a 2x2 moiré supercell (N=4, spin polarised), trained on V = "
          f"{data['parameters']['values']['V']} meV at once.")
    start = time.perf_counter()
    run = train(config, resume=checkpoint.exists(), progress=not args.no_progress)
    if run.driver.history:
        print(f"trained {len(run.driver.history)} steps in {time.perf_counter() - start:.0f} s")
    else:
        print(f"model already trained ({run.driver.step_count} steps): reusing {checkpoint}")
    trained = data["parameters"]["values"]["V"]
    values = sorted(set(trained) | {5.0, 20.0})
    print(f"evaluating at V = {values} meV (5 and 20 were never trained on) ...")
    from .demo import demo_report, write_energy_plot

    records, reused = demo_report(checkpoint, values, trained, n_samples=4096)
    if reused:
        print("checkpoint unchanged: reusing the stored evaluation (evaluation.json)")
    print(f"\n{'V [meV]':>8s}  {'E/N [meV]':>10s}  {'error':>6s}  {'E_Bloch/N':>10s}  {'error':>6s}  {'E_HF/N':>8s}  "
          f"{'E-E_Bloch':>9s}  {'sigmas':>6s}  {'E_0/N':>8s}  trained")
    for r in records:
        diff = r["energy_meV_per_electron"] - r["bloch_meV_per_electron"]
        sigma = math.hypot(r["error_meV_per_electron"], r["bloch_error_meV_per_electron"])
        hf = r.get("hartree_fock_meV_per_electron")
        print(f"{r['V']:8.2f}  {r['energy_meV_per_electron']:10.3f}  {r['error_meV_per_electron']:6.3f}  "
              f"{r['bloch_meV_per_electron']:10.3f}  {r['bloch_error_meV_per_electron']:6.3f}  "
              f"{'-' if hf is None else f'{hf:.3f}':>8s}  {diff:9.3f}  {diff / sigma:6.1f}  "
              f"{r['noninteracting_meV_per_electron']:8.3f}  {'yes' if r['trained'] else 'no'}")
    out = Path(args.output_dir)
    keys = ("V", "energy_meV_per_electron", "error_meV_per_electron", "bloch_meV_per_electron",
            "hartree_fock_meV_per_electron")
    (out / "summary.json").write_text(json.dumps([{k: r[k] for k in keys if k in r} for r in records], indent=2) + "\n")
    write_energy_plot(records, out / "energy.png", "QERNEL demo: WSe2/WS2, filling 1, 2x2, N=4, eps=10")
    print("\nE: trained QERNEL model (per electron). E_Bloch: Slater determinant of the exact non-interacting")
    print("Bloch orbitals, Coulomb included (a variational upper bound the model should beat); sigmas: the")
    print("difference in combined error bars. E_HF: Hartree-Fock (not available yet). E_0: exact energy without")
    print("Coulomb. Coulomb energies include the neutralising background (Ewald), hence negative.")
    print(f"wrote {out / 'summary.json'} and {out / 'energy.png'}")
    print("Checkpoint and log in", args.output_dir)
    return 0


def _cmd_scan(args) -> int:
    from .scan import scan_checkpoint, write_scan

    params = _parse_params(args.param)
    if not params or len(params) != 1:
        raise SystemExit("give exactly one --param NAME=start:stop:count (or NAME=v1,v2,...) to scan")
    (name, values), = params.items()
    density_at = [float(v) for v in args.density_at.split(",")] if args.density_at else []
    result = scan_checkpoint(args.checkpoint, name, values, n_samples=args.n_samples, density_at=density_at,
                             chunk_size=args.chunk_size or None)
    paths = write_scan(result, args.output_dir, args.unit)
    print(f"{name:>8s} {'E':>11s} {'err':>7s} {'E_int':>11s} {'err':>7s} {'|rho(g)|':>9s} {'err':>7s}")
    for row in result.rows:
        print(f"{row[name]:8.3f} {row['E']:11.4f} {row['E_error']:7.4f} {row['E_int']:11.4f} "
              f"{row['E_int_error']:7.4f} {row['order_parameter']:9.4f} {row['order_parameter_error']:7.4f}")
    for t in result.transitions:
        print(f"steepest change of {t.quantity}: {name} = {t.location:.3f} ± {t.error:.3f} (slope {t.slope:.3g})")
    print("wrote", ", ".join(str(p) for p in paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qernel", description="Foundation neural wavefunctions (JAX/Haiku/NetKet).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model from a TOML configuration")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue from output_dir/checkpoint.pkl")
    p.add_argument("--output-dir", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("evaluate", help="energies of a trained model at chosen parameter values")
    p.add_argument("checkpoint")
    p.add_argument("--param", action="append", help="NAME=v1,v2,... or NAME=start:stop:count (repeatable)")
    p.add_argument("--n-samples", type=int, default=None)
    p.add_argument("--unit", default="user units")
    p.add_argument("--json", default=None, help="write the records to this JSON file")
    p.set_defaults(func=_cmd_evaluate)
    p = sub.add_parser("scan", help="observables on a dense parameter grid; locate the transition")
    p.add_argument("checkpoint")
    p.add_argument("--param", action="append", required=True, help="NAME=start:stop:count or NAME=v1,v2,...")
    p.add_argument("--n-samples", type=int, default=None)
    p.add_argument("--density-at", default="", help="comma-separated values at which to plot density maps")
    p.add_argument("--chunk-size", type=int, default=4096,
                   help="samples per local-energy evaluation (bounds memory; 0: all at once)")
    p.add_argument("--output-dir", default="scan")
    p.add_argument("--unit", default="meV")
    p.set_defaults(func=_cmd_scan)
    p = sub.add_parser("demo", help="small moiré foundation run (the README's main job)")
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qernel`` console script."""
    args = build_parser().parse_args(argv)
    from .config import ConfigError
    from .training.checkpoint import CheckpointError
    from .training.driver import NonFiniteError

    try:
        return args.func(args)
    except (ConfigError, CheckpointError, NonFiniteError) as error:
        print(f"qernel: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
