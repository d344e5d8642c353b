"""Monte Carlo estimates with autocorrelation-aware error bars (NetKet's ``nk.stats.statistics``).

Every observable in :mod:`qernel.observables` is a per-sample series ``O[c, t]`` over Markov
chains ``c`` and chain positions ``t``; its estimate is the mean, with the error of the mean from
``nk.stats.statistics`` on the (n_chains, chain_length) array: the spread of the chain means when
there are >= 32 chains, otherwise blocking within the chains. Both account for the
autocorrelation of the chains; ``tau_corr`` is the integrated autocorrelation time (in samples).
NetKet returns a NaN error when neither estimate is reliable (too few chains and an
autocorrelation time longer than the blocks): a NaN error bar means "sample longer", not zero.

Caveat (NetKet's estimator, per group): with fewer than 32 chains in a group the blocks have
``chain_length // 32`` samples; for chains shorter than 64 samples that is one sample per block,
and the error then ignores the autocorrelation (``tau_corr`` reads 0). For trustworthy error bars
give every group >= 32 chains, or chains of several hundred samples.

Vector observables (density bins, S(q) at many q, g(r) bins) are estimated component by
component (``vmap`` over the trailing axes).

With ``estimate(data, blocking=True)`` every component also gets an independent error bar from
the Flyvbjerg-Petersen blocking analysis of :mod:`qernel.observables.blocking` (blocked along each
chain, pooled over chains), with its autocorrelation time and effective sample count, reported
next to NetKet's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np

from .blocking import blocking as _blocking

__all__ = ["Estimate", "estimate", "to_json_value"]


def to_json_value(value) -> Any:
    """NumPy/JAX scalars and arrays to Python floats / nested lists (NaN stays NaN)."""
    array = np.asarray(value)
    if array.ndim == 0:
        return array.item() if array.dtype.kind in "iub" else float(array)
    return array.tolist() if array.dtype.kind in "iub" else array.astype(float).tolist()


@dataclass(frozen=True)
class Estimate:
    """Mean and Monte Carlo error of a (scalar or array) observable.

    Attributes:
        mean: estimated mean, shape ``()`` or the observable's shape.
        error: error of the mean (autocorrelation-aware), same shape; NaN if NetKet cannot
            estimate it reliably (see module docstring); 0 for a constant series.
        tau_corr: integrated autocorrelation time in samples, same shape.
        variance: variance of the per-sample values, same shape.
        error_blocking, tau_blocking, n_effective: blocking error of the mean, integrated
            autocorrelation time (``var(mean) = tau var / n``) and effective sample count
            ``n / tau`` (:mod:`qernel.observables.blocking`), same shape; None unless requested.
    """

    mean: np.ndarray
    error: np.ndarray
    tau_corr: np.ndarray
    variance: np.ndarray
    error_blocking: np.ndarray | None = None
    tau_blocking: np.ndarray | None = None
    n_effective: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.mean)

    def scaled(self, factor: float) -> "Estimate":
        """The estimate of ``factor * O`` (e.g. a unit conversion)."""
        factor = float(factor)
        blocked = self.error_blocking is not None
        return Estimate(
            self.mean * factor, self.error * abs(factor), self.tau_corr, self.variance * factor**2,
            self.error_blocking * abs(factor) if blocked else None, self.tau_blocking, self.n_effective,
        )

    def __getitem__(self, index) -> "Estimate":
        blocked = self.error_blocking is not None
        return Estimate(
            self.mean[index], self.error[index], self.tau_corr[index], self.variance[index],
            *((self.error_blocking[index], self.tau_blocking[index], self.n_effective[index]) if blocked else ()),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: floats or (nested) lists of floats."""
        return {
            "mean": to_json_value(self.mean),
            "error": to_json_value(self.error),
            "tau_corr": to_json_value(self.tau_corr),
            "variance": to_json_value(self.variance),
            **({} if self.error_blocking is None else {
                "error_blocking": to_json_value(self.error_blocking),
                "tau_blocking": to_json_value(self.tau_blocking),
                "n_effective": to_json_value(self.n_effective),
            }),
        }


def _statistics_columns(data):
    """``nk.stats.statistics`` on each column of data (n_chains, chain_length, K) -> 4 arrays (K,)."""
    stats = jax.vmap(nk.stats.statistics, in_axes=-1)(data)
    return stats.mean, stats.error_of_mean, stats.tau_corr, stats.variance


def _blocking_or_nan(series) -> tuple[float, float, float]:
    """(error, tau, n_effective) of :func:`~qernel.observables.blocking.blocking`; NaN for data it
    cannot analyse (non-finite or a single sample), so the caller can report that itself."""
    if series.size < 2 or not np.all(np.isfinite(series)):
        return (np.nan, np.nan, np.nan)
    result = _blocking(series)
    return (result.error, result.tau, result.n_effective)


def estimate(data, *, blocking: bool = False) -> Estimate:
    """Estimate the mean of a real per-sample series with its Monte Carlo error.

    Args:
        data: real array of shape (n_chains, chain_length) or (n_chains, chain_length, ...):
            one value (or one array of values) per sample; rows are independent Markov chains.
        blocking: also run the blocking analysis on every component (NumPy, one pass per
            component: meant for a few scalars such as energies, not for large grids).

    Returns:
        :class:`Estimate` with fields of shape ``data.shape[2:]`` (NumPy arrays).
    """
    data = jnp.asarray(data)
    if jnp.iscomplexobj(data):
        raise ValueError("estimate takes real data; estimate real and imaginary parts separately")
    if data.ndim < 2 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(
            f"data must have shape (n_chains >= 1, chain_length >= 1, ...), got {tuple(data.shape)}"
        )
    component_shape = data.shape[2:]
    flat = data.reshape(data.shape[0], data.shape[1], -1)
    mean, error, tau, variance = (np.asarray(a) for a in _statistics_columns(flat))
    # a constant series (e.g. the moiré energy at V = 0, or E_loc of an eigenstate) has an exact
    # mean; NetKet reports NaN there (0/0 in its autocorrelation estimate)
    constant = variance <= (np.finfo(variance.dtype).eps * np.abs(mean)) ** 2
    error = np.where(constant, 0.0, error).astype(variance.dtype)
    tau = np.where(constant, 0.0, tau).astype(variance.dtype)
    blocked = ()
    if blocking:
        columns = np.asarray(flat)
        results = [_blocking_or_nan(columns[:, :, k]) for k in range(columns.shape[-1])]
        blocked = tuple(np.array(values, dtype=float).reshape(component_shape) for values in zip(*results))
    return Estimate(
        mean.reshape(component_shape),
        error.reshape(component_shape),
        tau.reshape(component_shape),
        variance.reshape(component_shape),
        *blocked,
    )
