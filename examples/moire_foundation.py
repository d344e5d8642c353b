"""A moiré foundation model composed directly from Python (what ``qernel demo`` does via a config).

    MoireHamiltonian (conditioned on V) + ParameterGrid over V + make_sampler + make_qernel
    + nk.vqs.MCState + FoundationVMC

WSe2/WS2 (m* = 0.35, a_M = 8.031 nm, phi = 45 deg, eps = 10) at filling 1 on an n x n moiré
supercell, spin polarised; one QERNEL model trained on several V at once, then evaluated also at
V values it never saw, printed next to the exact non-interacting energy for comparison.

    python examples/moire_foundation.py --steps 150              # ~ 4 min on 2 CPU cores
    python examples/moire_foundation.py --supercell 3 --steps 500 --width 32 --layers 2
"""

from __future__ import annotations

import argparse

import qernel

import netket as nk
import optax

from qernel.ansatz import QERNELConfig, make_qernel
from qernel.hamiltonian import WSE2_WS2, MoireHamiltonian
from qernel.sampler import ParameterGrid, make_sampler, thermalise
from qernel.training.driver import FoundationVMC


def build(supercell: int = 2, values=(2.0, 8.0, 15.0, 25.0), n_samples: int = 512, chains_per_value: int = 16,
          width: int = 16, layers: int = 2, seed: int = 0):
    """The Hamiltonian family, parameter space, model, variational state and driver."""
    hamiltonian = MoireHamiltonian(**{**WSE2_WS2, "eps": 10.0}, supercell=supercell, filling=1.0,
                                   polarized=True, conditioned_on=("V",))
    # every chain carries one V of the grid; energies and log-derivatives are centered per V
    space = ParameterGrid([list(values)], ("V",))
    hamiltonian.check_parameter_values(space.points)
    n_chains = chains_per_value * space.n_groups
    sampler = make_sampler(hamiltonian.hilbert, space, n_chains=n_chains, sweep_size=hamiltonian.n_electrons)
    config = QERNELConfig(
        n_layers=layers, width=width, num_heads=2, num_kv_heads=1, num_experts=2, top_k=1, n_determinants=1,
        film_hidden=16,
    )
    model = make_qernel(config, hamiltonian, space)  # exact 2D cusps and V normalisation derived
    vstate = nk.vqs.MCState(sampler, model, n_samples=n_samples, n_discard_per_chain=4, seed=seed,
                            sampler_seed=seed + 1)
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(0.3))
    driver = FoundationVMC(hamiltonian, vstate, optimizer, preconditioner="minsr", diag_shift=1e-2)
    return hamiltonian, space, vstate, driver


def evaluate(hamiltonian, vstate, values, n_samples: int, chains_per_value: int = 16, seed: int = 7):
    """Energies of the trained parameters at ``values`` (may include untrained V), fresh chains."""
    space = ParameterGrid([list(values)], ("V",), center=vstate.sampler.rule.parameter_space.center,
                          scale=vstate.sampler.rule.parameter_space.scale)  # keep the network's normalisation
    sampler = make_sampler(hamiltonian.hilbert, space, n_chains=chains_per_value * space.n_groups,
                           sweep_size=hamiltonian.n_electrons)
    fresh = nk.vqs.MCState(sampler, vstate.model, n_samples=n_samples, n_discard_per_chain=4, seed=seed,
                           sampler_seed=seed)
    fresh.parameters = vstate.parameters
    evaluator = FoundationVMC(hamiltonian, fresh, optax.sgd(0.0), preconditioner=None)
    for _ in range(5):
        thermalise(fresh, 10)
        evaluator.adapt()
    return evaluator.measure()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--supercell", type=int, default=2)
    parser.add_argument("--samples", type=int, default=512, help="samples per step over all V")
    parser.add_argument("--chains-per-value", type=int, default=16)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--eval-samples", type=int, default=4096)
    parser.add_argument("--output-dir", default=None, help="write log.jsonl and checkpoint.npz here")
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU (one XLA thread) before JAX
    # starts, see docs/howto/devices.md; QERNEL_PIN_CPU=0 skips it (GPUs, many-core nodes)
    qernel.pin_to_one_cpu()

    values = (2.0, 8.0, 15.0, 25.0)
    hamiltonian, space, vstate, driver = build(args.supercell, values, args.samples, args.chains_per_value,
                                               args.width, args.layers)
    print(f"{hamiltonian}; {driver.vstate.n_parameters} variational parameters")
    for _ in range(5):  # thermalise, adapting each V's Metropolis step size to 50 % acceptance
        thermalise(vstate, 10)
        driver.adapt()
    driver.run_to(args.steps, output_dir=args.output_dir, progress=False)  # checkpoints + log.jsonl

    targets = sorted(set(values) | {5.0, 20.0})
    stats = evaluate(hamiltonian, vstate, targets, args.eval_samples, args.chains_per_value)
    n = hamiltonian.n_electrons
    print(f"{'V [meV]':>8s} {'E/N [meV]':>11s} {'error':>8s} {'E_nonint/N':>11s} trained")
    for s in stats:
        V = s.parameters["V"]
        free = hamiltonian.noninteracting_ground_state(V=V).energy_meV / n
        print(f"{V:8.2f} {s.energy / n:11.4f} {s.error / n:8.4f} {free:11.4f} {'yes' if V in values else 'no'}")
    return [s.as_dict() for s in stats]


if __name__ == "__main__":
    main()
