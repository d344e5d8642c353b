"""Energy decomposition per parameter group: kinetic, one-body (e.g. moiré), interaction, total.

Local estimators (internal units, shape (n_chains, chain_length)):

* kinetic ``-1/2 [lap log psi + (grad log psi)^2]`` from ``hamiltonian.kinetic_operator()`` (needs the
  wavefunction, hence an ``MCState``); for a complex wavefunction its imaginary part averages to
  zero and is dropped;
* one-body ``sum_i U(r_i; p)`` and interaction ``W(r; p)`` read from the samples alone.

The total is the per-sample sum of the three, so its error bar includes their correlations.
Results are in user units: multiplied by ``hamiltonian.energy_unit`` (meV for moiré systems).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from .estimates import Estimate, estimate
from .groups import ParameterGroups, auto_batch_size, check_samples, groups_from_state, map_samples

__all__ = [
    "ENERGY_COMPONENTS",
    "EnergyDecomposition",
    "potential_energy_components",
    "local_energy_components",
    "energy_decomposition",
    "measure_energy",
]

#: names of the local-energy components, in the order they are summed into the total
ENERGY_COMPONENTS = ("kinetic", "one_body", "interaction")


@dataclass(frozen=True)
class EnergyDecomposition:
    """Energy components of one parameter group (user energy units).

    Attributes:
        parameters: the group's carried parameter values ``{name: value}`` (user units).
        unit: name of the energy unit (e.g. ``"meV"``).
        kinetic, one_body, interaction, total: :class:`~qernel.observables.estimates.Estimate`
            (scalar) of each component and of their per-sample sum.
        n_samples: number of samples of the group.
    """

    parameters: dict[str, float]
    unit: str
    kinetic: Estimate
    one_body: Estimate
    interaction: Estimate
    total: Estimate
    n_samples: int

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"parameters": dict(self.parameters), "unit": self.unit, "n_samples": self.n_samples}
        for name in (*ENERGY_COMPONENTS, "total"):
            out[name] = getattr(self, name).to_dict()
        return out


class _PotentialKernel:
    """One sample (2N + P,) -> (one-body, interaction) energies, internal units.

    Hashed by the Hamiltonian's identity, so the compiled kernel is reused for the same Hamiltonian.
    """

    def __init__(self, hamiltonian) -> None:
        self.hamiltonian = hamiltonian

    def __hash__(self) -> int:
        return id(self.hamiltonian)

    def __eq__(self, other) -> bool:
        return type(other) is _PotentialKernel and other.hamiltonian is self.hamiltonian

    def __call__(self, x):
        one_body = jnp.asarray(self.hamiltonian.potential_from_sample(x, "one_body"), x.dtype)
        interaction = jnp.asarray(self.hamiltonian.potential_from_sample(x, "interaction"), x.dtype)
        return jnp.stack([one_body, interaction])


def potential_energy_components(samples, hamiltonian, *, batch_size: int | None = None) -> dict[str, jnp.ndarray]:
    """One-body and interaction local energies of every sample (internal units), from samples alone.

    Args:
        samples: (n_chains, chain_length, 2N + P).
        hamiltonian: the :class:`~qernel.hamiltonian.base.ContinuumHamiltonian` of the samples.
        batch_size: samples evaluated at once (default: automatic).

    Returns:
        ``{"one_body": (n_chains, chain_length), "interaction": (n_chains, chain_length)}``.
    """
    samples = check_samples(samples, hamiltonian)
    if batch_size is None:
        batch_size = auto_batch_size(64 * hamiltonian.n_electrons**2)
    values = map_samples(_PotentialKernel(hamiltonian), samples, batch_size=batch_size)
    return {"one_body": values[..., 0], "interaction": values[..., 1]}


def local_energy_components(vstate, hamiltonian, *, chunk_size: int | None = None) -> dict[str, jnp.ndarray]:
    """Kinetic, one-body and interaction local estimators of ``vstate.samples`` (internal units).

    Uses NetKet's ``vstate.local_estimators(op)`` with ``hamiltonian.kinetic_operator()`` and
    ``hamiltonian.potential_operator("one_body" / "interaction")``; each value has shape
    (n_chains, chain_length). The kinetic part is real (its imaginary part is dropped).
    ``chunk_size`` (default: the state's) bounds the samples evaluated at once.
    """

    def local(op):
        return jnp.real(vstate.local_estimators(op, chunk_size=chunk_size).data)

    return {
        "kinetic": local(hamiltonian.kinetic_operator()),
        "one_body": local(hamiltonian.potential_operator("one_body")),
        "interaction": local(hamiltonian.potential_operator("interaction")),
    }


def energy_decomposition(
    components: Mapping[str, Any],
    groups: ParameterGroups,
    *,
    energy_unit: float = 1.0,
    unit_name: str = "",
) -> dict[tuple[float, ...], EnergyDecomposition]:
    """Per-group estimates of the energy components and their total.

    Args:
        components: ``{"kinetic", "one_body", "interaction"} -> (n_chains, chain_length)`` real
            local estimators in internal units (e.g. from :func:`local_energy_components`).
        groups: chain-to-group assignment (:mod:`qernel.observables.groups`).
        energy_unit: user units per internal unit (``hamiltonian.energy_unit``).
        unit_name: name of the user unit, stored in the results.

    Returns:
        ``{group key: EnergyDecomposition}`` (see :mod:`qernel.observables.groups` for keys).
    """
    missing = [name for name in ENERGY_COMPONENTS if name not in components]
    if missing:
        raise ValueError(f"components must contain {ENERGY_COMPONENTS}, missing {missing}")
    arrays = {name: jnp.real(jnp.asarray(components[name])) for name in ENERGY_COMPONENTS}
    shape = arrays["kinetic"].shape
    for name, array in arrays.items():
        if array.ndim != 2 or array.shape != shape:
            raise ValueError(
                f"component {name!r} must have shape (n_chains, chain_length) = {shape}, got {array.shape}"
            )
    if shape[0] != groups.n_chains:
        raise ValueError(f"local energies have {shape[0]} chains, groups describe {groups.n_chains}")
    stacked = jnp.stack([arrays[name] for name in ENERGY_COMPONENTS], axis=-1)
    stacked = jnp.concatenate([stacked, stacked.sum(-1, keepdims=True)], axis=-1)  # (..., 4)
    results = {}
    for g in groups.present:
        members = groups.members(g)
        est = estimate(stacked[np.flatnonzero(members)], blocking=True).scaled(energy_unit)
        results[groups.key(g)] = EnergyDecomposition(
            parameters=groups.parameters(g),
            unit=unit_name,
            kinetic=est[0],
            one_body=est[1],
            interaction=est[2],
            total=est[3],
            n_samples=int(members.sum() * shape[1]),
        )
    return results


def measure_energy(
    vstate, hamiltonian, *, chunk_size: int | None = None
) -> dict[tuple[float, ...], EnergyDecomposition]:
    """Energy decomposition of an ``MCState`` per parameter group, in user units.

    Uses the cached ``vstate.samples`` (sampling if there are none) and the groups of its
    qernel sampler; ``chunk_size`` as in :func:`local_energy_components`. See
    :func:`energy_decomposition`.
    """
    components = local_energy_components(vstate, hamiltonian, chunk_size=chunk_size)
    return energy_decomposition(
        components,
        groups_from_state(vstate, hamiltonian),
        energy_unit=hamiltonian.energy_unit,
        unit_name=hamiltonian.energy_unit_name,
    )
