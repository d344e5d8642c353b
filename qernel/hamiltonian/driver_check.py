"""Warn once when a stock NetKet driver trains on chains that carry several parameter values.

NetKet's ``VMC`` and ``VMC_SR`` center local energies and log-derivatives over the whole batch.
On chains that carry more than one Hamiltonian parameter value that gradient is biased by
``sum_g w_g (E_g - E)(<O>_g - <O>)`` (:mod:`qernel.training.gradient`);
:class:`qernel.training.FoundationVMC` centers within each value's group. qernel's operators
register their NetKet kernel arguments here and, when a driver without per-group centering is
on the call stack and the sampler's parameter space has more than one group, warn once per
process. Measurements outside a driver (``vstate.expect``, :mod:`qernel.streaming`) do not warn.
"""

from __future__ import annotations

import sys
import warnings
from typing import Union

from netket.driver import AbstractDriver
from netket.operator import ContinuousOperator
from netket.vqs import MCState, get_local_kernel_arguments

from .operators import KineticEnergy, LocalEnergy, PotentialEnergy

__all__ = ["StockDriverWarning"]


class StockDriverWarning(UserWarning):
    """A stock NetKet driver runs on chains that carry several Hamiltonian parameter values."""


_warned = False
#: frames searched upward for the calling driver (NetKet's dispatch adds about ten)
_MAX_DEPTH = 40


def _calling_driver():
    """The nearest NetKet driver among the calling frames' ``self`` (None if there is none)."""
    frame = sys._getframe(2)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, AbstractDriver):
            return owner
        frame = frame.f_back
    return None


def warn_if_stock_driver(vstate: MCState) -> None:
    """Warn (once per process) if a driver that centers over the whole batch uses ``vstate``
    while its chains carry more than one parameter value."""
    global _warned
    if _warned:
        return
    space = getattr(getattr(vstate.sampler, "rule", None), "parameter_space", None)
    if space is None or getattr(space, "n_groups", 1) <= 1:
        return
    driver = _calling_driver()
    if driver is None or getattr(driver, "centers_within_groups", getattr(driver, "centres_within_groups", False)):
        return
    _warned = True
    warnings.warn(
        f"{type(driver).__name__} centers the gradient over all chains, but they carry {space.n_groups} "
        "Hamiltonian parameter values: the gradient is biased; use qernel.training.FoundationVMC, which "
        "centers within each value's group",
        StockDriverWarning,
        stacklevel=3,
    )


@get_local_kernel_arguments.dispatch
def _kernel_arguments(vstate: MCState, operator: Union[LocalEnergy, KineticEnergy, PotentialEnergy]):  # noqa: UP007
    warn_if_stock_driver(vstate)
    return get_local_kernel_arguments.invoke(MCState, ContinuousOperator)(vstate, operator)
