"""
Train one model on a family of moiré Hamiltonians
=================================================

This is a complete NetKet-style driver script: it builds a moiré Hamiltonian conditioned on the
potential depth :math:`V`, a parameter space of depths, the QERNEL network, a sampler whose chains
carry their own :math:`V`, an ``nk.vqs.MCState`` and qernel's
:class:`~qernel.training.driver.FoundationVMC` driver; trains for a few steps; evaluates the model
at a depth it never saw; and measures observables per depth.

The system is tiny so that the documentation build can run it in under a minute: two
spin-polarised electrons in a :math:`2\\times1` moiré supercell of WSe2/WS2, a one-block network
of width 8, 40 optimisation steps. The numbers are therefore far from converged; the point is
the workflow (scale the sizes up for real runs, see :doc:`/howto/driver_script`).
"""

# %%
# The Hamiltonian family
# ----------------------
# ``conditioned_on=("V",)`` makes :math:`V` a *carried* parameter: each sample holds its own value
# in its last column; the other parameters stay fixed at the values given here.
import time

import matplotlib.pyplot as plt
import netket as nk
import numpy as np
import optax

from qernel.ansatz import QERNELConfig, count_parameters, make_qernel
from qernel.hamiltonian import MoireHamiltonian
from qernel.observables import measure
from qernel.sampler import ParameterGrid, ParameterList, make_sampler, thermalise
from qernel.training.driver import FoundationVMC

start = time.perf_counter()
ham = MoireHamiltonian(
    V=15.0, phi=45.0, m_star=0.35, a_M=8.031, eps=10.0,  # WSe2/WS2
    supercell=[[2, 0], [0, 1]], filling=1, conditioned_on=("V",),
)
print(ham)
print(ham.hilbert, "-> samples of length", ham.hilbert.size)
print(f"energy unit {ham.energy_unit:.4f} meV, "
      f"Coulomb coupling kappa = {ham.coulomb_strength:.3f}")

# %%
# Parameter space, model, sampler, variational state
# --------------------------------------------------
# Two training depths, a shallow and a deep potential. The network sees the normalised
# :math:`\hat V = (V - 15)/10 \in [-1, 1]`; the space provides ``center`` and ``scale``.
space = ParameterGrid([5.0, 25.0], ("V",))
config = QERNELConfig(
    n_layers=1, width=8, num_heads=2, num_kv_heads=1, num_experts=2, top_k=1,
    n_determinants=1, film_hidden=8,
)
model = make_qernel(config, ham, space)  # cusps from ham.cusp_coupling, V normalised by the space

# 16 chains: 8 per depth (round-robin); 2 Gaussian all-electron moves between samples
sampler = make_sampler(ham.hilbert, space, n_chains=16, sweep_size=2)
vstate = nk.vqs.MCState(sampler, model, n_samples=256, n_discard_per_chain=2,
                        seed=0, sampler_seed=1)
print(f"{count_parameters(vstate.parameters)} variational parameters")

# %%
# The driver
# ----------
# :class:`~qernel.training.driver.FoundationVMC` centers local energies and log-derivatives within
# each depth's group (see :doc:`/concepts/netket`), solves the MinSR equations, and adapts the
# Metropolis step size of each group towards 50% acceptance. Clipping the update norm keeps the
# first steps of a fresh network stable.
optimizer = optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(0.3))
driver = FoundationVMC(ham, vstate, optimizer, preconditioner="minsr", diag_shift=1e-2)

for _ in range(3):  # thermalise the chains, adapting the step sizes on the way
    thermalise(vstate, 10)
    driver.adapt()

driver.run(40, show_progress=False)  # NetKet's run: 40 steps (out=, callback=, timeit= as in NetKet)
history = driver.history  # one record per step: energy, error, acceptance of every group
print(f"trained {driver.step_count} steps ({time.perf_counter() - start:.0f} s so far)")
for record in history[::10] + history[-1:]:
    groups = "   ".join(
        f"V={g['parameters']['V']:4.1f}: {g['energy']:8.3f} ± {g['error']:6.3f} meV "
        f"(acc {g['acceptance']:.2f})"
        for g in record["groups"]
    )
    print(f"step {record['step']:3d}   {groups}")

# %%
# The energy of each depth during training, next to the exact energy *without* interactions
# (filled plane-wave bands). With the neutralising Ewald background the Coulomb energy is negative,
# so the interacting energy drops below it (see :doc:`/concepts/physics`).
fig, ax = plt.subplots(figsize=(6, 3.5))
for i, V in enumerate((5.0, 25.0)):
    steps = [r["step"] for r in history]
    energy = np.array([r["groups"][i]["energy"] for r in history])
    error = np.array([r["groups"][i]["error"] for r in history])
    line = ax.errorbar(steps, energy, yerr=error, fmt="o-", ms=3, label=f"V = {V:g} meV")
    free = ham.noninteracting_ground_state(V=V).energy_meV
    ax.axhline(free, ls="--", color=line[0].get_color(), label=f"non-interacting, V = {V:g}")
ax.set_xlabel("optimisation step")
ax.set_ylabel("energy of 2 electrons [meV]")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Evaluate at a depth the model never saw
# ---------------------------------------
# A new sampler over a :class:`~qernel.sampler.ParameterList` that includes :math:`V = 15` meV,
# with the *training* normalisation, and a new ``MCState`` with the trained parameters.
evaluation_space = ParameterList([5.0, 15.0, 25.0], ("V",),
                                 center=space.center, scale=space.scale)
evaluation_sampler = make_sampler(ham.hilbert, evaluation_space, n_chains=24, sweep_size=2)
evaluation = nk.vqs.MCState(evaluation_sampler, model, n_samples=1536, n_discard_per_chain=2,
                            seed=2)
evaluation.parameters = vstate.parameters
evaluator = FoundationVMC(ham, evaluation, optax.sgd(0.0), preconditioner=None)
for _ in range(5):
    thermalise(evaluation, 10)
    evaluator.adapt()

# %%
# :func:`qernel.observables.measure` computes observables per parameter group from the same
# samples: the energy decomposition (user units) and the crystal order parameter
# :math:`|\langle\rho(\mathbf g)\rangle|` on the first moiré shell, which grows as the electrons
# localise on the moiré sites.
results = measure(evaluation, ham, which=("energy", "order_parameter", "density"),
                  options={"density": {"n_bins": 16}})
print(f"{'V [meV]':>8} {'E [meV]':>16} {'kinetic':>9} {'moiré':>9} {'Coulomb':>9} "
      f"{'|rho(g)|':>14}  trained")
for key, energy in results["energy"].items():
    order = results["order_parameter"][key].value
    V = energy.parameters["V"]
    print(f"{V:8.1f} {float(energy.total.mean):9.3f} ± {float(energy.total.error):5.3f} "
          f"{float(energy.kinetic.mean):9.3f} {float(energy.one_body.mean):9.3f} "
          f"{float(energy.interaction.mean):9.3f} "
          f"{float(order.mean):7.3f} ± {float(order.error):5.3f}"
          f"  {'yes' if V in (5.0, 25.0) else 'no'}")

# %%
# The charge density of each depth on the supercell (fractional coordinates along the two
# supercell vectors). The deep potential pins the electrons to the moiré sites.
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), sharey=True)
for ax, (key, density) in zip(axes, results["density"].items()):
    image = ax.imshow(np.asarray(density.density.mean).T, origin="lower", extent=(0, 1, 0, 1),
                      aspect="auto", cmap="viridis")
    ax.set_title(f"V = {density.parameters['V']:g} meV")
    ax.set_xlabel("s_1")
    fig.colorbar(image, ax=ax, shrink=0.8, label="electrons / a_M^2")
axes[0].set_ylabel("s_2")
fig.tight_layout()
print(f"total time {time.perf_counter() - start:.0f} s")
