"""The exact non-interacting moiré state through NetKet's MCState.expect (non-interacting limit)."""

import haiku as hk
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

from qernel.geometry import split_sample
from qernel.hamiltonian import MoireHamiltonian
from qernel.hamiltonian.bands import slater_log_amplitude
from qernel.sampler import ParameterGrid, make_sampler


@pytest.mark.parametrize("supercell, n_up, n_down", [(2, 4, 0), (3, 7, 1)])
def test_bloch_slater_determinant_reproduces_exact_noninteracting_energy(supercell, n_up, n_down):
    """Slater determinant of the lowest Bloch orbitals (plane-wave diagonalisation, bands.py) sampled
    by qernel's sampler and evaluated with MCState.expect of the moiré operator at interaction 0:
    the energy equals the sum of the occupied band energies (an exact eigenstate, so the local
    energy is constant and the Monte Carlo error vanishes)."""
    ham = MoireHamiltonian(V=15.0, phi=45.0, m_star=0.35, a_M=8.031, eps=5.0, supercell=supercell,
                           n_electrons=n_up + n_down, n_up=n_up, interaction=0.0)
    exact = ham.noninteracting_ground_state()
    assert exact.closed_shell
    logpsi = slater_log_amplitude(exact.orbitals_up, exact.orbitals_down if n_down else None)

    def model(x):
        positions, _ = split_sample(x, ham.n_electrons)
        zero = hk.get_parameter("zero", (), init=jnp.zeros)  # MCState needs at least one parameter
        return logpsi(positions) + zero

    sampler = make_sampler(ham.hilbert, ParameterGrid([[15.0]], ("V",)), n_chains=16, sweep_size=2 * ham.n_electrons)
    vstate = nk.vqs.MCState(sampler, hk.transform(model), n_samples=256, n_discard_per_chain=20, seed=0)
    stats = vstate.expect(ham.operator())
    energy_meV = float(np.real(stats.mean)) * ham.energy_unit
    assert energy_meV == pytest.approx(exact.energy_meV, rel=1e-8, abs=1e-8)
    assert float(stats.variance) < 1e-12
    # and the decomposition: kinetic + moiré potential = total
    kinetic = float(np.real(vstate.expect(ham.kinetic_operator()).mean))
    potential = float(np.real(vstate.expect(ham.potential_operator("one_body")).mean))
    assert (kinetic + potential) * ham.energy_unit == pytest.approx(exact.energy_meV, rel=1e-8)


def test_plane_wave_state_is_not_the_moire_ground_state():
    """Guard: the V = 0 plane-wave determinant evaluated at V = 15 meV lies above the exact energy."""
    ham = MoireHamiltonian(supercell=3, n_electrons=7, interaction=0.0)
    free = MoireHamiltonian(V=0.0, supercell=3, n_electrons=7, interaction=0.0).noninteracting_ground_state()
    assert free.closed_shell
    logpsi = slater_log_amplitude(free.orbitals_up)

    def model(x):
        positions, _ = split_sample(x, 7)
        return logpsi(positions) + hk.get_parameter("zero", (), init=jnp.zeros)

    sampler = make_sampler(ham.hilbert, ParameterGrid([[15.0]], ("V",)), n_chains=32, sweep_size=14)
    vstate = nk.vqs.MCState(sampler, hk.transform(model), n_samples=2048, n_discard_per_chain=20, seed=1)
    stats = vstate.expect(ham.operator())
    exact = ham.noninteracting_ground_state().energy_meV
    assert float(np.real(stats.mean)) * ham.energy_unit > exact + 5 * float(stats.error_of_mean) * ham.energy_unit
