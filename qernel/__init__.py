"""qernel: foundation neural wavefunctions for families of continuum many-electron Hamiltonians.

One neural network (Haiku), conditioned on Hamiltonian parameters, variationally solves a
whole family of 2D many-electron Hamiltonians (moiré heterobilayers, quantum dots, the electron
gas) through NetKet's Monte Carlo machinery. Subpackages:

* :mod:`qernel.hamiltonian` -- lattices, Ewald sums, Hamiltonians, bands, NetKet operators;
* :mod:`qernel.ansatz` -- the QERNEL transformer and baselines (Haiku);
* :mod:`qernel.sampler` -- samplers whose chains carry Hamiltonian parameters;
* :mod:`qernel.training` -- per-group centred (natural) gradients, the driver, checkpoints;
* :mod:`qernel.observables` -- energy decomposition, density, structure factor, g(r);
* :mod:`qernel.config`, :mod:`qernel.run`, :mod:`qernel.cli` -- configuration files and the CLI.

Everything listed in the subpackages' ``__all__`` is re-exported here.
"""

from ._xla import pin_to_one_cpu

pin_to_one_cpu()  # before JAX starts its threads: avoids an XLA CPU deadlock (see qernel/_xla.py)

from . import ansatz, hamiltonian  # noqa: E402, observables, sampler, training, units
from .ansatz import *  # noqa: F401,F403,E402
from .ansatz import __all__ as _ansatz_all
from .config import *  # noqa: F401,F403,E402
from .config import __all__ as _config_all
from .hamiltonian import *  # noqa: F401,F403,E402
from .hamiltonian import __all__ as _hamiltonian_all
from .observables import *  # noqa: F401,F403,E402
from .observables import __all__ as _observables_all
from .reference import bloch_slater_energy
from .run import *  # noqa: F401,F403,E402
from .run import __all__ as _run_all
from .sampler import *  # noqa: F401,F403,E402
from .sampler import __all__ as _sampler_all
from .training import *  # noqa: F401,F403,E402
from .training import __all__ as _training_all

__version__ = "0.1.0"

__all__ = sorted(
    set(_hamiltonian_all)
    | set(_ansatz_all)
    | set(_sampler_all)
    | set(_training_all)
    | set(_observables_all)
    | set(_config_all)
    | set(_run_all)
    | {"bloch_slater_energy", "units"}
)
