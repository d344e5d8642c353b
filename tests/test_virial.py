"""Virial theorem 2T - 2U + W = 0 for the harmonic trap (issue 19, item 4) on exact states, and its
failure on a state of the wrong length scale (the check can fail)."""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import netket as nk
import pytest

from qernel.geometry import split_sample
from qernel.hamiltonian.trap import HarmonicTrap
from qernel.observables import groups_from_state, local_energy_components
from qernel.observables.virial import trap_virial
from qernel.sampler import adapt_step_sizes, make_sampler, thermalise


def _virial(ham, logpsi, *, n_samples=8192, seed=0):
    def model(x):
        positions, _ = split_sample(x.reshape(-1, x.shape[-1]), ham.n_electrons)
        values = jax.vmap(logpsi)(positions).reshape(x.shape[:-1])
        return values + hk.get_parameter("zero", (), init=jnp.zeros)  # MCState needs a parameter

    sampler = make_sampler(ham.hilbert, n_chains=32, sweep_size=4)
    vstate = nk.vqs.MCState(sampler, hk.transform(model), n_samples=n_samples, n_discard_per_chain=0,
                            seed=seed, sampler_seed=seed)
    for _ in range(5):
        thermalise(vstate, 10)
        adapt_step_sizes(vstate, 0.5)
    components = local_energy_components(vstate, ham)
    (result,) = trap_virial(components, groups_from_state(vstate, ham)).values()
    return float(result.mean), float(result.error_blocking)


def _taut(scale: float):
    """Taut's exact N = 2 ground state at omega = 1 (E = 3 Ha, J. Phys. A 27, 1045 (1994)) for
    scale = 1: psi = (1 + r12) exp(-(r1^2 + r2^2) / 2); other scales are not eigenstates."""

    def logpsi(positions):
        r12 = jnp.linalg.norm(positions[0] - positions[1])
        return jnp.log1p(r12) - 0.5 * scale * jnp.sum(positions**2)

    return logpsi


def test_virial_holds_for_taut_exact_state_and_fails_at_wrong_scale():
    ham = HarmonicTrap(2, omega=1.0)
    value, error = _virial(ham, _taut(1.0))
    assert error < 0.1
    assert abs(value) < 4 * error, (value, error)
    # the Gaussian narrowed by 20 %: 2T - 2U + W is far from 0 (about +1 Ha)
    wrong, wrong_error = _virial(ham, _taut(1.2), seed=1)
    assert wrong > 6 * wrong_error and wrong > 0.5, (wrong, wrong_error)


@pytest.mark.parametrize("omega", [0.5, 2.0])
def test_virial_holds_for_noninteracting_determinant(omega):
    """Interaction 0, 3 + 3 electrons: the closed-shell oscillator determinant (orbitals 1, x, y
    times exp(-omega r^2 / 2)) is an eigenstate, so 2T = 2U (W = 0) at every omega; a trap term
    scaled by omega instead of omega^2 breaks it at omega != 1."""
    ham = HarmonicTrap(6, omega=omega, n_up=3, interaction=0.0)

    def logpsi(positions):
        def log_det(r):
            orbitals = jnp.stack([jnp.ones(3), r[:, 0], r[:, 1]], axis=-1)
            return jnp.log(jnp.abs(jnp.linalg.det(orbitals)))

        return log_det(positions[:3]) + log_det(positions[3:]) - 0.5 * omega * jnp.sum(positions**2)

    value, error = _virial(ham, logpsi, n_samples=4096)
    # 2T - 2U = 2E - 4U per sample is noisy (error ~ 0.3 omega here), but a trap term scaled by omega
    # instead of omega^2 moves the mean to -5 Ha (omega = 0.5) or +10 Ha (omega = 2): far outside
    assert error < 0.5 * omega
    assert abs(value) < 4 * error, (value, error)
