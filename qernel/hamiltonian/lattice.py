"""Deprecated: moved to :mod:`qernel.geometry.lattice` (this path is removed in qernel 0.3)."""

from .._shim import reexport

reexport("qernel.hamiltonian.lattice", "qernel.geometry.lattice", globals())
