"""Race optimiser variants for the same CPU budget on real moiré systems (issue 14).

Each variant (MinSR, MinSR + orbital pretraining, SPRING + pretraining, ...) starts from the same
initial model and runs pretraining (if any) and VMC steps until its CPU-time budget is spent (one
pinned core: the script calls ``qernel.pin_to_one_cpu()``; ``time.process_time`` so that time other
processes hold the core is not counted). Pretraining counts against the budget. After the budget the
parameters are frozen and the energy per electron is measured with ``--eval-samples`` samples at
every trained V, next to the Bloch-determinant energy (Slater determinant of the exact
non-interacting Bloch orbitals with Coulomb, :func:`qernel.reference.bloch_slater_energy`).

Systems:
  predecessor: the authors' predecessor code's default system (PeriodicWave): WSe2/WS2, 3x3
      supercell, filling 2/3 (N = 6), spin polarised, eps = 5, V = 15 meV, phi = 45 deg,
      m* = 0.35, a_M = 8.031 nm.
  demo: ``qernel demo``'s system (2x2, filling 1, N = 4, eps = 10), V = 2, 8, 15, 25 meV at once.

External marks (issue 14, measured by the issue's author on this machine type): PeriodicWave
(KFAC, 1024 walkers, float32) -59.355(9) meV/electron after 1000 steps; at 12 CPU-minutes on one
core -55.45(5) (qernel's MinSR at that budget then: -28.08(21)); Bloch determinant of that
system -57.11(17).

    python benchmarks/optimisation.py --system predecessor --budget 150 --output benchmarks/results/optimisation_predecessor.json
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import qernel
from _measure import clock

EXTERNAL_MARKS = {  # meV per electron, issue 14
    "predecessor": {
        "PeriodicWave KFAC, 1000 steps x 1024 walkers": -59.355,
        "PeriodicWave KFAC, 12 CPU-min": -55.45,
        "qernel MinSR (old defaults), 12 CPU-min": -28.08,
    },
    "demo": {},
}

SYSTEMS = {
    "predecessor": {"kind": "moire", "V": 15.0, "phi": 45.0, "m_star": 0.35, "a_M": 8.031, "eps": 5.0,
                    "supercell": 3, "filling": 2.0 / 3.0, "polarized": True},
    "demo": {"kind": "moire", "V": 15.0, "phi": 45.0, "m_star": 0.35, "a_M": 8.031, "eps": 10.0,
             "supercell": 2, "filling": 1.0, "polarized": True},
}
GRIDS = {"predecessor": [15.0], "demo": [2.0, 8.0, 15.0, 25.0]}

ANSATZ = {"kind": "qernel", "n_layers": 2, "width": 16, "num_heads": 2, "num_kv_heads": 1,
          "num_experts": 2, "top_k": 1, "n_determinants": 1, "film_hidden": 16}

VARIANTS = {
    "minsr": {"optimizer": {"preconditioner": "minsr"}, "pretrain": {"steps": 0}},
    "minsr+pretrain": {"optimizer": {"preconditioner": "minsr"}, "pretrain": {"steps": 200}},
    "spring+pretrain": {"optimizer": {"preconditioner": "spring", "momentum": 0.8}, "pretrain": {"steps": 200}},
    # the same with the demo's decaying learning rate, 0.3 / (1 + 0.01 step): below a constant rate's noise floor
    "minsr+decay": {"optimizer": {"preconditioner": "minsr", "learning_rate_decay": 1e-2}, "pretrain": {"steps": 0}},
    "spring+pretrain+decay": {"optimizer": {"preconditioner": "spring", "momentum": 0.8, "learning_rate_decay": 1e-2},
                              "pretrain": {"steps": 200}},
    # no pretraining: the orbitals start at the free-electron Fermi-sea determinant (QERNELConfig.orbital_init)
    "minsr+pwinit": {"optimizer": {"preconditioner": "minsr"}, "pretrain": {"steps": 0},
                     "ansatz": {"orbital_init": "plane_waves"}},
    "spring+pwinit+decay": {"optimizer": {"preconditioner": "spring", "momentum": 0.8, "learning_rate_decay": 1e-2},
                            "pretrain": {"steps": 0}, "ansatz": {"orbital_init": "plane_waves"}},
    # the same in single precision: more steps per CPU-second
    "minsr+pwinit+f32": {"optimizer": {"preconditioner": "minsr"}, "pretrain": {"steps": 0},
                         "ansatz": {"orbital_init": "plane_waves"}, "run": {"dtype": "float32"}},
}


def make_config(system: str, variant: str, seed: int) -> dict:
    grid = GRIDS[system]
    config = {
        "system": dict(SYSTEMS[system]),
        "parameters": {"type": "grid", "values": {"V": grid}},
        "ansatz": dict(ANSATZ),
        "sampler": {"n_chains": 32 * len(grid) if len(grid) > 1 else 64, "n_samples": 512,
                    "n_discard_per_chain": 4, "n_thermalise": 50},
        "optimizer": {"n_steps": 100000, "learning_rate": 0.3, "learning_rate_decay": 0.0, "diag_shift": 1e-2,
                      "max_update_norm": 0.5, "warmup_steps": 10},
        "run": {"seed": seed},
        "pretrain": {"steps": 0, "learning_rate": 1e-2, "reference": "bloch"},
    }
    for section, changes in VARIANTS[variant].items():
        config[section].update(copy.deepcopy(changes))
    return config


def race(system: str, variant: str, budget: float, eval_samples: int, seed: int, timer) -> dict:
    from qernel.run import build_run, pretrain_orbitals

    config = make_config(system, variant, seed)
    run = build_run(config)
    n = run.hamiltonian.n_electrons
    start = timer()
    wall = time.perf_counter()
    losses = pretrain_orbitals(run, None, progress=False)
    pretrain_seconds = timer() - start
    run.driver.thermalise(config["sampler"]["n_thermalise"])
    steps = []
    while timer() - start < budget:
        record = run.driver.step()
        steps.append({
            "step": record["step"], "cpu_seconds": timer() - start,
            "energy_meV_per_electron": float(np.mean([g["energy"] for g in record["groups"]])) / n,
            "error_meV_per_electron": math.sqrt(sum(g["error"] ** 2 for g in record["groups"])) / len(record["groups"]) / n,
            "groups": [{"V": g["parameters"]["V"], "energy": g["energy"] / n, "error": g["error"] / n}
                       for g in record["groups"]],
        })
        print(f"  {variant:>16s} step {record['step']:4d}  t={steps[-1]['cpu_seconds']:7.1f}s  "
              f"E/N={steps[-1]['energy_meV_per_electron']:9.3f} ± {steps[-1]['error_meV_per_electron']:.3f}",
              flush=True)
    cpu = timer() - start
    # frozen parameters, more samples
    run.vstate.n_samples = eval_samples
    run.driver.thermalise(20)
    final = [{"V": g.parameters["V"], "energy_meV_per_electron": g.energy / n, "error_meV_per_electron": g.error / n}
             for g in run.driver.measure()]
    return {"variant": variant, "config": config, "pretrain_steps": len(losses),
            "pretrain_final_loss": losses[-1] if losses else None, "pretrain_cpu_seconds": pretrain_seconds,
            "vmc_steps": len(steps), "cpu_seconds": cpu, "wall_seconds": time.perf_counter() - wall,
            "trace": steps, "final": final}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for r in result["runs"]:
        t = [s["cpu_seconds"] for s in r["trace"]]
        e = np.array([s["energy_meV_per_electron"] for s in r["trace"]])
        err = np.array([s["error_meV_per_electron"] for s in r["trace"]])
        step = [s["step"] for s in r["trace"]]
        for ax, x in zip(axes, (t, step)):
            ax.plot(x, e, label=r["variant"])
            ax.fill_between(x, e - err, e + err, alpha=0.25)
    bloch = np.mean([b["bloch_meV_per_electron"] for b in result["bloch"]])
    for ax in axes:
        ax.axhline(bloch, color="k", ls="--", lw=1, label="Bloch determinant")
        marks = result.get("external_marks", EXTERNAL_MARKS[result["system"]])
        for colour, (label, value) in zip(("C3", "C4", "C5"), marks.items()):
            ax.axhline(value, ls=":", lw=1.2, color=colour, label=label)
    axes[0].set_xlabel("CPU seconds (one core, pretraining included)")
    axes[1].set_xlabel("VMC step")
    axes[0].set_ylabel("energy per electron [meV] (mean over trained V)")
    lows = [min(s["energy_meV_per_electron"] for s in r["trace"]) for r in result["runs"] if r["trace"]]
    axes[0].set_ylim(min(lows + [bloch]) - 3, bloch + 60)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"optimiser race, {result['system']} system, {result['budget_cpu_seconds']:.0f} CPU-s each", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="predecessor")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--budget", type=float, default=720.0, help="CPU seconds per variant (issue: 720)")
    parser.add_argument("--eval-samples", type=int, default=4096)
    parser.add_argument("--bloch-samples", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", default="auto", choices=("auto", "cpu", "wall"))
    parser.add_argument("--output", default=None, help="JSON file (a .png plot is written next to it)")
    parser.add_argument("--replot", default=None, help="only redraw the plot of this (possibly partial) JSON")
    args = parser.parse_args(argv)
    # one core: avoids jaxlib 0.10's CPU LAPACK deadlock on few cores (docs/howto/devices.md) and makes
    # CPU time this process's work; QERNEL_PIN_CPU=0 skips it (GPUs)
    qernel.pin_to_one_cpu()
    if args.replot:
        result = json.loads(Path(args.replot).read_text())
        plot(result, Path(args.replot).with_suffix(".png"))
        return 0
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"--variants: unknown {sorted(unknown)}; allowed {list(VARIANTS)}")
    timer = clock(args.clock)

    from qernel.reference import bloch_slater_energy
    from qernel.run import build_hamiltonian
    from qernel.config import config_from_dict

    ham = build_hamiltonian(config_from_dict(make_config(args.system, "minsr", args.seed)))
    n = ham.n_electrons
    bloch = []
    for V in GRIDS[args.system]:
        e, de = bloch_slater_energy(ham, V, n_samples=args.bloch_samples)
        bloch.append({"V": V, "bloch_meV_per_electron": e / n, "bloch_error_meV_per_electron": de / n})
        print(f"Bloch determinant at V={V:g}: {e / n:.3f} ± {de / n:.3f} meV/electron", flush=True)
    runs = []
    out = Path(args.output) if args.output else None
    command = "python benchmarks/optimisation.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for variant in variants:
        print(f"{variant}: {args.budget:.0f} CPU-s", flush=True)
        runs.append(race(args.system, variant, args.budget, args.eval_samples, args.seed, timer))
        if out is not None:  # partial results after every variant
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"system": args.system, "budget_cpu_seconds": args.budget, "partial": True,
                                       "command": command, "bloch": bloch, "runs": runs}, indent=1) + "\n")
    print(f"\n{args.system}: final energy per electron [meV] after {args.budget:.0f} CPU-s per variant "
          f"({args.eval_samples} evaluation samples)")
    print(f"{'variant':>16s} {'V':>5s} {'steps':>6s} {'E/N':>9s} {'err':>6s} {'E_Bloch/N':>10s} {'err':>6s} {'diff':>7s} {'sigmas':>6s}")
    for r in runs:
        for f, b in zip(r["final"], bloch):
            diff = f["energy_meV_per_electron"] - b["bloch_meV_per_electron"]
            sigma = math.hypot(f["error_meV_per_electron"], b["bloch_error_meV_per_electron"])
            print(f"{r['variant']:>16s} {f['V']:5g} {r['vmc_steps']:6d} {f['energy_meV_per_electron']:9.3f} "
                  f"{f['error_meV_per_electron']:6.3f} {b['bloch_meV_per_electron']:10.3f} "
                  f"{b['bloch_error_meV_per_electron']:6.3f} {diff:7.3f} {diff / sigma:6.1f}")
    for label, value in EXTERNAL_MARKS[args.system].items():
        print(f"external mark: {label}: {value} meV/electron")
    result = {"system": args.system, "budget_cpu_seconds": args.budget, "clock": args.clock,
              "eval_samples": args.eval_samples, "bloch": bloch, "external_marks": EXTERNAL_MARKS[args.system],
              "command": command, "runs": runs}
    if out is not None:
        out.write_text(json.dumps(result, indent=1) + "\n")
        plot(result, out.with_suffix(".png"))
        print("wrote", out, "and", out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
