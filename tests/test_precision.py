"""Precision estimator tests against exact numbers for N > 2 (issue 19, item 1).

The state: the closed-shell Slater determinant of 3 up + 3 down electrons in the two lowest
Fock-Darwin shells of a 2D harmonic trap, orbitals ``1, x, y`` times ``exp(-omega r^2 / 2)``
(qernel's Slater-Jastrow baseline at initialisation with ``cusp_coupling = 0`` and
``length_scale = 1 / sqrt(omega)``). Exact facts about it:

* it is an eigenstate of the one-body part ``sum_i -1/2 nabla_i^2 + 1/2 omega^2 r_i^2`` with
  eigenvalue ``2 * (1 + 2 + 2) omega = 10 omega`` (each spin: one orbital of energy omega, two of
  2 omega), so kinetic + trap local energy is 10 omega on *every* sample;
* ``<V_ee> = (39/4) sqrt(pi/2) sqrt(omega)`` Ha. The coefficient is the first-order (Hartree
  minus exchange) Coulomb energy of the determinant at omega = 1 (issue 19; checked independently
  with a q-space quadrature of the Hartree and exchange integrals, 9.7488 with that grid). The
  omega scaling, derived: the orbitals depend on ``sqrt(omega) r`` only, so
  ``|Psi_omega(r)|^2 d^{2N} r = |Psi_1(sqrt(omega) r)|^2 d^{2N}(sqrt(omega) r)``; substituting
  ``u = sqrt(omega) r`` in ``<sum 1/|r_i - r_j|>`` gives ``sqrt(omega) <sum 1/|u_i - u_j|>_1``.

A trap term scaled by omega instead of omega^2 breaks the per-sample identity at omega != 1
(``test_one_body_local_energy_is_10_omega_on_every_sample``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

from qernel.ansatz.slater_jastrow import make_slater_jastrow
from qernel.hamiltonian.trap import HarmonicTrap
from qernel.observables import estimate
from qernel.sampler import adapt_step_sizes, make_sampler, thermalise

#: <V_ee> of the closed-shell N = 6 oscillator determinant at omega = 1, Ha (see module docstring)
VEE_N6_OMEGA1 = 9.75 * math.sqrt(math.pi / 2)


def _determinant_state(omega: float, *, n_chains: int = 32, n_samples: int = 512, seed: int = 0, cusp: float = 0.0):
    ham = HarmonicTrap(6, omega=omega, n_up=3)
    model = make_slater_jastrow(
        ham.hilbert, cusp_coupling=cusp, complex_output=False, log_abs_only=True,
        length_scale=1.0 / math.sqrt(omega),
    )
    sampler = make_sampler(ham.hilbert, n_chains=n_chains, sweep_size=6, init_width=1.0 / math.sqrt(omega))
    vstate = nk.vqs.MCState(sampler, model, n_samples=n_samples, n_discard_per_chain=0, seed=seed, sampler_seed=seed)
    for _ in range(6):  # 60 thermalisation sweeps, adapting the step width toward 50 % acceptance
        thermalise(vstate, 10)
        adapt_step_sizes(vstate, 0.5)
    return ham, vstate


@pytest.mark.parametrize("omega", [0.5, 2.0])
def test_one_body_local_energy_is_10_omega_on_every_sample(omega):
    """Kinetic (forward Laplacian) + trap local energy of the exact one-body eigenstate is 10 omega
    on every sample, to rounding; the interaction part is not constant (a real test of it below)."""
    ham, vstate = _determinant_state(omega, n_chains=16, n_samples=256)
    kinetic = np.asarray(vstate.local_estimators(ham.kinetic_operator()).data.real)
    trap = np.asarray(vstate.local_estimators(ham.potential_operator("one_body")).data.real)
    assert kinetic.shape == (16, 16)
    np.testing.assert_allclose(kinetic + trap, 10.0 * omega, rtol=0, atol=1e-9 * omega)
    assert np.std(trap) > 0.1 * omega  # the samples are spread out: the identity is not trivial


@pytest.mark.parametrize("omega", [1.0, 0.25])
def test_monte_carlo_coulomb_energy_of_the_closed_shell_determinant(omega):
    """qernel's sampler + interaction estimator give <V_ee> = 9.75 sqrt(pi/2) sqrt(omega) Ha at two
    omega (the sqrt(omega) scaling derived in the module docstring) within 4 error bars, and the
    error bar is below 1 % (the interaction variance of a cusp-less determinant diverges only
    logarithmically in 2D, so the mean converges)."""
    ham, vstate = _determinant_state(omega, n_chains=64, n_samples=16384, seed=1)
    interaction = np.asarray(vstate.local_estimators(ham.potential_operator("interaction")).data.real)
    est = estimate(interaction)
    exact = VEE_N6_OMEGA1 * math.sqrt(omega)
    assert float(est.error) < 0.01 * exact
    assert abs(float(est.mean) - exact) < 4 * float(est.error), (float(est.mean), float(est.error), exact)


def _independent_metropolis_energy(logpsi, omega, n_electrons, *, n_chains, n_steps, seed, step=0.35, thin=4):
    """Plain all-electron Metropolis on |psi|^2 and a local energy from jax.hessian (no qernel
    sampler, operator or forward Laplacian): returns local energies (n_chains, n_steps)."""

    def local_energy(x):
        grad = jax.grad(logpsi)(x)
        laplacian = jnp.trace(jax.hessian(logpsi)(x))
        r = x.reshape(n_electrons, 2)
        i, j = np.triu_indices(n_electrons, 1)
        coulomb = jnp.sum(1.0 / jnp.linalg.norm(r[i] - r[j], axis=-1))
        return -0.5 * (laplacian + grad @ grad) + 0.5 * omega**2 * jnp.sum(x**2) + coulomb

    log_prob = jax.vmap(lambda x: 2.0 * logpsi(x))
    energies = jax.jit(jax.vmap(local_energy))

    @jax.jit
    def sweep(carry, key):
        x, lp = carry
        k1, k2 = jax.random.split(key)
        proposal = x + step * jax.random.normal(k1, x.shape)
        lp_new = log_prob(proposal)
        accept = jnp.log(jax.random.uniform(k2, lp.shape)) < lp_new - lp
        return (jnp.where(accept[:, None], proposal, x), jnp.where(accept, lp_new, lp)), None

    key = jax.random.PRNGKey(seed)
    x = jax.random.normal(key, (n_chains, 2 * n_electrons)) / math.sqrt(omega)
    carry = (x, log_prob(x))
    for k in jax.random.split(jax.random.fold_in(key, 1), 300):  # thermalisation
        carry, _ = sweep(carry, k)
    out = []
    for t in range(n_steps):
        for k in jax.random.split(jax.random.fold_in(key, 10 + t), thin):
            carry, _ = sweep(carry, k)
        out.append(np.asarray(energies(carry[0])))
    return np.stack(out, axis=1)


@pytest.mark.slow
def test_slater_jastrow_energy_agrees_with_independent_metropolis():
    """Cusp-correct Slater-Jastrow (closed-shell determinant times the 2D cusp Jastrow, finite
    variance), N = 6, omega = 1: qernel's sampler + operator vs the plain Metropolis and
    jax.hessian local energy above, sharing only the model's forward pass. They agree within
    3 combined (blocking) error bars. This state is not optimised (local-energy variance ~1.2 Ha^2,
    tau ~4), so ~1e6 samples per side give a combined error of ~3 mHa; the issue's <= 1 mHa level
    needs ~10x more samples or an optimised (lower-variance) Jastrow."""
    from qernel.observables.blocking import blocking

    omega = 1.0
    ham, vstate = _determinant_state(omega, n_chains=256, n_samples=256 * 64, seed=5, cusp=1.0)
    blocks = []
    for _ in range(64):  # 64 x 16384 samples
        blocks.append(np.asarray(vstate.local_estimators(ham.operator()).data.real))
    qernel_energy = blocking(np.concatenate(blocks, axis=1))
    params = vstate.parameters
    apply = vstate._apply_fun

    def logpsi(x):
        return apply({"params": params}, x[None])[0]

    independent = blocking(_independent_metropolis_energy(logpsi, omega, 6, n_chains=256, n_steps=4096, seed=11))
    sigma = math.hypot(qernel_energy.error, independent.error)
    assert sigma < 4e-3, (qernel_energy, independent)
    assert abs(qernel_energy.mean - independent.mean) < 3 * sigma, (qernel_energy.mean, independent.mean, sigma)
