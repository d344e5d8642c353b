"""
The non-interacting limit: an exact check of the machinery
==========================================================

Before training anything, check qernel's pieces against an exact answer. Without the Coulomb
interaction the moiré problem is a single-particle problem: its Bloch bands follow from a
plane-wave diagonalisation, and the many-electron ground state in a periodic supercell is the
Slater determinant of the lowest Bloch orbitals at the supercell's commensurate k-points.

This tutorial

1. plots the moiré bands of WSe2/WS2 along :math:`\\Gamma - K - M - \\Gamma`;
2. builds the exact non-interacting ground state of 4 electrons in a :math:`2\\times2` supercell;
3. evaluates it as a NetKet variational state with qernel's sampler and Hamiltonian operator.

Because the determinant is an exact eigenstate, every sample has the same local energy: the Monte
Carlo estimate must equal the sum of the occupied band energies with zero variance. This checks the
kinetic operator (forward Laplacian), the moiré potential with its sign convention, the unit
conversions and the sampler in one go.
"""

# %%
# Moiré bands
# -----------
# :func:`~qernel.hamiltonian.moire_bands` takes wavevectors in nm\ :sup:`-1` and returns meV.
import haiku as hk
import jax.numpy as jnp
import matplotlib.pyplot as plt
import netket as nk
import numpy as np

from qernel.geometry import split_sample
from qernel.hamiltonian import (
    WSE2_WS2,
    MoireHamiltonian,
    high_symmetry_points,
    moire_bands,
    slater_log_amplitude,
)
from qernel.sampler import ParameterGrid, make_sampler

a_M = WSE2_WS2["a_M"]
points = high_symmetry_points(a_M)  # in 1/nm for a_M in nm
path = [points["Gamma"], points["K"], points["M"], points["Gamma"]]
segments = [np.linspace(p, q, 20, endpoint=False) for p, q in zip(path[:-1], path[1:])]
k = np.concatenate(segments + [path[-1][None]])
distance = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(k, axis=0), axis=1))])

fig, ax = plt.subplots(figsize=(5, 3.5))
for V in (5.0, 15.0, 25.0):
    bands = moire_bands(k, 3, V=V, phi=WSE2_WS2["phi"], m_star=WSE2_WS2["m_star"], a_M=a_M)
    lines = ax.plot(distance, bands, lw=1.2)
    for line in lines[1:]:
        line.set_color(lines[0].get_color())
    lines[0].set_label(f"V = {V:g} meV")
ticks = distance[[0, 20, 40, 60]]
ax.set_xticks(ticks, ["Γ", "K", "M", "Γ"])
for t in ticks:
    ax.axvline(t, color="0.8", lw=0.8)
ax.set_ylabel("band energy [meV]")
ax.set_title("lowest three moiré bands, WSe2/WS2")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The lowest band flattens as the potential deepens: the electrons localise on the moiré sites.
#
# The exact non-interacting ground state
# --------------------------------------
# ``interaction=0`` switches the Coulomb term off. The :math:`2\times2` supercell has four
# commensurate k-points; four spin-polarised electrons fill the lowest band at all of them, a
# closed shell.
V = 15.0
ham = MoireHamiltonian(**{**WSE2_WS2, "V": V}, supercell=2, n_electrons=4, interaction=0.0)
exact = ham.noninteracting_ground_state()
print(ham)
print("closed shell:", exact.closed_shell)
print("occupied (k index, band):", exact.occupied_up)
per_electron = exact.energy_meV / ham.n_electrons
print(f"exact energy: {exact.energy_meV:.6f} meV  ({per_electron:.6f} meV per electron)")

# %%
# The determinant as a NetKet variational state
# ----------------------------------------------
# :func:`~qernel.hamiltonian.slater_log_amplitude` turns the occupied Bloch orbitals into a JAX
# function ``log psi(positions)``. Wrapped in a Haiku model that reads the positions from the
# sample layout (and carries one dummy parameter, since ``MCState`` needs at least one), it is an
# ordinary NetKet model. The sampler's chains all carry :math:`V = 15` meV.
log_psi = slater_log_amplitude(exact.orbitals_up)


def model(x):
    positions, _ = split_sample(x, ham.n_electrons)
    zero = hk.get_parameter("zero", (), init=jnp.zeros)
    return log_psi(positions) + zero


sampler = make_sampler(ham.hilbert, ParameterGrid([V], ("V",)), n_chains=16, sweep_size=8)
vstate = nk.vqs.MCState(sampler, hk.transform(model), n_samples=512, n_discard_per_chain=20,
                        seed=0)

energy = vstate.expect(ham.operator())  # internal units: multiply by ham.energy_unit for meV
unit = ham.energy_unit
mc_energy = float(np.real(energy.mean)) * unit
print(f"Monte Carlo energy: {mc_energy:.6f} meV over {vstate.n_samples} samples, "
      f"variance {float(energy.variance) * unit**2:.1e} meV^2")
print(f"exact:              {exact.energy_meV:.6f} meV")
assert abs(mc_energy - exact.energy_meV) < 1e-6 * abs(exact.energy_meV)

# %%
# The kinetic and moiré energies of each sample fluctuate, but their sum does not: the local
# energy of an eigenstate is constant, so the variance vanishes up to rounding. The same check runs
# in the test suite (``tests/test_noninteracting.py``).
#
# The whole family at once
# ------------------------
# The exact non-interacting energy per electron as a function of the depth, the reference printed
# by ``qernel demo`` next to the interacting energies. (At :math:`V = 0` this filling is an open
# shell of the free-electron gas in this supercell, so the plot starts at 2 meV.)
depths = np.linspace(2.0, 30.0, 15)
per_electron = [ham.noninteracting_ground_state(V=v).energy_meV / ham.n_electrons
                for v in depths]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(depths, per_electron, "o-")
ax.set_xlabel("V [meV]")
ax.set_ylabel("E_nonint / N [meV]")
ax.set_title("exact non-interacting energy, 2x2 supercell, N = 4")
fig.tight_layout()
