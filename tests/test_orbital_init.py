"""Reference-informed start of the orbitals (``QERNELConfig.orbital_init = "plane_waves"``).

With the orbital weights at zero the model is exactly ``K x`` the free-electron Fermi-sea
determinant of the envelope's plane waves, whatever the transformer computes: checked against a
NumPy determinant of ``exp(i k_j . r_i)`` and against the analytic kinetic energy of a product of
plane waves, ``1/2 sum_j |k_j|^2`` at every sample (a determinant of kinetic eigenfunctions is one).
At the shipped weight scale the start stays within ~10 % of that determinant.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qernel.ansatz import QERNELConfig, make_qernel
from qernel.ansatz import orbitals as orbitals_module
from qernel.ansatz.orbitals import plane_wave_columns
from qernel.geometry.hilbert import ElectronHilbert
from qernel.geometry.lattice import triangular_lattice
from qernel.hamiltonian.operators import local_kinetic_energy

CELL = triangular_lattice(1.0).supercell(2)
TINY = QERNELConfig(n_layers=1, width=16, num_heads=4, num_kv_heads=2, ffn_hidden=16, num_experts=2, top_k=1,
                    n_determinants=2, film_hidden=8, use_jastrow=False, orbital_init="plane_waves")
SECTORS = [(4, 0), (3, 2)]  # polarised, and a mixed sector (full determinant with off-diagonal blocks)


def _samples(hilbert: ElectronHilbert, n: int, seed: int = 0) -> jnp.ndarray:
    s = jax.random.uniform(jax.random.PRNGKey(seed), (n, hilbert.n_electrons, 2))
    positions = CELL.to_cartesian(s).reshape(n, -1)
    return jnp.concatenate([positions, jnp.full((n, 1), 12.0)], axis=1)


def _model(n_up, n_down, config):
    hilbert = ElectronHilbert(n_up, n_down, CELL, ("V",))
    return hilbert, make_qernel(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0])


def _fermi_sea_log_det(positions: np.ndarray, n_up: int, n_down: int, complex_output: bool) -> np.ndarray:
    """log det of each spin's plane-wave matrix (rows: electrons, columns: the envelope's n_sigma waves), summed."""
    total = np.zeros(len(positions), dtype=complex)
    for start, n in ((0, n_up), (n_up, n_down)):
        if not n:
            continue
        k, phase = plane_wave_columns(CELL, n, complex_output)
        arg = np.einsum("bid,jd->bij", positions[:, start:start + n], k) - phase
        matrix = np.exp(1j * arg) if complex_output else np.cos(arg)
        sign, logdet = np.linalg.slogdet(matrix)
        total += logdet + np.log(sign.astype(complex))
    return total


@pytest.mark.parametrize("n_up,n_down,fused,complex_output",
                         [(4, 0, True, True), (3, 2, True, True), (3, 2, False, True), (3, 2, True, False)])
def test_zero_weights_give_exactly_the_fermi_sea_determinant(monkeypatch, n_up, n_down, fused, complex_output):
    monkeypatch.setattr(orbitals_module, "PLANE_WAVE_INIT_WEIGHT_SCALE", 0.0)
    config = TINY.replace(fused_determinant=fused, complex_output=complex_output)
    hilbert, model = _model(n_up, n_down, config)
    x = _samples(hilbert, 6)
    params = model.init(jax.random.PRNGKey(0), x[:1])
    log_psi = np.asarray(model.apply(params, None, x))
    positions = np.asarray(x[:, :-1]).reshape(len(x), -1, 2)
    expected = np.log(TINY.n_determinants) + _fermi_sea_log_det(positions, n_up, n_down, complex_output)
    np.testing.assert_allclose(log_psi.real, expected.real, atol=1e-9)
    # the phase modulo 2 pi (real orbitals: modulo the sign convention of log of a negative number)
    np.testing.assert_allclose(np.exp(1j * (log_psi.imag - expected.imag)), 1.0, atol=1e-9)


@pytest.mark.parametrize("n_up,n_down", SECTORS)
def test_zero_weights_kinetic_energy_is_the_sum_of_plane_wave_energies(monkeypatch, n_up, n_down):
    monkeypatch.setattr(orbitals_module, "PLANE_WAVE_INIT_WEIGHT_SCALE", 0.0)
    hilbert, model = _model(n_up, n_down, TINY)
    x = _samples(hilbert, 4, seed=3)
    params = model.init(jax.random.PRNGKey(1), x[:1])
    log_psi = lambda p, batch: model.apply(p, None, batch)  # noqa: E731
    kinetic = jax.vmap(lambda xi: local_kinetic_energy(log_psi, params, xi, hilbert.n_electrons))(x)
    exact = sum(0.5 * np.sum(plane_wave_columns(CELL, n, True)[0] ** 2) for n in (n_up, n_down) if n)
    np.testing.assert_allclose(np.asarray(kinetic), exact, rtol=1e-8, atol=1e-8)


def test_shipped_scale_starts_near_the_fermi_sea_and_random_init_does_not():
    hilbert, near = _model(3, 2, TINY)
    _, random = _model(3, 2, TINY.replace(orbital_init="random"))
    x = _samples(hilbert, 32, seed=5)
    positions = np.asarray(x[:, :-1]).reshape(len(x), -1, 2)
    fermi_sea = np.log(TINY.n_determinants) + _fermi_sea_log_det(positions, 3, 2, True)

    def spread(model):  # std over samples of log|psi / psi_FS|: 0 for a multiple of the Fermi sea
        params = model.init(jax.random.PRNGKey(0), x[:1])
        return float(np.std(np.asarray(model.apply(params, None, x)).real - fermi_sea.real))

    assert spread(near) < 0.5 < spread(random), (spread(near), spread(random))


def test_bad_orbital_init_is_rejected_naming_the_field():
    with pytest.raises(ValueError, match="orbital_init must be one of"):
        TINY.replace(orbital_init="hartree_fock")
    with pytest.raises(ValueError, match="orbital_init='plane_waves' needs the plane-wave envelope"):
        TINY.replace(envelope="none")
    open_hilbert = ElectronHilbert(2, 0, None, ("V",))
    with pytest.raises(ValueError, match="needs plane-wave envelopes"):
        model = make_qernel(TINY, open_hilbert, parameter_center=[15.0], parameter_scale=[10.0])
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 5)))
