"""Tests of qernel.observables on states with known answers.

Independent references (exact results, derived in the comments next to each use):
* Slater determinant of distinct plane waves e^{i k.r} (free fermions; here the closed shell of the
  7 shortest supercell reciprocal vectors): translation invariant, so the density is flat,
  n = N / A; the static structure factor is S(q) = 1 - c(q) / N_sigma summed over spins, with c(q)
  the number of occupied k such that k + q is occupied (Pines & Nozieres, The Theory of Quantum
  Liquids, ch. 2: S(q) = (1/N) sum_k n_k (1 - n_{k+q}) for a filled Fermi sea); the like-spin
  pair correlation is g(r) = (N^2 - |sum_k e^{i k.r}|^2) / (N (N - 1)) (the exchange hole of a
  determinant, ibid.), g -> 0 at r -> 0 (Pauli), and unlike spins are uncorrelated, g_ud = 1.
* Independent Gaussians |psi|^2 ~ prod_i exp(-|r_i - R_i|^2 / s^2) on lattice sites R_i
  (per-coordinate variance s^2 / 2): the density form factor is f(q) = exp(-q^2 s^2 / 4)
  (characteristic function of a normal distribution; for the periodically wrapped Gaussian it
  holds exactly at reciprocal-lattice q), so <rho(q)> = f(q) (1/N) sum_i e^{-i q.R_i},
  S(q) = 1 - f^2 + f^2 |sum_i e^{-i q.R_i}|^2 / N (Bragg peaks ~ N f^2 at the moiré g), the
  connected S_c = 1 - f^2; local kinetic energy sum_i (1/s^2 - |d_i|^2 / (2 s^4)) with mean
  N / (2 s^2), and <Delta(r_i)> = -2 V sum_j cos(g_j.R_i + phi) f(g).
* Uncorrelated uniform particles in any periodic cell: g(r) = 1 exactly (minimum-image
  normalisation), S(q) = 1 for q != 0, flat density.
* Non-interacting moiré ground state (filled Bloch band, qernel.hamiltonian.bands plane-wave
  diagonalisation): <rho(G)> = (1/N) sum_n sum_G' c_{n,G'+G} c*_{n,G'} from the Bloch coefficients.

The sampled determinant states are only evaluated on one batch of chains at a time (at most 128
small matrices per LAPACK call) and the energy test, which needs the Laplacian of log psi over the
whole batch, uses a determinant-free state: large batched LAPACK calls (hundreds of matrices, e.g.
the kinetic energy of a determinant over all samples) were seen to deadlock in jaxlib 0.10.2's
CPU runtime on this 2-core machine.
"""

from __future__ import annotations

import json
import math

import qernel  # noqa: F401  (imported before netket: selects qernel's XLA CPU settings)
import haiku as hk
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.hamiltonian.bands import noninteracting_ground_state
from qernel.geometry.hilbert import join_sample, split_sample
from qernel.geometry.lattice import Supercell, square_lattice, triangular_lattice
from qernel.hamiltonian.moire import MoireHamiltonian
from qernel.hamiltonian.moire_potential import moire_g_vectors
from qernel.hamiltonian.trap import HarmonicTrap
from qernel.observables import (
    ParameterGroups,
    crystal_order_parameter,
    density_fourier,
    density_map,
    energy_decomposition,
    estimate,
    first_shell,
    groups_from_samples,
    local_energy_components,
    measure,
    measure_energy,
    pair_correlation,
    potential_energy_components,
    reciprocal_points,
    structure_factor,
    to_json,
)
from qernel.sampler import ParameterGrid, adapt_step_sizes, make_sampler

CELL3 = Supercell(triangular_lattice(1.0), 3)  # 3 x 3 moiré cells, lengths in a_M


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _z(estimate_, exact):
    """z-scores (mean - exact) / error; requires finite, positive errors."""
    error = np.asarray(estimate_.error)
    assert np.all(np.isfinite(error)) and np.all(error > 0), error
    return (np.asarray(estimate_.mean) - exact) / error


def _assert_consistent(estimate_, exact, *, max_z=5.0):
    """Every |z| < max_z, and the mean z^2 (chi^2 per component) below ~ its 99.99% quantile
    for K components, allowing pairs of components to be fully correlated (S(q) = S(-q))."""
    z = np.ravel(_z(estimate_, exact))
    assert np.max(np.abs(z)) < max_z, z
    assert np.mean(z**2) < max(1 + 10 / math.sqrt(z.size), max_z**2 / z.size), z


def _closed_shell(cell: Supercell, n: int) -> np.ndarray:
    """The n shortest supercell reciprocal vectors (including 0); asserts the shell is closed."""
    q = np.concatenate([np.zeros((1, 2)), reciprocal_points(cell, 3.0 * np.linalg.norm(cell.reciprocal_vectors[0]))])
    length = np.linalg.norm(q, axis=1)
    assert length[n] > length[n - 1] + 1e-9  # closed shell: unique ground state
    return q[:n]


def _plane_wave_model(k, n_up, n_down):
    """log psi = log det[e^{i k_n . r_i}] per spin block (both blocks in one slogdet call)."""
    k = np.asarray(k)
    n = n_up + n_down
    assert n_down in (0, n_up)

    def f(x):
        pos, _ = split_sample(x, n)
        s = hk.get_parameter("s", (), init=jnp.ones, dtype=x.dtype)  # NetKet needs a parameter
        blocks = pos.reshape(*pos.shape[:-2], n // n_up, n_up, 2)
        sign, logabs = jnp.linalg.slogdet(jnp.exp(1j * (blocks @ jnp.asarray(k, x.dtype).T)))
        return s * jnp.sum(logabs + 1j * jnp.angle(sign), axis=-1)

    return hk.transform(f)


def _sampled_state(hamiltonian, model, space, *, n_chains, chain_length, sweep_size, seed, start=None,
                   initial_sigma=None):
    sampler = make_sampler(hamiltonian.hilbert, space, n_chains=n_chains, sweep_size=sweep_size,
                           initial_sigma=initial_sigma)
    vstate = nk.vqs.MCState(sampler, model, n_samples=n_chains * chain_length,
                            n_discard_per_chain=chain_length, seed=seed, sampler_seed=seed + 1)
    if start is not None:  # start the chains at given positions (n_chains, N, 2)
        state = vstate.sampler_state
        _, params = split_sample(state.σ, hamiltonian.n_electrons)
        vstate.sampler_state = state.replace(σ=join_sample(jnp.asarray(start, state.σ.dtype), params))
    for _ in range(5):
        vstate.sample(n_samples=n_chains * 10)
        adapt_step_sizes(vstate, 0.5)
    vstate.sample()
    return vstate


def _exact_free_g(k, edges, n_r=40, n_theta=96):
    """Annulus averages of g(r) = (N^2 - |sum_k e^{ik.r}|^2) / (N (N-1)) (midpoint rule)."""
    n = len(k)
    theta = (np.arange(n_theta) + 0.5) * 2 * np.pi / n_theta
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        r = lo + (np.arange(n_r) + 0.5) * (hi - lo) / n_r
        pts = r[:, None, None] * np.stack([np.cos(theta), np.sin(theta)], -1)[None]
        s = np.abs(np.exp(1j * pts @ k.T).sum(-1)) ** 2
        g = (n**2 - s) / (n * (n - 1))
        out.append(np.sum(g.mean(1) * r) / np.sum(r))
    return np.array(out)


def _overlap_count(k, q):
    """c(q) = #{k in occ: k + q in occ} for each q (M, 2)."""
    occupied = {tuple(np.round(v, 8)) for v in k}
    return np.array([sum(tuple(np.round(v + qq, 8)) in occupied for v in k) for qq in q])


# ------------------------------------------------------------------------------------------------
# free fermions: flat density, S(q), exchange hole
# ------------------------------------------------------------------------------------------------
def test_polarised_plane_wave_determinant_flat_density_free_fermion_sq_and_pauli_hole():
    n = 7
    ham = MoireHamiltonian(V=0.0, supercell=3, n_electrons=n, conditioned_on=())
    k = _closed_shell(CELL3, n)
    vstate = _sampled_state(ham, _plane_wave_model(k, n, 0), None, n_chains=64, chain_length=60,
                            sweep_size=4, seed=0)
    results = measure(vstate, ham, which=("density", "structure_factor", "pair_correlation", "order_parameter"),
                      options={"density": {"n_bins": 6}, "pair_correlation": {"n_bins": 10}})
    assert all(list(r) == [()] for r in results.values())  # one group, key () (no carried parameters)

    # density: flat n = N / A (translation invariance), integrates to N exactly
    dmap = results["density"][()]
    assert dmap.density.mean.shape == (6, 6)
    assert np.sum(dmap.density.mean) * dmap.bin_area == pytest.approx(n, rel=1e-12)
    _assert_consistent(dmap.density, n / CELL3.area)

    # S(q) = 1 - c(q) / N at every supercell reciprocal vector up to the default cutoff
    sq = results["structure_factor"][()]
    exact = 1.0 - _overlap_count(k, sq.q) / n
    assert exact.min() < 0.5 and exact.max() == 1.0  # the test spans the Pauli dip and S = 1
    _assert_consistent(sq.S, exact)
    # the error bars resolve the Pauli suppression on the first shell (S = 3/7 there)
    assert np.all(sq.S.error[:6] < 0.1 * (1 - exact[:6]))
    # with a flat density the connected part equals S (within the 1/n_samples bias)
    np.testing.assert_allclose(sq.S_connected.mean, sq.S.mean, atol=5 * np.max(sq.S.error))

    # g(r): exchange hole of the determinant, annulus-averaged; g(first bin) ~ 0 (Pauli)
    gr = results["pair_correlation"][()]
    assert list(gr.g) == ["total"]
    _assert_consistent(gr.g["total"], _exact_free_g(k, gr.r_edges))
    assert gr.g["total"].mean[0] < 0.1 and gr.g["total"].mean[-1] > 0.8

    # no potential: <rho(g)> = 0 within errors, and below 3x the noise floor
    order = results["order_parameter"][()]
    _assert_consistent(order.components.real, 0.0)
    _assert_consistent(order.components.imag, 0.0)
    assert order.value.mean < 3 * order.noise_floor


def test_unpolarised_plane_waves_spin_resolved_pair_correlation():
    n_sigma = 7
    ham = MoireHamiltonian(V=0.0, supercell=3, n_electrons=2 * n_sigma, n_up=n_sigma, conditioned_on=())
    k = _closed_shell(CELL3, n_sigma)
    vstate = _sampled_state(ham, _plane_wave_model(k, n_sigma, n_sigma), None, n_chains=64, chain_length=60,
                            sweep_size=4, seed=3)
    gr = pair_correlation(vstate.samples, ham, n_bins=8)[()]
    assert set(gr.g) == {"total", "up_up", "up_down", "down_down"}
    exact_like = _exact_free_g(k, gr.r_edges)
    _assert_consistent(gr.g["up_up"], exact_like)
    _assert_consistent(gr.g["down_down"], exact_like)
    _assert_consistent(gr.g["up_down"], 1.0)  # opposite spins are uncorrelated in a product of determinants
    # total = pair-count weighted mix: 21 up-up, 21 down-down and 49 up-down pairs of 91
    _assert_consistent(gr.g["total"], (42 * exact_like + 49) / 91)
    assert exact_like[0] < 0.1 and gr.g["up_up"].mean[0] < 0.15 < 0.85 < gr.g["up_down"].mean[0]

    # S(q) of the two independent Fermi seas: 1 - 2 c(q) / 14
    sq = structure_factor(vstate.samples, ham)[()]
    _assert_consistent(sq.S, 1.0 - 2 * _overlap_count(k, sq.q) / (2 * n_sigma))


# ------------------------------------------------------------------------------------------------
# Gaussian crystal: Bragg peaks, peaked density, |rho(g)|
# ------------------------------------------------------------------------------------------------
# one site per moiré cell, at fractional supercell coordinates ((i + 1/2) / 3, (j + 1/2) / 3)
_CELL_INDEX = np.stack(np.meshgrid(np.arange(3), np.arange(3), indexing="ij"), -1).reshape(-1, 2)
SITES = (_CELL_INDEX + 0.5) @ triangular_lattice(1.0).vectors


def _gaussian_crystal_samples(widths, n_chains_per_group, chain_length, dtype, seed=0):
    """Exact independent samples of |psi|^2 = prod_i exp(-|r_i - R_i|^2 / s^2), wrapped into the cell;
    group g carries V = list(widths)[g]."""
    rng = np.random.default_rng(seed)
    rows = []
    for V, s in widths.items():
        noise = rng.normal(scale=s / math.sqrt(2), size=(n_chains_per_group, chain_length, 9, 2))
        pos = np.asarray(CELL3.wrap(jnp.asarray(SITES + noise)))
        rows.append(np.asarray(join_sample(jnp.asarray(pos), jnp.full((1,), V))))
    return jnp.asarray(np.concatenate(rows), dtype)


def _bin_probabilities(s, n_bins, n_sub=16):
    """Exact electrons per bin of the wrapped Gaussians (midpoint rule over each bin, nearest image)."""
    u = (np.arange(n_bins * n_sub) + 0.5) / (n_bins * n_sub)
    frac = np.stack(np.meshgrid(u, u, indexing="ij"), -1)
    r = frac @ CELL3.vectors
    d = np.asarray(CELL3.minimum_image(jnp.asarray(r[..., None, :] - SITES)))
    pdf = np.sum(np.exp(-np.sum(d**2, -1) / s**2), -1) / (np.pi * s**2)
    cell_area = CELL3.area / (n_bins * n_sub) ** 2
    return (pdf * cell_area).reshape(n_bins, n_sub, n_bins, n_sub).sum((1, 3))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_gaussian_crystal_bragg_peaks_density_and_order_parameter(dtype):
    widths = {5.0: 0.16, 20.0: 0.10}  # V (carried, user units) -> Gaussian width s (a_M)
    ham = MoireHamiltonian(V=10.0, supercell=3, conditioned_on=("V",))
    samples = _gaussian_crystal_samples(widths, 8, 300, dtype)
    sq = structure_factor(samples, ham, q_max=16.0)
    order = crystal_order_parameter(samples, ham)
    dmap = density_map(samples, ham, n_bins=9)
    assert list(sq) == list(order) == list(dmap) == [(5.0,), (20.0,)]
    g = moire_g_vectors(1.0)
    for key, s in zip(sq, widths.values()):
        res = sq[key]
        assert res.S.mean.dtype == np.dtype(dtype)
        assert res.parameters == {"V": key[0]}
        q2 = np.sum(res.q**2, -1)
        f2 = np.exp(-q2 * s**2 / 2)  # |f(q)|^2
        lattice_sum = np.abs(np.exp(-1j * res.q @ SITES.T).sum(-1)) ** 2 / 9
        _assert_consistent(res.S, 1 - f2 + f2 * lattice_sum)
        _assert_consistent(res.S_connected, 1 - f2)
        # the Bragg peak: largest shell at |g| = 4 pi / sqrt(3), S ~ N f^2
        peak_q, peak = res.peak()
        assert peak_q == pytest.approx(4 * np.pi / np.sqrt(3))
        assert peak.mean > 4.0

        # order parameter |<rho(g_j)>| = f(g) = exp(-g^2 s^2 / 4), phases e^{-i g_j.R}
        op = order[key]
        f_g = np.exp(-np.sum(g**2, -1) * s**2 / 4)
        rho_exact = f_g * np.exp(-1j * g @ SITES.T).mean(-1)
        _assert_consistent(op.components.real, rho_exact.real)
        _assert_consistent(op.components.imag, rho_exact.imag)
        assert abs(op.value.mean - f_g[0]) < 5 * op.value.error
        assert 0 < op.value.error < 0.01 and op.noise_floor < 0.05

        # density: bins centered on the sites hold the Gaussians; compare all bins with quadrature
        dens = dmap[key]
        probability = _bin_probabilities(s, 9)  # electrons per bin
        exact = probability / dens.bin_area
        populated = probability * dens.n_samples > 100  # enough counts for Gaussian error bars
        assert populated.sum() >= 9
        _assert_consistent(dens.density[populated], exact[populated])
        # sparse bins: the total count agrees within 5 Poisson standard deviations (+ 3 counts)
        expected = probability * dens.n_samples
        counted = dens.density.mean * dens.bin_area * dens.n_samples
        assert np.all(np.abs(counted - expected)[~populated] < 5 * np.sqrt(expected[~populated]) + 3)
        peaks = np.argsort(dens.density.mean.ravel())[-9:]
        assert set(peaks) == {9 * (1 + 3 * i) + 1 + 3 * j for i in range(3) for j in range(3)}
        np.testing.assert_allclose(dens.cartesian_centers[1::3, 1::3].reshape(9, 2), SITES, atol=1e-12)
        assert dens.contrast > 5
    # narrower Gaussians: stronger order and higher Bragg peak
    assert order[(20.0,)].value.mean > order[(5.0,)].value.mean + 0.1
    assert sq[(20.0,)].peak()[1].mean > sq[(5.0,)].peak()[1].mean + 1.0


# ------------------------------------------------------------------------------------------------
# energy decomposition (two parameter groups in one batch)
# ------------------------------------------------------------------------------------------------
def _gaussian_crystal_model(widths):
    """log psi = -sum_i |min_image(r_i - R_i)|^2 / (2 s(V)^2), s chosen by the carried V."""
    (v_a, s_a), (_, s_b) = widths.items()

    def f(x):
        pos, params = split_sample(x, 9)
        scale = hk.get_parameter("scale", (), init=jnp.ones, dtype=x.dtype)
        s = scale * jnp.where(params[..., 0] == v_a, s_a, s_b)
        d = CELL3.minimum_image(pos - jnp.asarray(SITES, x.dtype))
        return -jnp.sum(d**2, axis=(-1, -2)) / (2 * s**2)

    return hk.transform(f)


def test_energy_decomposition_per_group_against_exact_gaussian_crystal():
    widths = {5.0: 0.14, 20.0: 0.10}
    ham = MoireHamiltonian(V=10.0, supercell=3, conditioned_on=("V",))
    # start in equilibrium: chain c belongs to group c % 2 (round-robin), exact Gaussian draws
    chain_widths = np.array(list(widths.values()))[np.arange(64) % 2]
    start = SITES + np.random.default_rng(1).normal(size=(64, 9, 2)) * chain_widths[:, None, None] / math.sqrt(2)
    vstate = _sampled_state(ham, _gaussian_crystal_model(widths), ParameterGrid(list(widths), ("V",)),
                            n_chains=64, chain_length=50, sweep_size=10, seed=5, start=start, initial_sigma=0.03)
    energies = measure_energy(vstate, ham)
    assert list(energies) == [(5.0,), (20.0,)]
    unit = ham.energy_unit
    phi = math.radians(ham.parameters["phi"])
    g = moire_g_vectors(1.0)

    components = local_energy_components(vstate, ham)
    samples = np.asarray(vstate.samples)
    pos, params = split_sample(samples, 9)
    s_sample = np.where(params[..., 0] == 5.0, widths[5.0], widths[20.0])
    d2 = np.sum(np.asarray(CELL3.minimum_image(jnp.asarray(pos - SITES))) ** 2, axis=(-1, -2))
    # the local kinetic energy of the Gaussian product is sum_i (1/s^2 - |d_i|^2 / (2 s^4))
    np.testing.assert_allclose(components["kinetic"], 9 / s_sample**2 - d2 / (2 * s_sample**4), rtol=1e-9)
    # the pure potential-energy kernels agree with NetKet's operators
    pure = potential_energy_components(vstate.samples, ham)
    for part in ("one_body", "interaction"):
        np.testing.assert_allclose(pure[part], components[part], rtol=1e-12, atol=1e-12)
    # the components sum to the local energy of the full Hamiltonian, sample by sample
    total_local = np.real(vstate.local_estimators(ham.operator()).data)
    np.testing.assert_allclose(sum(np.asarray(c) for c in components.values()), total_local, rtol=1e-10, atol=1e-10)

    for key, s in widths.items():
        e = energies[(key,)]
        assert e.unit == "meV" and e.parameters == {"V": key} and e.n_samples == 32 * 50
        # exact means: <T> = N / (2 s^2); <Delta> = -2 V sum_ij cos(g_j.R_i + phi) f(g)
        _assert_consistent(e.kinetic, 9 / (2 * s**2) * unit, max_z=4.5)
        f_g = math.exp(-np.sum(g[0] ** 2) * s**2 / 4)
        one_body = -2 * key * f_g * np.sum(np.cos(SITES @ g.T + phi))
        _assert_consistent(e.one_body, one_body, max_z=4.5)
        # the total is the per-sample sum: means add exactly; errors are positive, finite, and obey
        # the triangle inequality (error = std of chain means: a seminorm)
        parts = (e.kinetic, e.one_body, e.interaction)
        assert e.total.mean == pytest.approx(sum(p.mean for p in parts), rel=1e-12)
        assert all(np.isfinite(p.error) and p.error > 0 for p in (*parts, e.total))
        assert e.total.error <= sum(p.error for p in parts) * (1 + 1e-9)
    # the groups differ (V = 20 meV: stronger potential, narrower Gaussians); the sites sit
    # half a moiré cell off the potential minima, so the one-body energy is positive
    assert energies[(20.0,)].one_body.mean > energies[(5.0,)].one_body.mean > 0
    assert energies[(20.0,)].kinetic.mean > energies[(5.0,)].kinetic.mean

    # the pure function on the same local estimators gives the same numbers
    groups = groups_from_samples(vstate.samples, ham)
    again = energy_decomposition(components, groups, energy_unit=unit, unit_name="meV")
    for key in energies:
        assert again[key].total.mean == pytest.approx(energies[key].total.mean, rel=1e-12)

    # JSON: every observable serialises, records carry their group parameters
    payload = json.loads(to_json({"energy": energies}))
    assert [r["parameters"] for r in payload["energy"]] == [{"V": 5.0}, {"V": 20.0}]
    assert isinstance(payload["energy"][0]["kinetic"]["mean"], float)


# ------------------------------------------------------------------------------------------------
# moiré: two V values in one batch, per-group density harmonics vs the band-structure reference
# ------------------------------------------------------------------------------------------------
def _exact_rho_g(orbitals, n, G):
    """<rho(G)> = (1/N) sum_n sum_G' c_{n,G'+G} c*_{n,G'} of a Slater determinant of Bloch orbitals."""
    b_inv = np.linalg.inv(triangular_lattice(1.0).reciprocal_vectors)
    m = np.rint(np.asarray(orbitals.G) @ b_inv).astype(int)
    index = {tuple(v): i for i, v in enumerate(m)}
    c = np.asarray(orbitals.coefficients)
    out = []
    for gv in G:
        shift = np.rint(gv @ b_inv).astype(int)
        pairs = [(index[tuple(mi + shift)], i) for i, mi in enumerate(m) if tuple(mi + shift) in index]
        out.append(sum(np.sum(c[:, j] * np.conj(c[:, i])) for j, i in pairs) / n)
    return np.array(out)


def test_moire_two_depths_in_one_batch_density_harmonics_per_group():
    values = (5.0, 20.0)
    ham = MoireHamiltonian(V=10.0, supercell=3, conditioned_on=("V",))  # filling 1: 9 electrons
    p = ham.parameters
    orbitals = []
    for V in values:
        state = noninteracting_ground_state(ham.supercell, 9, 0, V=V, phi=p["phi"], m_star=p["m_star"],
                                            a_M=p["a_M"], cutoff=4.0)
        assert state.closed_shell
        orbitals.append(state.orbitals_up)

    def f(x):
        pos, params = split_sample(x, 9)
        s = hk.get_parameter("s", (), init=jnp.ones, dtype=x.dtype)
        sign, logabs = jnp.linalg.slogdet(jnp.stack([o(pos) for o in orbitals], axis=-3))
        logs = logabs + 1j * jnp.angle(sign)
        return s * jnp.where(params[..., 0] == values[0], logs[..., 0], logs[..., 1])

    vstate = _sampled_state(ham, hk.transform(f), ParameterGrid(list(values), ("V",)), n_chains=64,
                            chain_length=80, sweep_size=4, seed=11)
    order = measure(vstate, ham, which=("order_parameter",))["order_parameter"]
    assert list(order) == [(5.0,), (20.0,)]
    g = moire_g_vectors(1.0)
    for key, orb in zip(order, orbitals):
        exact = _exact_rho_g(orb, 9, g)
        comp = order[key].components
        _assert_consistent(comp.real, exact.real)
        _assert_consistent(comp.imag, exact.imag)
        assert abs(order[key].value.mean - np.mean(np.abs(exact))) < 5 * order[key].value.error
    # deeper potential, stronger density modulation (exact: 0.177 vs 0.422)
    assert order[(20.0,)].value.mean > order[(5.0,)].value.mean + 10 * order[(20.0,)].value.error
    # density_fourier at +-g: rho(-g) = conj(rho(g)) sample by sample
    both = density_fourier(vstate.samples, ham, np.concatenate([g, -g]))
    for res in both.values():
        np.testing.assert_allclose(res.real.mean[:3], res.real.mean[3:], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.imag.mean[:3], -res.imag.mean[3:], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# uncorrelated uniform particles in arbitrary cells (normalisations)
# ------------------------------------------------------------------------------------------------
@settings(max_examples=5, deadline=None)
@given(
    matrix=st.sampled_from([[[2, 0], [0, 2]], [[2, 1], [-1, 1]], [[1, 0], [-1, 2]], [[3, 1], [0, 1]]]),
    n=st.integers(2, 6),
    data=st.data(),
)
def test_uniform_uncorrelated_particles_have_g_one_s_one_flat_density(matrix, n, data):
    n_up = data.draw(st.integers(1, n))
    cell = Supercell(triangular_lattice(1.0), matrix)
    ham = MoireHamiltonian(V=0.0, supercell=cell, n_electrons=n, n_up=n_up, conditioned_on=())
    rng = np.random.default_rng(n + 10 * n_up)
    frac = rng.random((8, 300, n, 2))
    samples = jnp.asarray((frac @ cell.vectors).reshape(8, 300, 2 * n))
    gr = pair_correlation(samples, ham, n_bins=6)[()]
    assert gr.r_edges[-1] == pytest.approx(cell.inscribed_radius)
    for name, est in gr.g.items():
        _assert_consistent(est, 1.0)
    assert ("up_down" in gr.g) == (0 < n_up < n)
    sq = structure_factor(samples, ham, q_max=2.5 * np.linalg.norm(cell.reciprocal_vectors, axis=1).max())[()]
    _assert_consistent(sq.S, 1.0)
    dens = density_map(samples, ham, n_bins=3)[()]
    _assert_consistent(dens.density, n / cell.area)
    spin_up = density_map(samples, ham, n_bins=3, spin="up")[()]
    assert np.sum(spin_up.density.mean) * spin_up.bin_area == pytest.approx(n_up)


# ------------------------------------------------------------------------------------------------
# small units: estimates, groups, validation
# ------------------------------------------------------------------------------------------------
def test_estimate_constant_series_has_zero_error_and_vectors_match_scalars():
    const = estimate(jnp.full((4, 10), 2.5))
    assert const.mean == 2.5 and const.error == 0 and const.tau_corr == 0
    data = jnp.asarray(np.random.default_rng(0).normal(size=(40, 50, 3)))
    vector = estimate(data)
    for i in range(3):
        scalar = nk.stats.statistics(data[..., i])
        assert vector.mean[i] == pytest.approx(float(scalar.mean))
        assert vector.error[i] == pytest.approx(float(scalar.error_of_mean))
    assert vector.scaled(-2.0).error[0] == pytest.approx(2 * vector.error[0])
    with pytest.raises(ValueError, match="real"):
        estimate(data + 1j)
    with pytest.raises(ValueError, match="shape"):
        estimate(jnp.ones(5))


def test_first_shell_of_square_and_triangular_lattices():
    square = first_shell(square_lattice(1.0))
    np.testing.assert_allclose(square, [[2 * np.pi, 0], [0, 2 * np.pi]], atol=1e-12)
    triangular = first_shell(triangular_lattice(1.0))
    assert triangular.shape == (3, 2)
    np.testing.assert_allclose(np.linalg.norm(triangular, axis=1), 4 * np.pi / np.sqrt(3))
    # one vector of each +-pair: the three are the moiré g_j up to sign
    g = moire_g_vectors(1.0)
    for v in triangular:
        assert np.min(np.minimum(np.linalg.norm(g - v, axis=1), np.linalg.norm(g + v, axis=1))) < 1e-9


def test_groups_from_samples_and_validation_errors():
    ham = MoireHamiltonian(V=10.0, supercell=3, conditioned_on=("V",))
    samples = np.asarray(_gaussian_crystal_samples({20.0: 0.1, 5.0: 0.1}, 2, 4, jnp.float64))
    groups = groups_from_samples(samples, ham)
    assert groups.values.tolist() == [[5.0], [20.0]]  # sorted by value
    assert groups.chain_ids.tolist() == [1, 1, 0, 0]
    assert groups.key(0) == (5.0,) and groups.parameters(1) == {"V": 20.0}
    moved = samples.copy()
    moved[0, 1, -1] = 7.0
    with pytest.raises(ValueError, match="constant along each chain"):
        groups_from_samples(moved, ham)
    with pytest.raises(ValueError, match="shape"):
        density_map(samples[0], ham)
    with pytest.raises(ValueError, match="r_max"):
        pair_correlation(samples, ham, r_max=10.0)
    with pytest.raises(ValueError, match="spin"):
        density_map(samples, ham, spin="sideways")
    with pytest.raises(ValueError, match="q = 0"):
        structure_factor(samples, ham, q=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="groups describe"):
        density_map(samples, ham, groups=ParameterGroups(("V",), np.array([[5.0]]), np.zeros(3, int)))
    trap = HarmonicTrap(2, omega=1.0, conditioned_on=())
    with pytest.raises(ValueError, match="periodic supercell"):
        density_map(jnp.zeros((1, 2, 4)), trap)
    with pytest.raises(ValueError, match="unknown observable"):
        measure(None, ham, which=("magnetisation",))
