"""Observables measured in blocks of samples equal the same observables of all samples at once.

``qernel scan`` draws its samples in blocks (peak memory independent of ``--n-samples``) and keeps
only per-sample scalars and per-chain sums (:class:`qernel.streaming.ChainSums`,
:class:`qernel.scan.ScanObservables`). Reference: the library's all-at-once functions
(:func:`qernel.observables.estimate`, ``energy_decomposition``, ``crystal_order_parameter``,
``structure_factor``, ``k_point_*``, ``density_map``) on the concatenated samples. Same samples,
same numbers up to rounding (rtol 1e-10); both branches of NetKet's error estimator are exercised
(>= 32 chains: spread of chain means; fewer: blocks of chain_length // 32), and blocks that do not
line up with NetKet's time bins.
"""

from __future__ import annotations

import numpy as np
import pytest

from qernel.hamiltonian.moire import MoireHamiltonian
from qernel.observables import (
    ParameterGroups,
    crystal_order_parameter,
    density_map,
    energy_decomposition,
    estimate,
    k_point_order_parameter,
    k_point_structure_factor,
    structure_factor,
)
from qernel.scan import ScanObservables
from qernel.streaming import ChainSums

RTOL = 1e-10


def _assert_estimates_equal(streamed, whole):
    for field in ("mean", "error", "tau_corr", "variance"):
        np.testing.assert_allclose(getattr(streamed, field), getattr(whole, field), rtol=RTOL, atol=1e-14,
                                   equal_nan=True, err_msg=field)


def _ar1(rng, n_chains, length, shape, rho=0.8):
    """Correlated series (AR(1) along each chain) around 3: tau_corr of a few samples."""
    x = np.empty((n_chains, length, *shape))
    noise = rng.standard_normal(x.shape)
    x[:, 0] = noise[:, 0]
    for t in range(1, length):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x + 3.0


@pytest.mark.parametrize("n_chains, length, block", [(40, 70, 16), (6, 70, 9), (8, 1000, 128), (3, 5, 2)])
def test_chain_sums_equal_the_estimate_of_the_whole_series(n_chains, length, block):
    """(40 chains: chain-mean branch; 6 and 8: block branch; 3 x 5: NetKet's NaN error)."""
    rng = np.random.default_rng(n_chains)
    x = _ar1(rng, n_chains, length, (3,))
    x[..., 2] = 1.25  # a constant component: exact mean, zero error (qernel's rule)
    sums = ChainSums(n_chains, length, (3,))
    for start in range(0, length, block):
        sums.add(x[:, start:start + block])
    _assert_estimates_equal(sums.estimate(), estimate(x))
    half = np.arange(0, n_chains, 2)
    _assert_estimates_equal(sums.estimate(half), estimate(x[half]))


def test_chain_sums_reject_wrong_blocks_and_an_unfinished_series():
    sums = ChainSums(4, 10, (2,))
    with pytest.raises(ValueError, match=r"block must have shape \(4, length, \*\(2,\)\)"):
        sums.add(np.zeros((3, 5, 2)))
    sums.add(np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match="5 of chain_length=10 samples per chain added"):
        sums.estimate()
    with pytest.raises(ValueError, match="exceed chain_length=10"):
        sums.add(np.zeros((4, 6, 2)))


def _samples(ham, chains_per_group, length, rng):
    """Correlated random walks of the electrons in the 3x3 supercell, two V groups."""
    n_chains = sum(chains_per_group)
    steps = 0.05 * rng.standard_normal((n_chains, length, ham.n_electrons, 2))
    start = rng.uniform(0, 1, (n_chains, 1, ham.n_electrons, 2))
    fractional = np.mod(start + np.cumsum(steps, axis=1), 1.0)
    positions = (fractional @ np.asarray(ham.supercell.vectors)).reshape(n_chains, length, -1)
    V = np.repeat([5.0, 25.0], chains_per_group)
    return np.concatenate([positions, np.broadcast_to(V[:, None, None], (n_chains, length, 1))], axis=-1)


def test_scan_observables_in_blocks_equal_all_samples_at_once():
    rng = np.random.default_rng(1)
    ham = MoireHamiltonian(V=10.0, supercell=3, n_electrons=6, conditioned_on=("V",))  # filling 2/3: K points
    chains_per_group, length, block = (34, 5), 36, 10  # one group of >= 32 chains, one of fewer
    samples = _samples(ham, chains_per_group, length, rng)
    groups = ParameterGroups(("V",), np.array([[5.0], [25.0]]), np.repeat([0, 1], chains_per_group))
    components = {name: _ar1(rng, samples.shape[0], length, ()) for name in ("kinetic", "one_body", "interaction")}

    observables = ScanObservables(ham, groups, length, k_points=True, n_bins=6, density_at={"V": [25.0]})
    for start in range(0, length, block):
        observables.add(samples[:, start:start + block], {k: v[:, start:start + block] for k, v in components.items()})
    energies, order, peaks, k_order, k_sq, maps = observables.results()

    whole_energies = energy_decomposition(components, groups, energy_unit=ham.energy_unit)
    whole_order = crystal_order_parameter(samples, ham, groups=groups)
    whole_sq = structure_factor(samples, ham, groups=groups)
    whole_k_order = k_point_order_parameter(samples, ham, groups=groups)
    whole_k_sq = k_point_structure_factor(samples, ham, groups=groups)
    whole_maps = density_map(samples, ham, n_bins=6, groups=groups)
    assert list(energies) == list(whole_energies) == [(5.0,), (25.0,)] and list(maps) == [(25.0,)]
    for key in whole_energies:
        for part in ("kinetic", "one_body", "interaction", "total"):
            streamed, whole = getattr(energies[key], part), getattr(whole_energies[key], part)
            _assert_estimates_equal(streamed, whole)
            np.testing.assert_allclose(streamed.error_blocking, whole.error_blocking, rtol=RTOL)
        _assert_estimates_equal(order[key].value, whole_order[key].value)
        assert order[key].noise_floor == pytest.approx(whole_order[key].noise_floor, rel=RTOL)
        _assert_estimates_equal(k_order[key].value, whole_k_order[key].value)
        _assert_estimates_equal(k_sq[key]["S"], whole_k_sq[key]["S"])
        q, peak = whole_sq[key].peak()
        assert peaks[key][0] == pytest.approx(q, rel=1e-12)
        _assert_estimates_equal(peaks[key][1], peak)
    _assert_estimates_equal(maps[(25.0,)].density, whole_maps[(25.0,)].density)
    assert maps[(25.0,)].n_samples == whole_maps[(25.0,)].n_samples == 5 * length
