"""Derivative of a scanned observable along the scan grid, with propagated Monte Carlo errors.

    dy/dx (x_{k+1/2}) ~ (y_{k+1} - y_k) / (x_{k+1} - x_k),   x_{k+1/2} = (x_k + x_{k+1}) / 2

Every scan value is sampled by its own chains, so neighbouring points are statistically
independent and the error of a difference adds in quadrature:
``sigma = sqrt(sigma_k^2 + sigma_{k+1}^2) / (x_{k+1} - x_k)``. Used for ``dE_int/dV``, whose
jump (a peak of the slope) marks a first-order change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FiniteDifference", "finite_difference"]


@dataclass(frozen=True)
class FiniteDifference:
    """Forward differences of a curve, at the midpoints of the grid.

    Attributes:
        x: (M - 1,) midpoints (units of the scanned parameter).
        slope, error: (M - 1,) ``dy/dx`` and its standard error (units of y per unit of x).
    """

    x: np.ndarray
    slope: np.ndarray
    error: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x.tolist(), "slope": self.slope.tolist(), "error": self.error.tolist()}


def finite_difference(x, y, y_error) -> FiniteDifference:
    """Slopes between neighbouring points of ``y(x)`` with independent errors propagated.

    Args:
        x: (M,) strictly increasing grid, M >= 2.
        y, y_error: (M,) values and their (independent) standard errors.
    """
    x, y, y_error = (np.asarray(a, dtype=float) for a in (x, y, y_error))
    if x.ndim != 1 or len(x) < 2 or y.shape != x.shape or y_error.shape != x.shape:
        raise ValueError(f"x, y, y_error must be 1D of equal length >= 2, got {x.shape}, {y.shape}, {y_error.shape}")
    dx = np.diff(x)
    if np.any(dx <= 0):
        raise ValueError("x must be strictly increasing")
    if np.any(y_error < 0):
        raise ValueError("y_error must be >= 0")
    return FiniteDifference(
        x=0.5 * (x[1:] + x[:-1]),
        slope=np.diff(y) / dx,
        error=np.hypot(y_error[1:], y_error[:-1]) / dx,
    )
