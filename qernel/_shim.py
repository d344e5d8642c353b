"""Deprecated module paths: a module that moved re-exports its new home and warns once on import."""

from __future__ import annotations

import importlib
import warnings

#: the qernel version in which the old module paths stop working
REMOVAL_VERSION = "0.3.0"


def reexport(old: str, new: str, namespace: dict) -> None:
    """Fill ``namespace`` (the old module's globals) with the public names of module ``new``, and warn.

    Args:
        old: the deprecated dotted module path (``qernel.hamiltonian.lattice``).
        new: the module that now defines its names (``qernel.geometry.lattice``).
        namespace: ``globals()`` of the old module.
    """
    module = importlib.import_module(new)
    names = list(getattr(module, "__all__", ()))
    namespace.update({name: getattr(module, name) for name in names})
    namespace["__all__"] = names
    namespace["__deprecated__"] = new  # the docs skip such modules (documented at their new path)
    warnings.warn(f"{old} is deprecated and will be removed in qernel {REMOVAL_VERSION}: import from {new}",
                  DeprecationWarning, stacklevel=3)
