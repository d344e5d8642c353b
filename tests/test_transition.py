"""The smooth-step fit recovers a known step (location, width) within its error bars, widens its
errors by chi^2/dof when the scatter exceeds the error bars, and rejects malformed input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.scan import locate_transition
from qernel.transition import fit_smooth_step, smooth_step


@settings(max_examples=25, deadline=None)
@given(location=st.floats(8.0, 22.0), width=st.floats(0.5, 5.0), height=st.floats(-1.0, 1.0).filter(lambda h: abs(h) > 0.2),
       seed=st.integers(0, 2**16))
def test_recovers_a_known_step_within_its_error_bars(location, width, height, seed):
    x = np.linspace(0.0, 30.0, 61)
    error = 0.01 * np.ones_like(x)
    y = smooth_step(x, 0.1, height, location, width) + np.random.default_rng(seed).standard_normal(x.shape) * error
    fit = fit_smooth_step(x, y, error)
    assert abs(fit.location - location) < 5 * fit.location_error + 1e-6
    assert abs(fit.width - width) < 5 * fit.width_error + 1e-6
    assert abs(fit.height - height) < 0.05
    assert 0.3 < fit.chi2_per_dof < 2.5


def test_scatter_beyond_the_error_bars_widens_the_errors():
    x = np.linspace(0.0, 30.0, 61)
    rng = np.random.default_rng(0)
    clean = smooth_step(x, 0.0, 0.4, 13.0, 3.0)
    quoted = 0.005 * np.ones_like(x)
    honest = fit_smooth_step(x, clean + rng.standard_normal(x.shape) * quoted, quoted)
    scattered = fit_smooth_step(x, clean + rng.standard_normal(x.shape) * 10 * quoted, quoted)
    assert scattered.chi2_per_dof > 30
    assert scattered.location_error > 5 * honest.location_error
    assert abs(scattered.location - 13.0) < 4 * scattered.location_error


def test_steepest_segment_is_fooled_by_one_outlier_and_the_fit_is_not():
    x = np.linspace(0.0, 30.0, 61)
    error = 0.005 * np.ones_like(x)
    y = smooth_step(x, 0.0, 0.4, 12.0, 3.0)
    y[45] += 0.15  # one bad point at V = 22.5
    assert abs(locate_transition(x, y, error).location - 12.0) > 5.0
    assert abs(fit_smooth_step(x, y, error).location - 12.0) < 0.5


@pytest.mark.parametrize("y", [0.3 * np.linspace(0.0, 1.0, 61), np.full(61, 0.2)])
def test_a_straight_line_or_a_constant_has_no_step_inside_the_range(y):
    x = np.linspace(0.0, 30.0, 61)
    noise = np.random.default_rng(1).standard_normal(61) * 0.003
    with pytest.raises(ValueError, match="no step"):
        fit_smooth_step(x, y + noise, 0.003 * np.ones(61))


@pytest.mark.parametrize("x, y, err, message", [
    ([0, 1, 2, 3], [0, 0, 1, 1], [1, 1, 1, 1], "length >= 5"),
    ([0, 1, 1, 3, 4], [0, 0, 1, 1, 1], [1] * 5, "strictly increasing"),
    ([0, 1, 2, 3, 4], [0, np.nan, 1, 1, 1], [1] * 5, "finite"),
])
def test_malformed_input_is_rejected(x, y, err, message):
    with pytest.raises(ValueError, match=message):
        fit_smooth_step(x, y, err)
