"""
References for the moiré problem: Bloch determinant, Hartree-Fock and band-projected ED
=========================================================================================

A neural wavefunction's energy means little on its own: it has to be placed against references. This tutorial
computes the three references of :mod:`qernel.reference` for WSe2/WS2 at filling 2/3 on the :math:`3\\times3`
moiré supercell (N = 6 spin-polarised electrons, :math:`\\epsilon = 5`), the setting of the QERNEL paper's
generalized Wigner crystal:

1. the **Bloch determinant**: the Slater determinant of the lowest non-interacting levels, evaluated with the
   Coulomb interaction (an upper bound; what a model must beat first);
2. **unrestricted Hartree-Fock** (:func:`~qernel.reference.hartree_fock.hartree_fock`): the best single
   determinant, free to break the moiré translations inside the supercell;
3. **band-projected exact diagonalisation** (:func:`~qernel.reference.ed.band_projected_ed`) in the lowest band:
   exact within that subspace, again an upper bound.

All three share one plane-wave basis and one Coulomb convention (:mod:`qernel.reference.planewave`), identical to
the real-space Ewald sum of qernel's Monte Carlo, so the numbers are directly comparable with a trained model's
energy. To keep the build fast the plane-wave cutoff is 2 (19 G vectors per k-point), which costs ~0.04 meV per
electron at V = 25 meV; the committed references in ``examples/reference_results/`` use the same cutoff.
"""

# %%
# Setup
# -----
import time

import matplotlib.pyplot as plt
import numpy as np

from qernel.hamiltonian import WSE2_WS2, MoireHamiltonian
from qernel.reference.ed import band_projected_ed
from qernel.reference.hartree_fock import determinant_energy, hartree_fock
from qernel.reference.planewave import PlaneWaveBasis

hamiltonian = MoireHamiltonian(**WSE2_WS2, supercell=3, filling=2 / 3)  # eps = 5, polarised
print("N =", hamiltonian.n_electrons, " n_up =", hamiltonian.n_up, " moiré cells =", hamiltonian.supercell.n_cells)
CUTOFF = 2.0

# %%
# The three references over V
# ---------------------------
# The Bloch determinant is built from the lowest eigenvectors of the one-body matrix (each one a Bloch state of
# one k-point) and evaluated exactly in the plane-wave basis by
# :func:`~qernel.reference.hartree_fock.determinant_energy`. Hartree-Fock runs from a non-interacting start and
# from a start seeded with a honeycomb crystal (two of the three :math:`\sqrt3\times\sqrt3` sublattices) and keeps
# the lower.
Vs = [0.0, 15.0, 30.0]
rows, hf_results = [], {}
start = time.perf_counter()
for V in Vs:
    basis = PlaneWaveBasis.from_hamiltonian(hamiltonian, V=V, cutoff=CUTOFF)
    _, vectors = np.linalg.eigh(basis.one_body_matrix())
    bloch = determinant_energy(basis, vectors[:, :6].T, np.zeros((0, basis.n_pw)))["energy_meV"]
    hf = hartree_fock(hamiltonian, basis=basis, starts=("noninteracting", "crystal"), max_iterations=150)
    ed = band_projected_ed(hamiltonian, n_bands=1, V=V, cutoff=CUTOFF)
    hf_results[V] = hf
    rows.append((V, bloch / 6, hf.energy_per_electron_meV, ed.energy_per_electron_meV, hf.gap_meV, hf.start))
print(f"{len(Vs)} values of V in {time.perf_counter() - start:.0f} s")
print(f"{'V [meV]':>8s} {'Bloch E/N':>10s} {'HF E/N':>10s} {'ED(1 band)':>11s} {'HF gap':>8s}  HF start   [meV]")
for V, b, h, e, gap, name in rows:
    print(f"{V:8.1f} {b:10.3f} {h:10.3f} {e:11.3f} {gap:8.2f}  {name}")

# %%
# Hartree-Fock and one-band ED lie at or below the Bloch determinant at every V: each is variational over a set of
# states that contains it. At V = 0 the two Hartree-Fock starts used here stay on the symmetric plane-wave
# determinant (it is stationary); a random start finds a lower, symmetry-broken determinant there
# (``qernel reference ... --method hf`` runs it, see ``examples/reference_results/``). One-band ED is exact within
# the lowest band but cannot mix in higher bands, Hartree-Fock can deform the orbitals but is one determinant: in
# this setting Hartree-Fock is the lower of the two once the moiré potential is on.
rows = np.array([r[:4] for r in rows])
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(rows[:, 0], rows[:, 1], "o-", label="Bloch determinant")
ax.plot(rows[:, 0], rows[:, 2], "s-", label="Hartree-Fock")
ax.plot(rows[:, 0], rows[:, 3], "^-", label="ED, lowest band")
ax.set_xlabel("V [meV]")
ax.set_ylabel("E / N [meV]")
ax.legend()
fig.tight_layout()

# %%
# Relative to the Bloch determinant the differences are easier to see:
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(rows[:, 0], rows[:, 2] - rows[:, 1], "s-", label="Hartree-Fock")
ax.plot(rows[:, 0], rows[:, 3] - rows[:, 1], "^-", label="ED, lowest band")
ax.axhline(0, color="0.6", lw=0.8)
ax.set_xlabel("V [meV]")
ax.set_ylabel("E / N - Bloch [meV]")
ax.legend()
fig.tight_layout()

# %%
# The Hartree-Fock density where the crystal forms
# ------------------------------------------------
# At V = 30 meV the Hartree-Fock determinant is a generalized Wigner crystal: the electrons sit on two of the three
# :math:`\sqrt3\times\sqrt3` sublattices of moiré sites (a honeycomb), the third is nearly empty. The density comes
# from :meth:`~qernel.reference.hartree_fock.HartreeFockResult.density` (electrons per nm²).
hf = hf_results[30.0]
positions, density = hf.density(n_grid=60)
fig, ax = plt.subplots(figsize=(5, 4))
mesh = ax.tripcolor(positions[..., 0].ravel(), positions[..., 1].ravel(), density.ravel(), shading="gouraud")
fig.colorbar(mesh, ax=ax, label="density [nm$^{-2}$]")
ax.set_aspect("equal")
ax.set_xlabel("x [nm]")
ax.set_ylabel("y [nm]")
ax.set_title(f"Hartree-Fock, V = 30 meV (start: {hf.start})")
fig.tight_layout()
print(f"HF at V = 30 meV: E/N = {hf.energy_per_electron_meV:.3f} meV, gap = {hf.gap_meV:.2f} meV, "
      f"kinetic {hf.kinetic_meV:.1f}, moiré {hf.moire_meV:.1f}, Hartree {hf.hartree_meV:.1f}, "
      f"exchange {hf.exchange_meV:.1f}, Madelung {hf.madelung_meV:.1f} meV")

# %%
# The determinant as a wavefunction
# ---------------------------------
# The occupied Hartree-Fock orbitals are :class:`~qernel.hamiltonian.bands.BlochOrbitals`, so the determinant is a
# JAX function that qernel's samplers accept (``slater_log_amplitude(hf.orbitals_up)``), and the targets of orbital
# pretraining. Its Monte Carlo energy (:func:`qernel.reference.slater_energy_mc`) equals the Hartree-Fock energy
# within error bars; ``tests/test_hartree_fock.py`` checks exactly that.
from qernel.hamiltonian import slater_log_amplitude  # noqa: E402

log_psi = slater_log_amplitude(hf.orbitals_up)
x = np.random.default_rng(0).uniform(0, 1, (6, 2)) @ hamiltonian.supercell.vectors
print("log psi at a random configuration:", complex(log_psi(x)))
