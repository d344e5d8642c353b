"""A new Hamiltonian family and a custom ansatz, composed directly from Python (NetKet style).

The family: two electrons in an anharmonic 2D quantum dot (Hartree atomic units),

    H(g) = sum_i [ -1/2 nabla_i^2 + 1/2 omega^2 r_i^2 + g r_i^4 ] + 1 / |r_1 - r_2|,

conditioned on the quartic strength g: every Markov chain carries its own g, and one
model learns psi_g for all g at once with :class:`qernel.training.FoundationVMC`. At g = 0 this is
the harmonic dot with the exact E = 3 Ha at omega = 1 (Taut, J. Phys. A 27, 1045 (1994)).

Two ansätze to choose from (``--ansatz``):

* ``custom``: a hand-written Haiku model, a Gaussian whose width and a Padé-Jastrow range are
  produced by a small MLP of g (the FiLM idea in three lines);
* ``qernel``: the QERNEL transformer from :func:`qernel.ansatz.make_qernel`.

    python examples/custom_hamiltonian.py --steps 100
    python examples/custom_hamiltonian.py --ansatz qernel --steps 100
"""

from __future__ import annotations

import argparse

import qernel

import haiku as hk
import jax
import jax.numpy as jnp
import netket as nk
import optax

from qernel.ansatz import QERNELConfig, make_qernel
from qernel.geometry import split_sample
from qernel.hamiltonian import ContinuumHamiltonian
from qernel.hamiltonian.base import spin_sector
from qernel.hamiltonian.trap import pairwise_coulomb_open
from qernel.sampler import ParameterGrid, make_sampler, thermalise
from qernel.training.driver import FoundationVMC


class AnharmonicDot(ContinuumHamiltonian):
    """N electrons in ``1/2 omega^2 r^2 + g r^4`` with Coulomb repulsion (Hartree units).

    Args:
        n_electrons: N > 0 (spin sector: ``ceil(N/2)`` up).
        omega: harmonic frequency (Ha), > 0.
        g: quartic strength (Ha / bohr^4), >= 0.
        conditioned_on: carried parameters, a subset of ("g", "omega").
    """

    def __init__(self, n_electrons: int = 2, omega: float = 1.0, g: float = 0.0, conditioned_on=("g",)):
        n_up, n_down = spin_sector(n_electrons)
        if not omega > 0:
            raise ValueError(f"omega must be > 0, got {omega}")
        if not g >= 0:
            raise ValueError(f"g must be >= 0 (a confining potential), got {g}")
        ranges = {"g": (0.0, 1e3), "omega": (1e-6, 1e6)}  # validated when the sampler is built
        super().__init__(n_up, n_down, None, {"omega": omega, "g": g}, conditioned_on, ranges)

    def one_body_energy(self, positions, carried):
        """positions (N, 2), carried (P,) -> scalar; ``parameter_dict`` merges carried and fixed values."""
        p = self.parameter_dict(carried)
        r2 = jnp.sum(positions**2, axis=-1)
        return jnp.sum(0.5 * p["omega"] ** 2 * r2 + p["g"] * r2**2)

    def interaction_energy(self, positions, carried):
        return pairwise_coulomb_open(positions)


def custom_ansatz(n_electrons: int):
    """A g-conditioned Gaussian x Padé-Jastrow model (real log psi), as ``hk.Transformed``."""

    def forward(x):
        positions, g = split_sample(x, n_electrons)  # (..., N, 2), (..., 1)
        # per-g width a(g) > 0 and Jastrow range b(g) > 0 from a small MLP of log(1 + g)
        a, b = jnp.moveaxis(jax.nn.softplus(hk.nets.MLP([16, 2], name="conditioning")(jnp.log1p(g)) + 0.5), -1, 0)
        r12 = jnp.linalg.norm(positions[..., 0, :] - positions[..., 1, :], axis=-1)
        # antiparallel 2D cusp: d log psi / d r12 = 1 at r12 = 0 (Kato condition in 2D)
        return -0.5 * a * jnp.sum(positions**2, axis=(-1, -2)) + r12 / (1.0 + b * r12)

    return hk.transform(forward)


def build(ansatz: str = "custom", n_samples: int = 512, n_chains: int = 48, values=(0.0, 0.1, 0.5), seed: int = 0):
    """Hamiltonian, sampler, variational state and driver of this example."""
    hamiltonian = AnharmonicDot(2, omega=1.0, conditioned_on=("g",))
    space = ParameterGrid([list(values)], ("g",))  # the network sees (g - center) / scale
    hamiltonian.check_parameter_values(space.points)
    sampler = make_sampler(hamiltonian.hilbert, space, n_chains=n_chains, sweep_size=4)
    if ansatz == "custom":
        model = custom_ansatz(hamiltonian.n_electrons)
    else:
        config = QERNELConfig(n_layers=1, width=16, num_heads=2, num_kv_heads=1, num_experts=2, top_k=1,
                              n_determinants=1, film_hidden=16, complex_output=False, log_abs_only=True)
        model = make_qernel(config, hamiltonian, space)  # cusp and length from the Hamiltonian (defaults 1)
    vstate = nk.vqs.MCState(sampler, model, n_samples=n_samples, n_discard_per_chain=2, seed=seed,
                            sampler_seed=seed + 1)
    optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(0.1 if ansatz == "custom" else 0.3))
    driver = FoundationVMC(hamiltonian, vstate, optimizer, preconditioner="minsr", diag_shift=1e-3)
    return hamiltonian, vstate, driver


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ansatz", choices=["custom", "qernel"], default="custom")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--samples", type=int, default=480, help="samples per step (all g together)")
    parser.add_argument("--chains", type=int, default=48, help="Markov chains (a multiple of the 3 g values)")
    parser.add_argument("--output-dir", default=None, help="write log.jsonl and checkpoint.npz here")
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU (one XLA thread) before JAX
    # starts, see docs/howto/devices.md; QERNEL_PIN_CPU=0 skips it (GPUs, many-core nodes)
    qernel.pin_to_one_cpu()

    hamiltonian, vstate, driver = build(args.ansatz, args.samples, args.chains)
    for _ in range(5):  # thermalise, adapting each g's Metropolis step to 50 % acceptance
        thermalise(vstate, 10)
        driver.adapt()
    driver.run_to(args.steps, output_dir=args.output_dir, progress=False)  # checkpoints + log.jsonl
    stats = driver.measure()
    print(f"{'g':>6s} {'E [Ha]':>10s} {'error':>8s}   (g = 0: exact E = 3 Ha, Taut 1994)")
    for s in stats:
        print(f"{s.parameters['g']:6.2f} {s.energy:10.4f} {s.error:8.4f}")
    return [s.as_dict() for s in stats]


if __name__ == "__main__":
    main()
