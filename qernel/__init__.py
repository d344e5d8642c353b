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

Everything listed in the subpackages' ``__all__`` is re-exported here. ``import qernel`` changes
nothing in the calling process; :func:`qernel.pin_to_one_cpu` is the opt-in guard against a CPU
deadlock of jaxlib 0.10 on few-core machines.
"""

from ._xla import pin_if_requested as _pin_if_requested
from ._xla import pin_to_one_cpu

# No side effect by default: only QERNEL_PIN_CPU=1 pins on import (jaxlib 0.10 LAPACK deadlock on
# few cores, see qernel/_xla.py); the qernel CLI and the test suite call pin_to_one_cpu() themselves.
_pin_if_requested()

__version__ = "0.1.0"

#: Subpackages whose ``__all__`` is re-exported here.
_REEXPORTED = ("hamiltonian", "ansatz", "sampler", "training", "observables", "config", "run")


def _load_all() -> list[str]:
    """Import the subpackages and re-export their public names.

    Done on first attribute access (PEP 562), not at ``import qernel``: the ``qernel`` command
    imports this package, and ``qernel --help`` must not wait for JAX and NetKet to import.
    """
    import importlib

    names = {"bloch_slater_energy", "units"}
    for sub in _REEXPORTED:
        module = importlib.import_module(f".{sub}", __name__)
        globals().update({name: getattr(module, name) for name in module.__all__})
        names |= set(module.__all__)
    from . import units  # noqa: F401
    from .reference import bloch_slater_energy

    globals()["bloch_slater_energy"] = bloch_slater_energy
    globals()["__all__"] = sorted(names)
    return globals()["__all__"]


def __getattr__(name: str):
    if name == "__all__":
        return _load_all()
    if name.startswith("__"):
        raise AttributeError(name)
    _load_all()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module 'qernel' has no attribute {name!r}") from None
