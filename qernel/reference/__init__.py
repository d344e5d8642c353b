"""Reference energies and states of moiré supercells, independent of any trained model (NumPy/SciPy).

* :mod:`qernel.reference.bloch` -- the non-interacting Bloch Slater determinant evaluated by Monte Carlo;
* :mod:`qernel.reference.planewave` -- the supercell plane-wave basis and the Coulomb convention shared by
  Hartree-Fock and exact diagonalisation;
* :mod:`qernel.reference.hartree_fock` -- unrestricted self-consistent Hartree-Fock;
* :mod:`qernel.reference.hartree_fock_store` -- Hartree-Fock states saved to a file and reloaded (checked);
* :mod:`qernel.reference.ed` -- band-projected exact diagonalisation.

Submodules other than :mod:`~qernel.reference.bloch` are imported on use (``from qernel.reference.hartree_fock
import ...``) so that ``import qernel`` stays light.
"""

from .bloch import bloch_slater_energy, slater_energy_mc

__all__ = ["bloch_slater_energy", "slater_energy_mc"]
