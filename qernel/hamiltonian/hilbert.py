"""Deprecated: moved to :mod:`qernel.geometry.hilbert` (this path is removed in qernel 0.3)."""

from .._shim import reexport

reexport("qernel.hamiltonian.hilbert", "qernel.geometry.hilbert", globals())
