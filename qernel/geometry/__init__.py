"""The floor under Hamiltonians, models and samplers: lattices, supercells, the Hilbert space.

* :mod:`.lattice` -- 2D Bravais lattices and supercells (any cell shape: triangular moiré
  supercells included), wrapping, minimum image, commensurate k-points;
* :mod:`.hilbert` -- :class:`ElectronHilbert`, the space of sample rows ``[r, p]`` (``2N``
  Cartesian coordinates, then ``P`` carried Hamiltonian parameters), which owns that layout
  (:meth:`ElectronHilbert.split`, :meth:`ElectronHilbert.join`);
* :mod:`.random_state` -- ``netket.hilbert.random.random_state`` for ``ElectronHilbert``
  (registered on import of this package; ``nk.vqs.MCState`` needs it).

:mod:`qernel.hamiltonian`, :mod:`qernel.ansatz` and :mod:`qernel.sampler` are siblings built on
this package; it imports none of them. qernel keeps its own Hilbert space because NetKet's
``netket.experimental.geometry.Cell`` is orthorhombic and cannot describe a triangular supercell.
"""

from . import random_state as _random_state  # noqa: F401 (registers random_state)
from .hilbert import ElectronHilbert, join_sample, split_sample
from .lattice import Lattice, Supercell, square_lattice, triangular_lattice

__all__ = [
    "Lattice",
    "Supercell",
    "square_lattice",
    "triangular_lattice",
    "ElectronHilbert",
    "join_sample",
    "split_sample",
]
