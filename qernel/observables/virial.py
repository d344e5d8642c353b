"""Virial theorem for the harmonic trap: ``2T - 2U + W = 0`` in every eigenstate.

For ``H = T + U + W`` with ``U = 1/2 omega^2 sum r_i^2`` (homogeneous of degree 2) and the Coulomb
``W`` (degree -1), scaling an eigenstate ``psi(r) -> lambda^N psi(lambda r)`` cannot lower its
energy ``T lambda^2 + U / lambda^2 + W lambda`` to first order, so ``2T - 2U + W = 0``. A
variational state optimised over its length scale satisfies it too; a trained network that does
not is not at a stationary point of the energy (or its estimators are wrong). The per-sample
series ``2 T_loc - 2 U_loc + W_loc`` is estimated with its own error bar (T, U and W are
correlated on the same samples, so their separate errors must not be combined).

Moiré supercell (:class:`~qernel.hamiltonian.moire.MoireHamiltonian`), the analogue and why it is
not checked here: scaling the positions at fixed cell is not allowed (the periodic images move),
so the theorem must scale the cell with them, ``L = n a_M -> lambda L``. The moiré potential
``V(r / a_M)`` is then invariant, the Ewald energy with its neutralising background is homogeneous
of degree -1 in (positions, cell), and the theorem becomes
``2T + W_Ewald = -a_M dE/da_M = 2 P A`` (P = -dE/dA the 2D pressure at fixed N, V, m*, eps).
The right-hand side needs energies at neighbouring a_M (one trained model per a_M, or a model
conditioned on a_M), which qernel does not have yet; without it there is no closed identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from .estimates import Estimate, estimate
from .groups import ParameterGroups

__all__ = ["trap_virial"]


def trap_virial(
    components: Mapping[str, Any], groups: ParameterGroups, *, energy_unit: float = 1.0
) -> dict[tuple[float, ...], Estimate]:
    """Per-group estimate of ``2T - 2U + W`` (zero in an exact eigenstate of the harmonic trap).

    Args:
        components: ``{"kinetic", "one_body", "interaction"} -> (n_chains, chain_length)`` local
            estimators in internal units (:func:`~qernel.observables.energy.local_energy_components`),
            ``one_body`` being the trap potential ``1/2 omega^2 r^2`` and ``interaction`` the Coulomb energy.
        groups: chain-to-group assignment.
        energy_unit: user units per internal unit.

    Returns:
        ``{group key: Estimate}`` of the virial combination (with blocking errors), user units.
    """
    missing = [k for k in ("kinetic", "one_body", "interaction") if k not in components]
    if missing:
        raise ValueError(f"components must contain kinetic, one_body and interaction; missing {missing}")
    series = 2 * jnp.real(components["kinetic"]) - 2 * jnp.real(components["one_body"]) + jnp.real(
        components["interaction"]
    )
    if series.ndim != 2 or series.shape[0] != groups.n_chains:
        raise ValueError(f"components must have shape (n_chains={groups.n_chains}, chain_length), got {series.shape}")
    return {
        groups.key(g): estimate(series[np.flatnonzero(groups.members(g))], blocking=True).scaled(energy_unit)
        for g in groups.present
    }
