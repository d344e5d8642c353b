"""``netket.hilbert.random.random_state`` for :class:`ElectronHilbert` (needed by ``MCState``).

``nk.vqs.MCState`` calls ``hilbert.random_state(key, 1, dtype)`` to get a dummy input for the
model's ``init``. This registers a method for :class:`ElectronHilbert`: electrons uniform in the
supercell (periodic) or standard-normal positions (open), carried parameter columns set to 0 (the
Hilbert space does not know the parameter values; chains get theirs from the sampler's
parameter space). Registered only if no method exists yet (importing this module twice, e.g.
through the old path ``qernel.sampler.hilbert_random``, adds nothing). :mod:`qernel.geometry`
imports it, so every ``ElectronHilbert`` has its random state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from netket.hilbert.random import random_state
from netket.utils.dispatch import dispatch

from .hilbert import ElectronHilbert

__all__ = ["electron_random_state"]


def electron_random_state(hilb: ElectronHilbert, key, size: int, dtype) -> jax.Array:
    """(size, 2N + P) random rows: uniform (periodic) / N(0, 1) (open) positions, parameters 0."""
    n_el = hilb.n_electrons
    if hilb.supercell is None:
        positions = jax.random.normal(key, (size, n_el, 2), dtype)
    else:
        fractional = jax.random.uniform(key, (size, n_el, 2), dtype)
        positions = hilb.supercell.to_cartesian(fractional)
    return hilb.join(positions, jnp.zeros((size, hilb.n_parameters), dtype))


def _already_registered() -> bool:
    try:
        random_state(ElectronHilbert(1, 0, None), jax.random.PRNGKey(0), 1, dtype=jnp.float32)
    except NotImplementedError:
        return False
    return True


if not _already_registered():

    @dispatch
    def random_state(hilb: ElectronHilbert, key, size: int, *, dtype):  # noqa: F811
        return electron_random_state(hilb, key, size, dtype)
