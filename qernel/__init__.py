"""qernel: foundation neural wavefunctions for families of continuum many-electron Hamiltonians.

One neural network (Haiku), conditioned on Hamiltonian parameters, variationally solves a
whole family of 2D many-electron Hamiltonians (moiré heterobilayers, quantum dots, the electron
gas) through NetKet's Monte Carlo machinery. Subpackages:

* :mod:`qernel.geometry` -- lattices, supercells, the Hilbert space of samples ``[r, p]``;
* :mod:`qernel.hamiltonian` -- Ewald sums, Hamiltonians, bands, NetKet operators;
* :mod:`qernel.ansatz` -- the QERNEL transformer and baselines (Haiku);
* :mod:`qernel.sampler` -- samplers whose chains carry Hamiltonian parameters;
* :mod:`qernel.training` -- per-group centered (natural) gradients, the driver, checkpoints;
* :mod:`qernel.observables` -- energy decomposition, density, structure factor, g(r);
* :mod:`qernel.config`, :mod:`qernel.run`, :mod:`qernel.cli` -- configuration files and the CLI.

The top level holds only the names of a typical script (``__all__``, about 25: Hamiltonians,
Hilbert space, model, sampler, parameter spaces, driver, energy measurement, configuration);
the subpackages are the namespaces for everything else. Names that the top level offered before
(``qernel.safe_norm``, ``qernel.KineticEnergy``, ...) still work until qernel 0.3 with a
:class:`DeprecationWarning` that names their subpackage (table: ``qernel/_moved.py``).
``qernel.KineticEnergy`` and ``qernel.PotentialEnergy`` are not top-level names on purpose:
NetKet has classes of the same names with other signatures.

``import qernel`` imports neither JAX nor NetKet (the names are loaded on first access) and
changes one thing in the calling process: with jaxlib 0.10.2-0.11.0 it adds
``--xla_cpu_experimental_ynn_fusion_type=`` to ``XLA_FLAGS``, since those versions crash on
float32 programs of the model's size in YNNPACK fusions (``qernel/_ynn.py``; ``QERNEL_YNN_GUARD=0``
or a YNN setting of the user's own in ``XLA_FLAGS`` keeps them). :func:`qernel.pin_to_one_cpu`
is the opt-in guard against a CPU deadlock of jaxlib 0.10 on few-core machines.
"""

from ._xla import pin_if_requested as _pin_if_requested
from ._xla import pin_to_one_cpu
from ._ynn import disable_ynn_fusion as _disable_ynn_fusion

# Before JAX starts its backend (XLA reads XLA_FLAGS then): jaxlib 0.10.2's YNNPACK fusions
# segfault on rank-7 float32 arrays, which the forward Laplacian of attention makes.
_disable_ynn_fusion()

# No pinning by default: only QERNEL_PIN_CPU=1 pins on import (jaxlib 0.10 LAPACK deadlock on
# few cores, see qernel/_xla.py); the qernel CLI and the test suite call pin_to_one_cpu() themselves.
_pin_if_requested()

__version__ = "0.1.0"

#: ``{top-level name: subpackage that defines it}`` -- the curated top level. Loaded on first
#: access (PEP 562): the ``qernel`` command imports this package, and ``qernel --help`` must not
#: wait for JAX and NetKet to import.
_CURATED: dict[str, str] = {
    # Hamiltonians and the space their samples live in
    "ContinuumHamiltonian": "hamiltonian",
    "MoireHamiltonian": "hamiltonian",
    "WSE2_WS2": "hamiltonian",
    "HarmonicTrap": "hamiltonian",
    "ElectronGas": "hamiltonian",
    "LocalEnergy": "hamiltonian",
    "ElectronHilbert": "geometry",
    "Supercell": "geometry",
    "triangular_lattice": "geometry",
    "square_lattice": "geometry",
    # the model
    "QERNELConfig": "ansatz",
    "make_qernel": "ansatz",
    "make_slater_jastrow": "ansatz",
    # sampling a family of Hamiltonians
    "make_sampler": "sampler",
    "ParameterSpace": "sampler",
    "ParameterList": "sampler",
    "ParameterGrid": "sampler",
    "UniformRange": "sampler",
    # optimisation and measurement
    "FoundationVMC": "training",
    "measure_energy": "observables",
    "energy_decomposition": "observables",
    "measure": "observables",
    # configuration files
    "load_config": "config",
    "RunConfig": "config",
    "build_run": "run",
}

__all__ = sorted([*_CURATED, "pin_to_one_cpu"])

#: public modules and subpackages, importable as attributes (``qernel.units``) without an import
_SUBMODULES = frozenset({
    "ansatz", "cli", "config", "demo", "distributed", "geometry", "hamiltonian", "observables", "pretrained", "reference",
    "run", "sampler", "scan", "streaming", "training", "units",
})


def __getattr__(name: str):
    import importlib

    if name in _CURATED:
        value = getattr(importlib.import_module(f".{_CURATED[name]}", __name__), name)
        globals()[name] = value  # later accesses skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    from ._moved import MOVED, REMOVAL_VERSION

    if name in MOVED:
        import warnings

        where = f"qernel.{MOVED[name]}"
        warnings.warn(f"qernel.{name} is deprecated and will be removed in qernel {REMOVAL_VERSION}: "
                      f"use {where}.{name} (the top level keeps only qernel.__all__)",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(where), name)  # not cached: every access warns
    raise AttributeError(f"module 'qernel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
