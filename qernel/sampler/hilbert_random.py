"""Deprecated: moved to :mod:`qernel.geometry.random_state` (this path is removed in qernel 0.3)."""

from .._shim import reexport

reexport("qernel.sampler.hilbert_random", "qernel.geometry.random_state", globals())
