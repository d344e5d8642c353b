"""``qernel reference CONFIG.toml --method {bloch,hf,ed} [--bands N] [--param V=0:30:7] [--json OUT]``.

Reads the ``[system]`` table of a ``qernel train`` configuration (validated as :func:`qernel.config.load_config` does),
validates every input before any computation (one-line errors naming the key and the allowed range), computes the
reference at each V and prints a table (meV); ``--json`` writes ``{"method", "system", "results": [...]}`` with
unit-named keys.

Methods:

* ``bloch``: the Slater determinant of the lowest non-interacting levels (Bloch states), its energy under the
  interacting Hamiltonian evaluated exactly in the plane-wave basis (the Monte Carlo version is
  :func:`qernel.reference.bloch_slater_energy`; the tests check the two conventions agree). For an open shell the
  determinant is one arbitrary choice among the degenerate ones.
* ``hf``: :func:`qernel.reference.hartree_fock.hartree_fock` (lowest of its starts).
* ``ed``: :func:`qernel.reference.ed.band_projected_ed` with ``--bands`` bands per k.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

from ..units import PARAMETER_UNITS

__all__ = ["ReferenceInputError", "validate_reference_inputs", "run_reference"]

METHODS = ("bloch", "hf", "ed")
#: Upper limit of ``--bands`` (the ED refuses larger Hilbert spaces by memory anyway).
MAX_BANDS = 40


class ReferenceInputError(ValueError):
    """Invalid input of ``qernel reference`` (the message names the key and the allowed range)."""


def _supercell_cells(supercell) -> int:
    import numpy as np

    matrix = np.eye(2, dtype=int) * supercell if isinstance(supercell, int) else np.asarray(supercell)
    return int(abs(round(np.linalg.det(matrix))))


def validate_reference_inputs(system, method: str, bands: int | None, values: dict | None) -> dict:
    """Check everything before any compute; return ``{"V": [...], "n_cells", "n_electrons", "bands"}``.

    Args:
        system: the ``[system]`` config, e.g. :class:`~qernel.config.MoireSystemConfig` (already type-checked by the config loader).
        method: one of ``bloch``, ``hf``, ``ed``.
        bands: ``--bands`` (ED only; default 1 for ED).
        values: parsed ``--param`` values ``{"V": [...]}`` or None (then ``system.V``).

    Raises:
        ReferenceInputError: naming the offending key and its allowed range.
    """
    if method not in METHODS:
        raise ReferenceInputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    from ..config import system_kind

    kind = system_kind(system)
    if kind != "moire":
        raise ReferenceInputError(
            f"system.kind must be 'moire' for qernel reference (moiré supercell references), got {kind!r}")
    n_cells = _supercell_cells(system.supercell)
    if system.n_electrons is not None:
        n_electrons = system.n_electrons
        if not 1 <= n_electrons <= 2 * n_cells * MAX_BANDS:
            raise ReferenceInputError(f"system.n_electrons must be in [1, {2 * n_cells * MAX_BANDS}], got {n_electrons}")
    else:
        filling = 1.0 if system.filling is None else float(system.filling)
        n_float = filling * n_cells
        if not (math.isfinite(n_float) and n_float >= 1 - 1e-9 and abs(n_float - round(n_float)) < 1e-9):
            raise ReferenceInputError(
                f"system.filling must be a positive multiple of 1/{n_cells} (an integer number of electrons in the "
                f"{n_cells} moiré cells of system.supercell), got {system.filling!r}")
        n_electrons = int(round(n_float))
    if values is None:
        values = {"V": [float(system.V)]}
    extra = sorted(set(values) - {"V"})
    if extra:
        raise ReferenceInputError(f"--param: only V can be scanned by qernel reference, got {', '.join(extra)}")
    Vs = [float(v) for v in values.get("V", [])]
    if not Vs:
        raise ReferenceInputError("--param V: give at least one value (V=v1,v2 or V=start:stop:count)")
    for V in Vs:
        if not (math.isfinite(V) and 0.0 <= V <= 1.0e3):
            raise ReferenceInputError(
                f"--param V (or system.V) must be in [0, 1000] meV (negative V is phi + 180 deg: change system.phi "
                f"instead), got {V}")
    if method != "ed":
        if bands is not None:
            raise ReferenceInputError(f"--bands applies to --method ed only, got --bands {bands} with --method {method}")
    else:
        bands = 1 if bands is None else bands
        if system.n_up is not None:
            n_max_spin = max(system.n_up, n_electrons - system.n_up)
        else:
            n_max_spin = n_electrons if system.polarized in (None, True) else math.ceil(n_electrons / 2)
        lowest = max(1, math.ceil(n_max_spin / n_cells))
        if isinstance(bands, bool) or not isinstance(bands, int) or not lowest <= bands <= MAX_BANDS:
            raise ReferenceInputError(
                f"--bands must be an integer in [{lowest}, {MAX_BANDS}] ({n_electrons} electrons in {n_cells} "
                f"k-points need at least {lowest} band(s)), got {bands!r}")
    return {"V": Vs, "n_cells": n_cells, "n_electrons": n_electrons, "bands": bands,
            "filling": str(Fraction(n_electrons, n_cells))}


def load_system(path):
    """The validated ``[system]`` table of a configuration file (other sections are not needed here)."""
    from ..config import config_from_dict, read_toml

    data = read_toml(path)
    return config_from_dict({"system": data.get("system", {}), "parameters": {"type": "none"}}).system


def _hamiltonian(system):
    from ..hamiltonian import MoireHamiltonian

    return MoireHamiltonian(
        system.V, system.phi, system.m_star, system.a_M, system.eps, supercell=system.supercell,
        n_electrons=system.n_electrons, filling=system.filling, n_up=system.n_up,
        polarized=True if system.polarized is None else system.polarized, interaction=system.interaction,
    )


def run_reference(config_path, method: str, bands: int | None = None, values: dict | None = None,
                  json_path=None, cutoff: float | None = None, print_fn=print) -> dict:
    """Validate, compute and report; returns the JSON document (see the module docstring)."""
    system = load_system(config_path)
    checked = validate_reference_inputs(system, method, bands, values)
    if cutoff is not None and not (math.isfinite(cutoff) and 0.5 <= cutoff <= 10):
        raise ReferenceInputError(f"--cutoff must be in [0.5, 10] (|G|_max in units of |g_1|), got {cutoff}")
    hamiltonian = _hamiltonian(system)
    results = []
    header = f"{'V [meV]':>8s}  {'E/N [meV]':>12s}  {'E [meV]':>12s}  {'extra':>30s}"
    print_fn(f"qernel reference --method {method}: N = {hamiltonian.n_electrons} (n_up = {hamiltonian.n_up}), "
             f"{checked['n_cells']} moiré cells, filling {checked['filling']}, eps = {system.eps}")
    print_fn(header)
    for V in checked["V"]:
        if method == "bloch":
            from .bloch import bloch_determinant

            record = bloch_determinant(hamiltonian, V, cutoff)
            extra = f"non-interacting {record['noninteracting_energy_meV']:.4f}"
        elif method == "hf":
            from .hartree_fock import hartree_fock

            record = hartree_fock(hamiltonian, V=V, cutoff=cutoff).as_dict()
            extra = f"gap {record['gap_meV']:.3f}{'' if record['converged'] else ' NOT CONVERGED'}"
        else:
            from .ed import band_projected_ed

            record = band_projected_ed(hamiltonian, n_bands=checked["bands"], V=V, cutoff=cutoff).as_dict()
            record.setdefault("V_meV", V)
            extra = f"dimension {record.get('dimension')}"
        results.append(record)
        print_fn(f"{V:8.3f}  {record['energy_per_electron_meV']:12.5f}  {record['energy_meV']:12.5f}  {extra:>30s}")
    system_dict = {k: getattr(system, k) for k in ("kind", "V", "phi", "m_star", "a_M", "eps", "supercell", "filling",
                                                   "n_electrons", "n_up", "polarized", "interaction")}
    units = {k: PARAMETER_UNITS[k] for k in ("V", "phi", "m_star", "a_M", "eps")}
    document = {"method": method, "bands": checked["bands"], "system": system_dict, "system_units": units,
                "results": results}
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(document, indent=1, default=_json_default) + "\n")
        print_fn(f"wrote {json_path}")
    return document


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
