"""Filling-2/3 honeycomb crystal observables (moiré K points) and the filling-2/3 configs.

Analytic references, computed by hand here:
* the Brillouin-zone corners of the unit triangular lattice lie at |K| = 4 pi / 3, equidistant
  from 0 and the two nearest reciprocal vectors g (|g| = 4 pi / sqrt3);
* point charges on two of the three sqrt3 x sqrt3 sublattices (the honeycomb) give
  rho(K) = (1/N) sum_i exp(-i K.r_i) = e^{i phase} (1 + w) / 2, |rho(K)| = 1/2 (w = e^{2 pi i / 3}),
  and S(K) = N |rho(K)|^2 = N / 4; with independent Gaussian displacements of variance s^2 per
  coordinate the mean becomes |<rho(K)>| = exp(-|K|^2 s^2 / 2) / 2;
* uncorrelated uniform particles: <rho(K)> = 0, S(K) = 1, and the noise floor
  sqrt(pi/4 (err_re^2 + err_im^2)) = sqrt(pi / (4 N M)) for M independent samples.
"""

from __future__ import annotations

from pathlib import Path

import qernel  # noqa: F401  (imported before netket: selects qernel's XLA CPU settings)
import numpy as np
import pytest

from qernel.config import load_config
from qernel.geometry.lattice import Supercell, triangular_lattice
from qernel.hamiltonian.moire import MoireHamiltonian
from qernel.observables import (
    brillouin_zone_corners,
    finite_difference,
    is_commensurate,
    k_point_order_parameter,
    k_point_structure_factor,
    moire_k_points,
)
from qernel.scan import _k_points_wanted

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "configs"


def _samples(positions: np.ndarray, V: float = 10.0) -> np.ndarray:
    """(n_chains, L, N, 2) positions -> (n_chains, L, 2N + 1) samples carrying V."""
    c, length = positions.shape[:2]
    flat = positions.reshape(c, length, -1)
    return np.concatenate([flat, np.full((c, length, 1), V)], axis=-1)


def _honeycomb(n: int) -> np.ndarray:
    """(2 n^2 / 3, 2) sites of the n x n unit triangular cell with (m2 - m1) mod 3 in {0, 1}:
    K = (4 pi / 3, 0) gives K.R = (2 pi / 3)(2 m1 + m2) = (2 pi / 3)(m2 - m1) mod 2 pi."""
    a = triangular_lattice(1.0).vectors
    sites = [m1 * a[0] + m2 * a[1] for m1 in range(n) for m2 in range(n) if (m2 - m1) % 3 != 2]
    return np.array(sites)


def test_brillouin_zone_corners_of_the_triangular_lattice():
    k = brillouin_zone_corners(triangular_lattice(1.0))
    assert k.shape == (3, 2)
    np.testing.assert_allclose(np.linalg.norm(k, axis=1), 4 * np.pi / 3, rtol=1e-12)
    g = triangular_lattice(1.0).reciprocal_vectors
    shell = np.array([m1 * g[0] + m2 * g[1] for m1 in (-1, 0, 1) for m2 in (-1, 0, 1) if (m1, m2) != (0, 0)])
    shell = shell[np.isclose(np.linalg.norm(shell, axis=1), 4 * np.pi / np.sqrt(3))]
    assert len(shell) == 6
    for kj in k:  # a corner: as close to two of the g as to the origin
        assert np.sum(np.isclose(np.linalg.norm(kj - shell, axis=1), np.linalg.norm(kj))) == 2
        phases = np.exp(1j * triangular_lattice(1.0).vectors @ kj)  # cube roots of unity, not 1
        np.testing.assert_allclose(phases**3, 1, atol=1e-12)
        assert np.all(np.abs(phases - 1) > 0.5)


@pytest.mark.parametrize("n, contained", [(2, False), (3, True), (4, False), (6, True), (9, True)])
def test_k_points_are_commensurate_only_with_multiples_of_three(n, contained):
    cell = Supercell(triangular_lattice(1.0), n)
    assert np.all(is_commensurate(cell, brillouin_zone_corners(cell.primitive))) == contained


def test_k_points_of_a_2x2_cell_fail_with_a_clear_message():
    ham = MoireHamiltonian(V=10.0, supercell=2, n_electrons=3, conditioned_on=("V",))
    message = r"not reciprocal vectors of the supercell \[\[2, 0\], \[0, 2\]\].*multiple of 3"
    with pytest.raises(ValueError, match=message):
        moire_k_points(ham)
    with pytest.raises(ValueError, match="k_points=True"):
        _k_points_wanted(ham, True)
    with pytest.warns(UserWarning, match="K-point order parameter skipped"):
        assert _k_points_wanted(ham, None) is False
    assert _k_points_wanted(ham, False) is False
    assert _k_points_wanted(MoireHamiltonian(V=10.0, supercell=3, n_electrons=6, conditioned_on=("V",)), None)


@pytest.mark.parametrize("n", [3, 6])
def test_point_charge_honeycomb_gives_one_half_and_s_of_k_n_over_4(n):
    n_el = 2 * n * n // 3
    ham = MoireHamiltonian(V=10.0, supercell=n, n_electrons=n_el, conditioned_on=("V",))
    rng = np.random.default_rng(0)
    sites = _honeycomb(n) + np.array([0.123, -0.456])  # any origin: only the phase of rho(K) moves
    assert len(sites) == n_el
    # 4 chains x 5 samples; electrons in a different order in every sample (rho is symmetric)
    positions = np.stack([[sites[rng.permutation(n_el)] for _ in range(5)] for _ in range(4)])
    order = k_point_order_parameter(_samples(positions), ham)[(10.0,)]
    np.testing.assert_allclose(order.value.mean, 0.5, atol=1e-12)
    np.testing.assert_allclose(np.abs(order.components.mean), 0.5, atol=1e-12)
    sq = k_point_structure_factor(_samples(positions), ham)[(10.0,)]
    np.testing.assert_allclose(sq["S"].mean, n_el / 4, rtol=1e-10)
    np.testing.assert_allclose(sq["S_connected"].mean, 0.0, atol=1e-10)


def test_gaussian_smeared_honeycomb_matches_the_debye_waller_factor():
    ham = MoireHamiltonian(V=10.0, supercell=3, n_electrons=6, conditioned_on=("V",))
    s = 0.12  # displacement std per coordinate, in a_M
    rng = np.random.default_rng(1)
    positions = _honeycomb(3)[None, None] + s * rng.standard_normal((16, 400, 6, 2))
    order = k_point_order_parameter(_samples(positions), ham)[(10.0,)]
    exact = 0.5 * np.exp(-((4 * np.pi / 3) ** 2) * s**2 / 2)  # 0.40
    assert abs(order.value.mean - exact) < 4 * order.value.error
    assert order.value.mean > 20 * order.noise_floor


def test_uniform_uncorrelated_particles_give_the_noise_floor_and_s_one():
    n, n_el, chains, length = 3, 6, 16, 250
    ham = MoireHamiltonian(V=10.0, supercell=n, n_electrons=n_el, conditioned_on=("V",))
    rng = np.random.default_rng(2)
    fractional = rng.uniform(size=(chains, length, n_el, 2))
    positions = fractional @ np.asarray(ham.supercell.vectors)
    order = k_point_order_parameter(_samples(positions), ham)[(10.0,)]
    floor = np.sqrt(np.pi / (4 * n_el * chains * length))  # 0.0057
    np.testing.assert_allclose(order.noise_floor, floor, rtol=0.15)
    assert order.value.mean < 3 * order.noise_floor  # consistent with <rho(K)> = 0
    sq = k_point_structure_factor(_samples(positions), ham)[(10.0,)]
    assert abs(sq["S"].mean - 1.0) < 4 * sq["S"].error


def test_finite_difference_propagates_independent_errors():
    x = np.array([0.0, 1.0, 3.0])
    d = finite_difference(x, 2.0 * x + 1.0, [0.3, 0.4, 0.0])
    np.testing.assert_allclose(d.x, [0.5, 2.0])
    np.testing.assert_allclose(d.slope, [2.0, 2.0])
    np.testing.assert_allclose(d.error, [0.5, 0.2])  # sqrt(0.09 + 0.16) / 1, 0.4 / 2
    with pytest.raises(ValueError, match="strictly increasing"):
        finite_difference([0.0, 0.0], [1.0, 2.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="y_error"):
        finite_difference([0.0, 1.0], [1.0, 2.0], [0.1, -0.1])


@pytest.mark.parametrize("name, n, n_el", [("moire_nu23_3x3.toml", 3, 6), ("moire_nu23_6x6.toml", 6, 24)])
def test_filling_two_thirds_configs_load_and_build(name, n, n_el):
    from qernel.run import build_run

    config = load_config(EXAMPLES / name)
    s = config.system
    assert (s.kind, s.eps, s.m_star, s.a_M, s.phi, s.polarized) == ("moire", 5.0, 0.35, 8.031, 45.0, True)
    values = config.parameters.values["V"]
    assert min(values) == 0.0 and max(values) == 30.0 and np.max(np.diff(sorted(values))) <= 3.0
    assert config.ansatz.options["n_harmonics"] == n
    run = build_run(config)
    ham = run.hamiltonian
    assert ham.n_electrons == n_el == round(2 * n * n / 3)
    assert moire_k_points(ham).shape == (3, 2)  # the crystal's order parameter is defined here


def test_gpu_config_loads_with_a_chunk_size_and_the_k_points():
    from qernel.run import build_hamiltonian, build_parameter_space

    config = load_config(EXAMPLES / "moire_nu23_gpu.toml")
    ham = build_hamiltonian(config)
    assert ham.n_electrons == 150 and config.system.eps == 5.0
    assert config.sampler.chunk_size == 32 and config.ansatz.options["n_harmonics"] == 15
    assert config.sampler.n_chains % build_parameter_space(config, ham).n_groups == 0
    assert moire_k_points(ham).shape == (3, 2)


@pytest.mark.slow
def test_scan_of_a_tiny_3x3_filling_two_thirds_model_reports_the_k_point_columns(tmp_path):
    """End to end: train 2 steps of a tiny N = 6 model, scan 3 values of V, write the tables."""
    import json

    from qernel.config import config_from_dict
    from qernel.run import train
    from qernel.scan import scan_checkpoint, write_scan

    from _tiny_demo import TINY_ANSATZ

    config = load_config(EXAMPLES / "moire_nu23_3x3.toml").to_dict()
    config.update(parameters={"type": "grid", "values": {"V": [0.0, 30.0]}}, ansatz=dict(TINY_ANSATZ, n_harmonics=3),
                  sampler={"n_chains": 8, "n_samples": 16, "n_thermalise": 2, "n_discard_per_chain": 1},
                  optimizer={"n_steps": 2, "learning_rate": 0.01}, pretrain={"steps": 0})
    config["run"].update(output_dir=str(tmp_path / "run"), checkpoint_every=1)
    train(config_from_dict(config), progress=False)
    result = scan_checkpoint(tmp_path / "run" / "checkpoint.npz", "V", [0.0, 15.0, 30.0], n_samples=96,
                             density_at=[30.0], n_bins=6, chunk_size=None)
    for row in result.rows:
        assert 0 <= row["order_K"] <= 1 and row["order_K_error"] >= 0 and row["order_K_noise_floor"] > 0
        assert row["S_K"] > 0
    assert [t.quantity for t in result.transitions] == ["E_int", "order_parameter", "order_K"]
    write_scan(result, tmp_path / "scan")
    saved = json.loads((tmp_path / "scan" / "scan.json").read_text())
    assert saved["derivatives"]["dE_int/dV"]["x"] == [7.5, 22.5]
