"""Reference energies from simple, exactly specified states (independent of any trained model).

:func:`bloch_slater_energy`: the Slater determinant of the exact non-interacting Bloch orbitals
(plane-wave diagonalisation, :mod:`qernel.hamiltonian.bands`) evaluated, Coulomb included, on
the interacting moiré Hamiltonian by Monte Carlo. It is a variational upper bound to the
interacting ground-state energy, the natural baseline a correlated wavefunction must beat.
:func:`bloch_determinant` gives the same determinant's energy exactly, in the plane-wave basis of
Hartree-Fock (no sampling error; the two agree within the Monte Carlo error, tested).

:func:`slater_energy_mc`: the same Monte Carlo evaluation for any Slater determinant of
:class:`~qernel.hamiltonian.bands.BlochOrbitals` (e.g. the Hartree-Fock determinant of
:mod:`qernel.reference.hartree_fock`), with qernel's sampler and local energy (real-space Ewald).
"""

from __future__ import annotations

import haiku as hk
import jax.numpy as jnp
import netket as nk
import numpy as np

from ..hamiltonian import MoireHamiltonian
from ..hamiltonian.bands import BlochOrbitals, slater_log_amplitude
from ..sampler import ParameterList, make_sampler

__all__ = ["bloch_determinant", "bloch_slater_energy", "slater_energy_mc"]


def bloch_determinant(hamiltonian, V: float, cutoff: float | None = None) -> dict:
    """Exact plane-wave energy (meV) of the determinant of the lowest non-interacting levels, and its parts."""
    from .hartree_fock import determinant_energy
    from .planewave import PlaneWaveBasis

    basis = PlaneWaveBasis.from_hamiltonian(hamiltonian, V=V, cutoff=cutoff)
    w, v = np.linalg.eigh(basis.one_body_matrix())
    parts = determinant_energy(basis, v[:, : hamiltonian.n_up].T, v[:, : hamiltonian.n_down].T)
    n = hamiltonian.n_electrons
    return {"method": "bloch", "V_meV": float(V), "n_electrons": n, "n_up": hamiltonian.n_up,
            "n_down": hamiltonian.n_down, "energy_meV": parts["energy_meV"],
            "energy_per_electron_meV": parts["energy_meV"] / n,
            **{k: val for k, val in parts.items() if k != "energy_meV"},
            "noninteracting_energy_meV": float(w[: hamiltonian.n_up].sum() + w[: hamiltonian.n_down].sum()),
            "n_plane_waves": basis.n_pw, "cutoff": basis.cutoff}


def bloch_slater_energy(
    hamiltonian: MoireHamiltonian, V: float, *, n_samples: int = 4096, n_chains: int = 64, seed: int = 0
) -> tuple[float, float]:
    """Energy (meV) and its Monte Carlo error of the non-interacting Bloch Slater determinant at depth V.

    Args:
        hamiltonian: the (interacting) moiré Hamiltonian; its supercell and spin sector are used.
        V: moiré depth in meV for both the orbitals and the Hamiltonian.
        n_samples, n_chains, seed: Monte Carlo settings.
    """
    exact = hamiltonian.noninteracting_ground_state(V=V)
    down = exact.orbitals_down if hamiltonian.n_down else None
    return slater_energy_mc(hamiltonian, V, exact.orbitals_up, down, n_samples=n_samples, n_chains=n_chains, seed=seed)


def slater_energy_mc(
    hamiltonian: MoireHamiltonian,
    V: float,
    orbitals_up: BlochOrbitals,
    orbitals_down: BlochOrbitals | None = None,
    *,
    n_samples: int = 4096,
    n_chains: int = 64,
    n_discard_per_chain: int = 50,
    seed: int = 0,
) -> tuple[float, float]:
    """Monte Carlo energy (meV) and its error of the Slater determinant of the given orbitals.

    Args:
        hamiltonian: the (interacting) moiré Hamiltonian; its supercell and spin sector are used.
        V: moiré depth in meV of the Hamiltonian.
        orbitals_up, orbitals_down: occupied orbitals per spin (internal units, ``n_up`` and ``n_down`` of them).
        n_samples, n_chains, n_discard_per_chain, seed: Monte Carlo settings.
    """
    logpsi = slater_log_amplitude(orbitals_up, orbitals_down if hamiltonian.n_down else None)
    n = hamiltonian.n_electrons

    def model(x):
        positions, _ = hamiltonian.hilbert.split(x)
        return logpsi(positions) + hk.get_parameter("zero", (), init=jnp.zeros)  # MCState needs a parameter

    names = hamiltonian.conditioned_on
    point = [V if name == "V" else hamiltonian.parameters[name] for name in names]
    space = ParameterList([point], names)
    sampler = make_sampler(hamiltonian.hilbert, space, n_chains=n_chains, sweep_size=2 * n)
    vstate = nk.vqs.MCState(sampler, hk.transform(model), n_samples=n_samples,
                            n_discard_per_chain=n_discard_per_chain, seed=seed, sampler_seed=seed)
    stats = vstate.expect(hamiltonian.operator())
    unit = hamiltonian.energy_unit
    return float(np.real(stats.mean)) * unit, float(stats.error_of_mean) * unit
