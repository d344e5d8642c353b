"""Smoothness of the QERNEL wavefunction along single-electron line scans (issue 19, item 5).

A kink of psi (a jump of a first derivative) adds a delta function to the kinetic energy that
no pointwise Laplacian sees. Along a line ``t -> R + t u e_k`` (one electron moved) the test
compares the jump of the directional derivative ``g = dpsi/dt`` between neighbouring points with
the trapezoid integral of the second derivative ``h = d^2 psi / dt^2`` computed by autodiff: for a
C^2 function they agree to O(dt^3); a kink makes ``g`` jump by a finite amount while ``h`` stays
bounded. The scan uses the signed ``psi`` (not ``log|psi|``, which is singular on the nodes a line
of a fermion crosses), at parameters all moved off their initial values, for the QERNEL model with
a parameter-routed mixture of experts (4 experts, top 2) and with soft per-token routing; a
control adds an explicit kink and must be caught.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _perturb import perturbed

from qernel.ansatz import QERNELConfig, make_qernel
from qernel.geometry.hilbert import ElectronHilbert
from qernel.geometry.lattice import triangular_lattice

CELL = triangular_lattice(1.0).supercell(2)
CONFIG = QERNELConfig(
    n_layers=2, width=16, num_heads=4, num_kv_heads=2, ffn_hidden=16, num_experts=4, top_k=2,
    n_determinants=2, film_hidden=8, cusp_coupling=1.5, complex_output=False, log_abs_only=False,
)


def _perturbed(model, hilbert, seed):
    x = jnp.concatenate([CELL.to_cartesian(jax.random.uniform(jax.random.PRNGKey(seed), (hilbert.n_electrons, 2))).reshape(-1),
                         jnp.array([12.0])])
    params = model.init(jax.random.PRNGKey(seed), x[None])
    return perturbed(params, seed + 100, scale=0.2), x  # every parameter moved


def _kink_ratio(psi_of_x, x0, electron, direction, n_points=1201, half_length=0.6):
    """max_i |g_{i+1} - g_i - (h_i + h_{i+1}) dt / 2| / (dt max|h| + tiny) along the line."""

    def psi_t(t):
        return psi_of_x(x0.at[2 * electron : 2 * electron + 2].add(t * direction))

    g = jax.grad(psi_t)
    h = jax.grad(g)
    t = jnp.linspace(-half_length, half_length, n_points)
    gs, hs = jax.vmap(g)(t), jax.vmap(h)(t)
    dt = float(t[1] - t[0])
    mismatch = jnp.abs(jnp.diff(gs) - 0.5 * (hs[1:] + hs[:-1]) * dt)
    return float(jnp.max(mismatch) / (dt * jnp.max(jnp.abs(hs)) + 1e-300))


def _signed_psi(model, params):
    def psi(x):
        log_psi = model.apply(params, None, x[None])[0]
        return jnp.real(jnp.exp(log_psi))

    return psi


@pytest.mark.parametrize(
    "routing", [pytest.param("parameters", marks=pytest.mark.slow), "tokens_soft"]  # ~2.5 min each; one by default
)
def test_line_scans_show_no_kink_at_perturbed_parameters(routing):
    config = CONFIG if routing == "parameters" else CONFIG.replace(routing="tokens_soft", top_k=4)
    hilbert = ElectronHilbert(2, 1, CELL, ("V",))
    model = make_qernel(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0])
    params, x0 = _perturbed(model, hilbert, seed=3)
    psi = _signed_psi(model, params)
    rng = np.random.default_rng(0)
    for _ in range(2):
        electron = int(rng.integers(hilbert.n_electrons))
        angle = rng.uniform(0, 2 * np.pi)
        direction = jnp.array([np.cos(angle), np.sin(angle)])
        assert _kink_ratio(psi, x0, electron, direction) < 0.02


def test_line_scan_detects_an_explicit_kink():
    """Control: psi times (1 + 0.05 |x_0 - c|), a kink crossing the scanned line, is caught."""
    hilbert = ElectronHilbert(2, 1, CELL, ("V",))
    model = make_qernel(CONFIG, hilbert, parameter_center=[15.0], parameter_scale=[10.0])
    params, x0 = _perturbed(model, hilbert, seed=3)
    smooth = _signed_psi(model, params)

    def kinked(x):
        return smooth(x) * (1.0 + 0.05 * jnp.abs(x[0] - x0[0] - 0.1))

    direction = jnp.array([1.0, 0.0])
    assert _kink_ratio(smooth, x0, 0, direction) < 0.02
    assert _kink_ratio(kinked, x0, 0, direction) > 0.2
