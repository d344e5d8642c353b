"""The ``qernel`` command line.

Usage::

    qernel train CONFIG.toml [--resume | --init-from CHECKPOINT] [--output-dir DIR] [--no-progress]
                             [--distributed [--coordinator H:P --num-processes N --process-id I]]
    qernel evaluate CHECKPOINT [--param V=5,10,12.5] [--n-samples 4096] [--block-size 4096] [--json OUT]
                               [--distributed ...]
    qernel evaluate --pretrained NAME [--param V=7,21] ...   |   qernel evaluate --list-pretrained
    qernel scan CHECKPOINT --param V=0:30:31 [--density-at 2,25] [--output-dir scan] [--distributed ...]
    qernel demo [--output-dir DIR] [--steps N]
    qernel reference CONFIG.toml --method {bloch,hf,ed} [--bands N] [--param V=0:30:7] [--json OUT]
    qernel convert-checkpoint OLD.pkl NEW.npz
    qernel export-pretrained CHECKPOINT NAME [--config-file CONFIG.toml] [--description TEXT]
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
    "optimizer": {"n_steps": 150, "learning_rate": 0.3, "learning_rate_decay": 1e-2, "preconditioner": "spring",
                  "momentum": 0.8, "warmup_steps": 10, "diag_shift": 1e-2, "max_update_norm": 0.5},
    "run": {"seed": 0, "output_dir": "runs/demo", "checkpoint_every": 25},
    # orbital pretraining to the Bloch orbitals of each trained V (span-invariant loss), then SPRING
    # with a decaying learning rate (lr 0.3 -> 0.12 at step 150): below the Bloch determinant at every
    # V, trained and unseen; without the decay the steps hover at a noise floor level with the Bloch
    # determinant at V = 25 meV (docs/benchmarks.md)
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
    print(f"{'parameters':>24s}  {'E [' + unit + ']':>14s}  {'error':>9s}  {'blocking':>9s}  {'n_eff':>8s}  {'acceptance':>10s}")
    for r in records:
        label = ", ".join(f"{k}={v:g}" for k, v in r["parameters"].items())
        print(f"{label:>24s}  {r['energy']:14.5f}  {r['error']:9.5f}  {r['error_blocking']:9.5f}  "
              f"{r['n_effective']:8.0f}  {r['acceptance']:10.2f}")


def _start_distributed(args) -> None:
    """``--distributed`` (train, evaluate, scan): join the multi-process run before anything
    imports NetKet (which initialises JAX's backend)."""
    from .distributed import initialize

    try:
        index, count = initialize(args.coordinator, args.num_processes, args.process_id)
    except ValueError as error:
        raise SystemExit(f"qernel {args.command}: {error}") from error
    print(f"process {index} of {count} (jax.distributed)", file=sys.stderr)


def _init_source(spec: str | None) -> str | None:
    """``--init-from``: a checkpoint file, or the name of a shipped model (``qernel evaluate --list-pretrained``)."""
    if spec is None or Path(spec).is_file():
        return spec
    from .pretrained import pretrained_checkpoint
    from .training.checkpoint import CheckpointError

    try:
        return str(pretrained_checkpoint(spec))
    except CheckpointError as error:
        raise SystemExit(f"--init-from: {spec!r} is neither a checkpoint file nor a shipped model ({error})") from None


def _cmd_train(args) -> int:
    from .config import load_config
    from .run import train

    from .training.driver import TrainingInterrupted

    config = load_config(args.config)
    try:
        run = train(config, resume=args.resume, progress=not args.no_progress, output_dir=args.output_dir,
                    init_from=_init_source(args.init_from))
    except TrainingInterrupted as stop:
        if stop.phase == "pretraining":  # no VMC checkpoint yet: the same command continues the stored pretraining
            saved = "; run the same command again to continue" if stop.saved else " (nothing saved)"
            print(f"interrupted at pretraining step {stop.step}{saved}", file=sys.stderr)
        else:
            saved = "; resume with --resume" if stop.saved else " (nothing saved)"
            print(f"interrupted at step {stop.step}{saved}", file=sys.stderr)
        return 130
    from .distributed import is_main_process

    if not is_main_process():  # process 0 reports for the whole run
        return 0
    out = Path(args.output_dir or config.run.output_dir)
    print(f"checkpoint: {out / 'checkpoint.npz'}\nlog: {out / 'log.jsonl'}")
    if run.driver.history:
        _print_table(run.driver.history[-1]["groups"], run.hamiltonian.energy_unit_name)
    return 0


def _cmd_evaluate(args) -> int:
    from .distributed import is_main_process
    if args.list_pretrained:
        from .pretrained import describe, list_pretrained

        records = list_pretrained()
        print("\n".join(describe(r) for r in records) if records else "no pretrained models installed")
        return 0
    if (args.checkpoint is None) == (args.pretrained is None):
        raise SystemExit("qernel evaluate: give either CHECKPOINT or --pretrained NAME (see --list-pretrained)")
    checkpoint = args.checkpoint
    if args.pretrained is not None:
        from .pretrained import describe, pretrained_checkpoint
        from .training.checkpoint import load_checkpoint

        checkpoint = pretrained_checkpoint(args.pretrained)
        if is_main_process():
            print(describe({"name": args.pretrained, "provenance": load_checkpoint(checkpoint)["provenance"]}))
    from .run import evaluate_checkpoint

    records = evaluate_checkpoint(checkpoint, _parse_params(args.param), n_samples=args.n_samples,
                                  block_size=args.block_size)
    if not is_main_process():  # every process has the same records; process 0 prints and writes them
        return 0
    unit = records[0]["unit"] if records else ""
    if args.unit is not None and args.unit != unit:
        print(f"qernel: warning: --unit is deprecated and ignored: energies are in {unit}, the unit of the "
              "checkpoint's Hamiltonian", file=sys.stderr)
    _print_table(records, unit)
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
    checkpoint = Path(args.output_dir) / "checkpoint.npz"
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
    print(f"\n{'V [meV]':>8s}  {'E/N [meV]':>10s}  {'error':>6s}  {'E_Bloch/N':>10s}  {'E_HF/N':>8s}  "
          f"{'E-E_Bloch':>9s}  {'sigmas':>6s}  {'E_0/N':>8s}  trained")
    for r in records:
        diff = r["energy_meV_per_electron"] - r["bloch_meV_per_electron"]
        sigma = math.hypot(r["error_meV_per_electron"], r["bloch_error_meV_per_electron"])
        hf = r.get("hartree_fock_meV_per_electron")
        print(f"{r['V']:8.2f}  {r['energy_meV_per_electron']:10.3f}  {r['error_meV_per_electron']:6.3f}  "
              f"{r['bloch_meV_per_electron']:10.3f}  "
              f"{'-' if hf is None else f'{hf:.3f}':>8s}  {diff:9.3f}  {diff / sigma:6.1f}  "
              f"{r['noninteracting_meV_per_electron']:8.3f}  {'yes' if r['trained'] else 'no'}")
    out = Path(args.output_dir)
    keys = ("V", "energy_meV_per_electron", "error_meV_per_electron", "bloch_meV_per_electron",
            "hartree_fock_meV_per_electron")
    (out / "summary.json").write_text(json.dumps([{k: r[k] for k in keys if k in r} for r in records], indent=2) + "\n")
    write_energy_plot(records, out / "energy.png", "QERNEL demo: WSe2/WS2, filling 1, 2x2, N=4, eps=10")
    print("\nE: trained QERNEL model (per electron). E_Bloch: Slater determinant of the exact non-interacting")
    print("Bloch orbitals, Coulomb included (a variational upper bound the model should beat); sigmas: the")
    print("difference in the model's error bars. E_HF: self-consistent Hartree-Fock (the best single determinant")
    print("found). E_Bloch and E_HF are plane-wave energies, without sampling error. E_0: exact energy")
    print("without Coulomb. Coulomb energies include the neutralising background (Ewald), hence negative.")
    print("Variational order: the model should be below E_HF <= E_Bloch.")
    print(f"wrote {out / 'summary.json'} and {out / 'energy.png'}")
    print("Checkpoint and log in", args.output_dir)
    return 0


def _energy_unit(checkpoint) -> str:
    """The energy unit of a checkpoint's Hamiltonian (meV for moiré systems, Ha otherwise)."""
    from .training.checkpoint import load_checkpoint

    kind = (load_checkpoint(checkpoint).get("config") or {}).get("system", {}).get("kind", "moire")
    return "meV" if kind == "moire" else "Ha"


def _cmd_scan(args) -> int:
    from .scan import scan_checkpoint, write_scan

    params = _parse_params(args.param)
    if not params or len(params) != 1:
        raise SystemExit("give exactly one --param NAME=start:stop:count (or NAME=v1,v2,...) to scan")
    (name, values), = params.items()
    density_at = [float(v) for v in args.density_at.split(",")] if args.density_at else []
    result = scan_checkpoint(args.checkpoint, name, values, n_samples=args.n_samples, density_at=density_at,
                             chunk_size=args.chunk_size or None, block_size=args.block_size)
    from .distributed import is_main_process

    if not is_main_process():  # every process has the same result; process 0 prints and writes it
        return 0
    paths = write_scan(result, args.output_dir, args.unit or _energy_unit(args.checkpoint))
    print(f"{name:>8s} {'E':>11s} {'err':>7s} {'E_int':>11s} {'err':>7s} {'|rho(g)|':>9s} {'err':>7s}")
    for row in result.rows:
        print(f"{row[name]:8.3f} {row['E']:11.4f} {row['E_error']:7.4f} {row['E_int']:11.4f} "
              f"{row['E_int_error']:7.4f} {row['order_parameter']:9.4f} {row['order_parameter_error']:7.4f}")
    for t in result.transitions:
        print(f"steepest change of {t.quantity}: {name} = {t.location:.3f} ± {t.error:.3f} (slope {t.slope:.3g})")
    print("wrote", ", ".join(str(p) for p in paths))
    return 0


def _cmd_reference(args) -> int:
    from .reference.command import ReferenceInputError, run_reference

    try:
        run_reference(args.config, args.method, bands=args.bands, values=_parse_params(args.param),
                      json_path=args.json, cutoff=args.cutoff)
    except (ReferenceInputError, ValueError) as error:
        print(f"qernel reference: error: {error}", file=sys.stderr)
        return 2
    return 0


def _cmd_convert_checkpoint(args) -> int:
    from .training.checkpoint import convert_pickle_checkpoint

    path = convert_pickle_checkpoint(args.old, args.new)
    print(f"wrote {path} (converted from the pickle checkpoint {args.old})")
    return 0


def _cmd_export_pretrained(args) -> int:
    from .pretrained import export_pretrained

    path = export_pretrained(args.checkpoint, args.name, config_file=args.config_file, description=args.description,
                             directory=args.directory)
    print(f"wrote {path}")
    return 0


def _add_distributed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distributed", action="store_true",
                   help="one process of a multi-process run (jax.distributed); settings from the flags below "
                        "or from SLURM / Open MPI")
    p.add_argument("--coordinator", default=None, help="with --distributed: HOST:PORT of process 0")
    p.add_argument("--num-processes", type=int, default=None, help="with --distributed: number of processes")
    p.add_argument("--process-id", type=int, default=None, help="with --distributed: this process's index")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="qernel", description="Foundation neural wavefunctions (JAX/Haiku/NetKet).")
    parser.add_argument("--version", action="version", version=f"qernel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a model from a TOML configuration")
    p.add_argument("config", help="TOML configuration file (see examples/configs/)")
    p.add_argument("--resume", action="store_true",
                   help="continue from output_dir/checkpoint.npz (only n_steps and checkpoint_every may change)")
    p.add_argument("--output-dir", default=None, help="output directory (default: run.output_dir of the config)")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start a new run from this checkpoint's (or shipped model's) parameters, skipping pretraining")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. for batch jobs)")
    _add_distributed_options(p)
    p.set_defaults(func=_cmd_train)
    p = sub.add_parser("evaluate", help="energies of a trained model at chosen parameter values")
    p.add_argument("checkpoint", nargs="?", default=None, help="checkpoint.npz written by 'qernel train'")
    p.add_argument("--pretrained", default=None, metavar="NAME",
                   help="evaluate a model shipped with qernel instead of a checkpoint (see --list-pretrained)")
    p.add_argument("--list-pretrained", action="store_true", help="list the shipped models and exit")
    p.add_argument("--param", action="append",
                   help="NAME=v1,v2,... or NAME=start:stop:count (repeatable; default: the training grid)")
    p.add_argument("--n-samples", type=int, default=None,
                   help="samples over all values (default: 4x the run's n_samples); drawn in blocks")
    p.add_argument("--block-size", type=int, default=4096,
                   help="samples per block (with sampler.chunk_size, bounds memory independently of --n-samples)")
    p.add_argument("--unit", default=None,
                   help="deprecated and ignored: energies are in the Hamiltonian's unit (meV moiré, Ha trap/gas)")
    p.add_argument("--json", default=None, help="write the records to this JSON file")
    _add_distributed_options(p)
    p.set_defaults(func=_cmd_evaluate)
    p = sub.add_parser("scan", help="observables on a dense parameter grid; locate the transition")
    p.add_argument("checkpoint", help="checkpoint.npz written by 'qernel train'")
    p.add_argument("--param", action="append", required=True, help="NAME=start:stop:count or NAME=v1,v2,...")
    p.add_argument("--n-samples", type=int, default=None, help="samples over all values (default: 512 per value)")
    p.add_argument("--density-at", default="", help="comma-separated values at which to plot density maps")
    p.add_argument("--chunk-size", type=int, default=4096,
                   help="samples per local-energy evaluation (bounds memory; 0: all at once)")
    p.add_argument("--output-dir", default="scan", help="directory for scan.csv, scan.json and the plots")
    p.add_argument("--unit", default=None,
                   help="energy unit label of the plots (default: the Hamiltonian's, meV moiré, Ha trap/gas)")
    p.add_argument("--block-size", type=int, default=4096,
                   help="samples per block (with --chunk-size, bounds memory independently of --n-samples)")
    _add_distributed_options(p)
    p.set_defaults(func=_cmd_scan)
    p = sub.add_parser("reference", help="Bloch, Hartree-Fock or band-projected ED references of a moiré config")
    p.add_argument("config", help="a TOML configuration; its [system] table (moiré) is used")
    p.add_argument("--method", choices=("bloch", "hf", "ed"), required=True,
                   help="bloch: Slater determinant of non-interacting Bloch orbitals; hf: self-consistent "
                        "Hartree-Fock; ed: band-projected exact diagonalisation")
    p.add_argument("--bands", type=int, default=None, help="bands per k-point (ED only; default 1)")
    p.add_argument("--param", action="append", help="V=v1,v2,... or V=start:stop:count (meV); default system.V")
    p.add_argument("--cutoff", type=float, default=None, help="plane-wave cutoff |G|max/|g1| (default 3)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.set_defaults(func=_cmd_reference)
    p = sub.add_parser("demo", help="small moiré foundation run (the README's main job)")
    p.add_argument("--output-dir", default="runs/demo", help="directory for checkpoint and log")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: 150)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("convert-checkpoint", help="convert an old pickle checkpoint (qernel <= 0.1) to checkpoint.npz",
                       description="Unpickling can run code: convert only checkpoints you trust.")
    p.add_argument("old", help="the old checkpoint.pkl")
    p.add_argument("new", help="the .npz checkpoint to write (e.g. the run's output_dir/checkpoint.npz)")
    p.set_defaults(func=_cmd_convert_checkpoint)
    p = sub.add_parser("export-pretrained", help="package a trained checkpoint as a pretrained model")
    p.add_argument("checkpoint", help="checkpoint.npz of a finished run (its log.jsonl gives the training time)")
    p.add_argument("name", help="model name (letters, digits, '_', '-')")
    p.add_argument("--config-file", default=None, help="repository-relative path of the config it was trained from")
    p.add_argument("--description", default="", help="one line shown by 'qernel evaluate --list-pretrained'")
    p.add_argument("--directory", default=None, help="target directory (default: qernel/pretrained_models)")
    p.set_defaults(func=_cmd_export_pretrained)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qernel`` console script."""
    from ._xla import pin_to_one_cpu

    # before JAX starts: jaxlib 0.10's LAPACK deadlock on few cores (qernel/_xla.py); QERNEL_PIN_CPU=0 skips it
    pin_to_one_cpu()
    args = build_parser().parse_args(argv)
    if getattr(args, "distributed", False):
        _start_distributed(args)
    from .config import ConfigError
    from .training.checkpoint import CheckpointError
    from .training.driver import NonFiniteError
    from .training.lock import LockError

    try:
        return args.func(args)
    except (ConfigError, CheckpointError, NonFiniteError, LockError, MemoryError) as error:
        print(f"qernel: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qernel: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
