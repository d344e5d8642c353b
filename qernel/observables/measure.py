"""All observables of an ``MCState`` in one call, per parameter group, JSON-ready.

Every observable is computed from the same cached ``vstate.samples`` (sampled if there are none)
and the chain groups of the state's qernel sampler.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .density import density_map
from .energy import measure_energy
from .fourier import crystal_order_parameter
from .groups import groups_from_state, records
from .pair_correlation import pair_correlation
from .structure_factor import structure_factor

__all__ = ["OBSERVABLES", "measure", "to_json"]

#: names accepted by :func:`measure`, with the function that computes each from samples
OBSERVABLES = ("energy", "density", "order_parameter", "structure_factor", "pair_correlation")

_FROM_SAMPLES = {
    "density": density_map,
    "order_parameter": crystal_order_parameter,
    "structure_factor": structure_factor,
    "pair_correlation": pair_correlation,
}


def measure(
    vstate,
    hamiltonian,
    which: Sequence[str] = OBSERVABLES,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[tuple[float, ...], Any]]:
    """Measure several observables of ``vstate`` per parameter group.

    Args:
        vstate: ``nk.vqs.MCState`` with a sampler from :func:`qernel.sampler.make_sampler`.
        hamiltonian: the :class:`~qernel.hamiltonian.base.ContinuumHamiltonian` of the state.
        which: a subset of :data:`OBSERVABLES` (``"energy"`` needs the wavefunction; the others
            need a periodic supercell and only the samples).
        options: per-observable keyword arguments, e.g. ``{"density": {"n_bins": 32},
            "structure_factor": {"q_max": 20.0}, "energy": {"chunk_size": 256}}`` (see
            :func:`~qernel.observables.energy.measure_energy`,
            :func:`~qernel.observables.density.density_map`,
            :func:`~qernel.observables.fourier.crystal_order_parameter`,
            :func:`~qernel.observables.structure_factor.structure_factor`,
            :func:`~qernel.observables.pair_correlation.pair_correlation`).

    Returns:
        ``{observable name: {group key: result}}``; serialise with :func:`to_json`.
    """
    which = tuple(which)
    unknown = [name for name in which if name not in OBSERVABLES]
    if unknown:
        raise ValueError(f"unknown observable(s) {unknown}; allowed: {OBSERVABLES}")
    options = dict(options or {})
    extra = [name for name in options if name not in which]
    if extra:
        raise ValueError(f"options given for observables not measured: {extra} (which={which})")
    samples = vstate.samples
    groups = groups_from_state(vstate, hamiltonian)
    out: dict[str, dict[tuple[float, ...], Any]] = {}
    for name in which:
        if name == "energy":
            out[name] = measure_energy(vstate, hamiltonian, **dict(options.get(name, {})))
        else:
            out[name] = _FROM_SAMPLES[name](samples, hamiltonian, groups=groups, **dict(options.get(name, {})))
    return out


def to_json(results: Mapping[str, Mapping[tuple[float, ...], Any]], **dump_options) -> str:
    """JSON text of :func:`measure`'s output: ``{observable: [per-group record, ...]}``.

    Each record contains its group's ``"parameters"``; NaN error bars are written as ``NaN``
    (Python's JSON dialect).
    """
    return json.dumps({name: records(per_group) for name, per_group in results.items()}, **dump_options)
