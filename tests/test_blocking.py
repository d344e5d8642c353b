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
