"""Smooth-step fit of a scanned curve: the location and the width of a change.

The steepest-segment locator (:func:`qernel.scan.locate_transition`) looks at one pair of
neighbouring points, so a curve with point-to-point scatter larger than its Monte Carlo error
bars (a foundation model's learned V-dependence is not perfectly smooth) moves it by several grid
steps. A fit of

    y(x) = base + height * (1 + tanh((x - location) / width)) / 2

to all points uses the whole curve; ``width`` measures how sharp the change is, which is the
number to compare between system sizes (a transition sharpens with N, a crossover does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import curve_fit

__all__ = ["SmoothStepFit", "fit_smooth_step", "smooth_step"]


def smooth_step(x: np.ndarray, base: float, height: float, location: float, width: float) -> np.ndarray:
    """``base + height * (1 + tanh((x - location) / width)) / 2``, elementwise; same units as x and y."""
    return base + 0.5 * height * (1.0 + np.tanh((np.asarray(x, dtype=float) - location) / width))


@dataclass
class SmoothStepFit:
    """Result of :func:`fit_smooth_step` (x in the scan's parameter unit, e.g. meV).

    Errors are one standard deviation from the weighted least-squares covariance, scaled by
    ``chi2_per_dof`` when that exceeds 1 (scatter beyond the error bars widens them, never
    narrows them).
    """

    quantity: str
    location: float
    location_error: float
    width: float
    width_error: float
    base: float
    height: float
    chi2_per_dof: float
    n_points: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def fit_smooth_step(x, y, y_error, *, quantity: str = "") -> SmoothStepFit:
    """Weighted least-squares fit of :func:`smooth_step` to a scanned curve.

    Args:
        x: (M,) scanned parameter values, strictly increasing, M >= 5.
        y, y_error: (M,) the quantity and its Monte Carlo error (> 0; non-finite or zero errors
            are replaced by the median error).
        quantity: name stored in the result.

    Returns:
        The fit; ``width`` is positive whichever way the step goes (the sign is in ``height``).

    Raises:
        ValueError: on malformed input, when the fit does not converge, or when the best step is
            centered outside ``[x[0], x[-1]]`` or wider than half the range, or its height is below 3 error bars
            (no change located).
    """
    x, y, y_error = (np.asarray(a, dtype=float) for a in (x, y, y_error))
    if x.ndim != 1 or len(x) < 5 or y.shape != x.shape or y_error.shape != x.shape:
        raise ValueError(f"x, y, y_error must be 1D of equal length >= 5, got {x.shape}, {y.shape}, {y_error.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"y must be finite; non-finite at x = {x[~np.isfinite(y)].tolist()}")
    good = np.isfinite(y_error) & (y_error > 0)
    sigma = np.where(good, y_error, np.median(y_error[good]) if good.any() else 1.0)

    span = x[-1] - x[0]
    # start at the steepest segment of a lightly smoothed curve, width a tenth of the range
    smoothed = np.convolve(np.pad(y, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    slopes = np.diff(smoothed) / np.diff(x)
    start_location = float(0.5 * (x[1:] + x[:-1])[np.argmax(np.abs(slopes))])
    start = [float(y[:3].mean()), float(y[-3:].mean() - y[:3].mean()), start_location, 0.1 * span]
    lower = [-np.inf, -np.inf, x[0] - span, 1e-3 * span]
    upper = [np.inf, np.inf, x[-1] + span, 10.0 * span]
    try:
        popt, pcov = curve_fit(smooth_step, x, y, p0=start, sigma=sigma, absolute_sigma=True,
                               bounds=(lower, upper), maxfev=20000)
    except RuntimeError as error:  # scipy: "Optimal parameters not found"
        raise ValueError(f"smooth-step fit of {quantity or 'the curve'} did not converge: {error}") from error
    # a "step" centered outside the scan or wider than half of it is a trend, not a located change
    if not (x[0] <= popt[2] <= x[-1]) or popt[3] > 0.5 * span:
        raise ValueError(f"no step of {quantity or 'the curve'} inside the scanned range: the best tanh is centered "
                         f"at {popt[2]:.3g} with width {popt[3]:.3g} (range {x[0]:g}..{x[-1]:g})")
    dof = max(len(x) - 4, 1)
    chi2 = float(np.sum(((y - smooth_step(x, *popt)) / sigma) ** 2))
    chi2_per_dof = chi2 / dof
    pcov = pcov * max(1.0, chi2_per_dof)
    errors = np.sqrt(np.clip(np.diag(pcov), 0.0, None))
    if abs(popt[1]) < 3.0 * errors[1]:
        raise ValueError(f"no step of {quantity or 'the curve'} inside the scanned range: its height "
                         f"{popt[1]:.3g} is below 3 error bars ({errors[1]:.2g})")
    return SmoothStepFit(
        quantity=quantity, location=float(popt[2]), location_error=float(errors[2]),
        width=float(popt[3]), width_error=float(errors[3]), base=float(popt[0]), height=float(popt[1]),
        chi2_per_dof=chi2_per_dof, n_points=len(x),
    )

