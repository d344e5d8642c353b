"""<S^2> estimator and spin-flip symmetrisation (issue 19, item 6) against exact spin states."""

from __future__ import annotations

import math

import haiku as hk
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

from qernel.ansatz.slater_jastrow import SlaterJastrowConfig, make_slater_jastrow
from qernel.ansatz.spin_flip import flip_spins, spin_flip_symmetric
from qernel.geometry import split_sample
from qernel.hamiltonian.trap import HarmonicTrap
from qernel.observables.spin import exchange_pairs, local_spin_squared, spin_squared
from qernel.sampler import adapt_step_sizes, make_sampler, thermalise


def _two_electron_model(spatial):
    """Haiku model of a signed two-electron spatial function spatial(r1, r2) -> psi (real)."""

    def forward(x):
        positions, _ = split_sample(x, 2)
        value = jax.vmap(lambda p: spatial(p[0], p[1]))(positions.reshape(-1, 2, 2)).reshape(x.shape[:-1])
        shift = hk.get_parameter("d", (), init=lambda *_: jnp.asarray(0.5))
        return jnp.log(value.astype(complex) * jnp.exp(0.0 * shift))

    return hk.transform(forward)


def _gauss(r, center):
    return jnp.exp(-0.5 * jnp.sum((r - center) ** 2))


def _state(ham, model, n_samples=8192, seed=0):
    sampler = make_sampler(ham.hilbert, n_chains=32, sweep_size=4)
    vstate = nk.vqs.MCState(sampler, model, n_samples=n_samples, n_discard_per_chain=0, seed=seed, sampler_seed=seed)
    for _ in range(4):
        thermalise(vstate, 10)
        adapt_step_sizes(vstate, 0.5)
    return vstate


def test_exchange_pairs():
    assert exchange_pairs(2, 1).tolist() == [[2, 1, 0], [0, 2, 1]]
    assert exchange_pairs(3, 0).shape == (0, 3)


def test_two_electron_singlet_triplet_and_unrestricted_product():
    """N = 2: a symmetric spatial function is a singlet (S^2_loc = 0 on every sample), an
    antisymmetric one a triplet (2 on every sample); the unrestricted product a(r1) b(r2) of two
    unit-width Gaussians centered at +-d has <S^2> = 1 - <a|b>^2 = 1 - exp(-2 |d|^2) (normalised
    overlap <a|b> = exp(-|2d|^2 / 4)); its spin-flip symmetrisation (+1) is a singlet again."""
    ham = HarmonicTrap(2, omega=1.0)
    d = jnp.array([0.5, 0.0])
    models = {
        "singlet": _two_electron_model(lambda a, b: _gauss(a, 0) * _gauss(b, 0) * (1 + jnp.linalg.norm(a - b))),
        "triplet": _two_electron_model(lambda a, b: _gauss(a, 0) * _gauss(b, 0) * (a[0] - b[0])),
        "product": _two_electron_model(lambda a, b: _gauss(a, d) * _gauss(b, -d)),
    }
    results = {}
    for name, model in models.items():
        vstate = _state(ham, model)
        logpsi = lambda x, v=vstate: v._apply_fun({"params": v.parameters}, x)  # noqa: E731
        local = np.asarray(local_spin_squared(logpsi, vstate.samples, 1, 1))
        results[name] = (local, spin_squared(logpsi, vstate.samples, 1, 1))
    np.testing.assert_allclose(results["singlet"][0], 0.0, atol=1e-12)
    np.testing.assert_allclose(results["triplet"][0], 2.0, atol=1e-12)
    exact = 1.0 - math.exp(-2 * 0.5**2)
    product = results["product"][1]
    assert abs(float(product.mean) - exact) < 4 * float(product.error_blocking), (float(product.mean), exact)
    assert float(product.error_blocking) < 0.05

    symmetric = spin_flip_symmetric(models["product"], ham.hilbert, parity=1)
    vstate = _state(ham, symmetric, n_samples=512)
    logpsi = lambda x: symmetric.apply(vstate.parameters, None, x)  # noqa: E731
    np.testing.assert_allclose(np.asarray(local_spin_squared(logpsi, vstate.samples, 1, 1)), 0.0, atol=1e-10)


def test_closed_shell_determinant_is_a_singlet_and_flip_invariant():
    """3 up + 3 down in the same orbitals (1, x, y) x Gaussian: S = 0, so <S^2> = 0 within the error
    (the local values are not constant), and psi(F R) = psi(R) exactly."""
    ham = HarmonicTrap(6, omega=1.0, n_up=3)
    model = make_slater_jastrow(SlaterJastrowConfig(cusp_coupling=1.0, complex_output=False), ham.hilbert)
    vstate = _state(ham, model, n_samples=4096)
    logpsi = lambda x: vstate._apply_fun({"params": vstate.parameters}, x)  # noqa: E731
    x = vstate.samples.reshape(-1, ham.hilbert.size)[:64]
    np.testing.assert_allclose(np.asarray(logpsi(flip_spins(x, 3))), np.asarray(logpsi(x)), atol=1e-10)
    est = spin_squared(logpsi, vstate.samples, 3, 3)
    assert np.std(np.asarray(local_spin_squared(logpsi, vstate.samples[:2], 3, 3))) > 1e-3
    assert abs(float(est.mean)) < 4 * float(est.error_blocking) and float(est.error_blocking) < 0.1


def test_spin_flip_wrapper_rejects_bad_use():
    ham = HarmonicTrap(3, omega=1.0)
    model = make_slater_jastrow(SlaterJastrowConfig(complex_output=False), ham.hilbert)
    with pytest.raises(ValueError, match="n_up == n_down"):
        spin_flip_symmetric(model, ham.hilbert)
    ham2 = HarmonicTrap(2, omega=1.0)
    with pytest.raises(ValueError, match="parity"):
        spin_flip_symmetric(make_slater_jastrow(SlaterJastrowConfig(), ham2.hilbert), ham2.hilbert, parity=0)
    unsigned = spin_flip_symmetric(make_slater_jastrow(SlaterJastrowConfig(complex_output=False, log_abs_only=True), ham2.hilbert), ham2.hilbert)
    x = jnp.ones((1, 4))
    params = unsigned.init(jax.random.PRNGKey(0), x)
    with pytest.raises(ValueError, match="log_abs_only=False"):
        unsigned.apply(params, None, x)
