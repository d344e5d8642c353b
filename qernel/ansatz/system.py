"""What a model builder takes from the Hamiltonian and the parameter space.

A model builder (:func:`~qernel.ansatz.qernel.make_qernel`,
:func:`~qernel.ansatz.slater_jastrow.make_slater_jastrow`) is given the Hamiltonian and the
parameter space, and reads from them:

- ``hamiltonian.hilbert``: electrons, spin sector, cell, carried parameter names;
- ``hamiltonian.cusp_coupling``: Coulomb coupling kappa (internal units) for the Jastrow cusps;
- ``hamiltonian.length_scale``: natural length (internal units) of open-boundary features;
- ``parameter_space.center`` / ``.scale``: (P,) normalisation ``(p - center) / scale`` of the
  carried parameters (user units).

Any object with these attributes works (duck typing: the ansatz does not import the Hamiltonian
classes). The low-level path, an :class:`ElectronHilbert` with a hand-given normalisation, is
kept for direct use of the network.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qernel.geometry import ElectronHilbert

__all__ = ["resolve_system"]


def resolve_system(
    system: Any, parameter_space: Any = None, parameter_center=None, parameter_scale=None, *, who: str = "model",
    conditioned: bool = True,
) -> tuple[ElectronHilbert, Any, Any, dict[str, float]]:
    """``(hilbert, center, scale, physics)`` for a model builder.

    Args:
        system: a Hamiltonian (has ``hilbert``, ``cusp_coupling``, ``length_scale``) or an
            :class:`ElectronHilbert`.
        parameter_space: with a Hamiltonian, the parameter space (``names``, ``center``,
            ``scale``), or None if no parameter is carried; with an ``ElectronHilbert``, the
            legacy positional ``parameter_center``.
        parameter_center, parameter_scale: (P,) normalisation, ``ElectronHilbert`` path only.
        who: the builder's name, for error messages.
        conditioned: False for a model that ignores the carried parameters (no parameter space
            needed; ``center``/``scale`` are None).

    Returns:
        ``physics`` is ``{}`` on the ``ElectronHilbert`` path, else
        ``{"cusp_coupling": kappa, "length_scale": l}`` from the Hamiltonian.
    """
    if isinstance(system, ElectronHilbert):
        if parameter_space is not None:
            if parameter_center is not None:
                raise ValueError(f"{who}: parameter_center given twice (positionally and by keyword)")
            parameter_center = parameter_space
        return system, parameter_center, parameter_scale, {}
    hilbert = getattr(system, "hilbert", None)
    if not isinstance(hilbert, ElectronHilbert) or not all(
            hasattr(system, name) for name in ("cusp_coupling", "length_scale")):
        raise TypeError(
            f"{who}: expected a Hamiltonian (with hilbert, cusp_coupling, length_scale) or an ElectronHilbert, "
            f"got {type(system).__name__}"
        )
    if parameter_center is not None or parameter_scale is not None:
        raise ValueError(
            f"{who}: with a Hamiltonian the normalisation comes from the parameter space; pass "
            "parameter_space instead of parameter_center/parameter_scale"
        )
    names = hilbert.parameter_names
    if parameter_space is None:
        if names and conditioned:
            raise ValueError(
                f"{who}: the Hamiltonian carries {list(names)}: pass the parameter space the chains carry "
                "(it fixes the network's normalisation (p - center) / scale)"
            )
        center = scale = None
    else:
        space_names = tuple(getattr(parameter_space, "names", ()))
        if space_names != tuple(names):
            raise ValueError(
                f"{who}: parameter space names {space_names} do not match the Hamiltonian's carried parameters "
                f"{tuple(names)} (same names in the same order are required)"
            )
        center = np.asarray(parameter_space.center, dtype=float) if names else None
        scale = np.asarray(parameter_space.scale, dtype=float) if names else None
    physics = {"cusp_coupling": float(system.cusp_coupling), "length_scale": float(system.length_scale)}
    return hilbert, center, scale, physics
