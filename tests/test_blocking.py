"""Blocking (Flyvbjerg-Petersen) error analysis on synthetic chains with known answers (issue 19, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from qernel.observables.blocking import blocking


def ar1_chains(rho: float, n_chains: int, n_steps: int, seed: int) -> np.ndarray:
    """Stationary AR(1) chains x_t = rho x_{t-1} + e_t, e_t ~ N(0, 1): variance 1 / (1 - rho^2),
    integrated autocorrelation time tau = (1 + rho) / (1 - rho), shape (n_chains, n_steps)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n_chains, n_steps))
    noise[:, 0] /= np.sqrt(1.0 - rho**2)  # start in the stationary distribution
    return lfilter([1.0], [1.0, -rho], noise, axis=1)


@pytest.mark.parametrize("rho", [0.0, 0.8, 0.95])
def test_blocking_recovers_ar1_autocorrelation_time_and_error(rho):
    """tau = (1 + rho) / (1 - rho) and the error of the mean sqrt(tau var / n), var = 1 / (1 - rho^2),
    recovered within 25 % / 12 %; the naive (level-0) error misses the correlation by sqrt(tau)."""
    n_chains, n_steps = 32, 8192
    result = blocking(ar1_chains(rho, n_chains, n_steps, seed=7))
    tau = (1 + rho) / (1 - rho)
    true_error = np.sqrt(tau / (1 - rho**2) / (n_chains * n_steps))
    assert result.converged
    assert result.tau == pytest.approx(tau, rel=0.25)
    assert result.error == pytest.approx(true_error, rel=0.12)
    assert result.n_effective == pytest.approx(n_chains * n_steps / result.tau)
    assert result.errors[0] == pytest.approx(true_error / np.sqrt(tau), rel=0.05)


def test_blocking_error_bars_cover_the_true_mean():
    """Over 200 independent AR(1) data sets (rho = 0.9, tau = 19) the true mean 0 lies within one
    error bar in 68 +- 7 % and within two in 95 +- 4 % of them (binomial spread, 200 trials);
    the naive error would cover ~ 18 % / 35 %."""
    z = []
    for seed in range(200):
        r = blocking(ar1_chains(0.9, 8, 2048, seed=1000 + seed))
        z.append(abs(r.mean) / r.error)
    z = np.asarray(z)
    assert 0.58 < np.mean(z < 1) < 0.78
    assert 0.89 < np.mean(z < 2) <= 1.0


def test_blocking_of_constant_and_short_series():
    constant = blocking(np.full((4, 16), 2.5))
    assert constant.mean == 2.5 and constant.error == 0.0 and constant.converged
    short = blocking(np.random.default_rng(0).standard_normal((2, 8)))  # 16 samples < 32 blocks
    assert not short.converged and short.error > 0


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((1, 1)), np.array([[1.0, np.nan]]), np.ones((2, 3)) * 1j])
def test_blocking_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="data"):
        blocking(bad)


def test_estimate_reports_blocking_next_to_netket():
    """``estimate(..., blocking=True)`` carries the blocking error, tau and n_effective per component,
    scaled with the unit like the NetKet error; both errors agree on a long AR(1) series."""
    from qernel.observables import estimate

    chains = ar1_chains(0.8, 32, 4096, seed=3)
    data = np.stack([chains, 2.0 * chains], axis=-1)  # two components
    est = estimate(data, blocking=True)
    reference = blocking(chains)
    assert est.error_blocking.shape == (2,)
    assert est.error_blocking[0] == pytest.approx(reference.error, rel=1e-12)
    assert est.error_blocking[1] == pytest.approx(2 * reference.error, rel=1e-12)
    assert est.n_effective[0] == pytest.approx(reference.n_effective, rel=1e-12)
    assert est.error_blocking[0] == pytest.approx(float(est.error[0]), rel=0.25)
    scaled = est.scaled(-3.0)
    assert scaled.error_blocking[0] == pytest.approx(3 * reference.error)
    assert "n_effective" in est[0].to_dict() and "error_blocking" not in estimate(chains).to_dict()


def test_driver_group_statistics_carry_blocking_per_group():
    """FoundationVMC.group_statistics (used by training, evaluate and the validation scripts) reports
    per parameter group the blocking error and n_effective of that group's chains only."""
    import haiku as hk
    import jax.numpy as jnp
    import netket as nk
    import optax

    from qernel.hamiltonian.trap import HarmonicTrap
    from qernel.sampler import ParameterGrid, chain_group_ids, make_sampler
    from qernel.training import FoundationVMC

    ham = HarmonicTrap(2, omega=1.0, conditioned_on=("omega",))
    sampler = make_sampler(ham.hilbert, ParameterGrid([[0.5, 1.0]], ("omega",)), n_chains=16, sweep_size=1)
    model = hk.transform(lambda x: -0.5 * jnp.sum(x[..., :4] ** 2, -1) * hk.get_parameter("a", (), init=jnp.ones))
    vstate = nk.vqs.MCState(sampler, model, n_samples=16, seed=0)
    driver = FoundationVMC(ham, vstate, optax.sgd(0.0), preconditioner=None)
    ids = np.asarray(chain_group_ids(vstate))
    rho = np.where(ids == 0, 0.0, 0.9)[:, None]  # group 0 uncorrelated, group 1 tau = 19
    local = np.concatenate([ar1_chains(r, 1, 4096, seed=i) for i, r in enumerate(rho[:, 0])])
    stats = driver.group_statistics(jnp.asarray(local), np.full(2, 0.5))
    n = 8 * 4096
    assert stats[0].n_effective == pytest.approx(n, rel=0.25)
    assert n / 30 < stats[1].n_effective < n / 12  # tau = 19 (its precision is tested above)
    assert stats[1].error_blocking == pytest.approx(np.sqrt(19 / (1 - 0.81) / n), rel=0.25)
    assert {"error_blocking", "tau_blocking", "n_effective"} <= set(stats[1].as_dict())
