"""Hartree-Fock determinants stored to a file and reloaded (a cache between reference runs and pretraining).

Self-consistent Hartree-Fock on a 6x6 supercell (N = 24, 1332 plane waves) costs minutes per moiré depth V,
and orbital pretraining needs it at every trained V. :func:`save_hartree_fock_states` writes the occupied
orbitals of several V to one ``.npz`` (NumPy arrays only, no pickles) and :func:`load_hartree_fock_states`
rebuilds them for a given Hamiltonian, refusing a file made for another system and recomputing each stored
energy from the reloaded orbitals (one Fock build per V) so that a stored determinant is checked, not trusted.

Coefficients are stored in complex64 (half the size; relative error ~1e-7) and made orthonormal again on
loading by Löwdin's symmetric orthonormalisation, which moves them the least.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .hartree_fock import HartreeFockResult, determinant_energy
from .planewave import PlaneWaveBasis

__all__ = ["load_hartree_fock_states", "save_hartree_fock_states", "stored_hartree_fock_values"]

_SYSTEM_KEYS = ("phi", "m_star", "a_M", "eps", "interaction", "cutoff")
_FORMAT = "qernel.hartree_fock_states.v1"


def _system_record(basis: PlaneWaveBasis) -> dict[str, np.ndarray]:
    return {
        "format": np.array(_FORMAT),
        "supercell": np.asarray(basis.supercell.matrix, dtype=np.int64),
        **{key: np.array(float(getattr(basis, key))) for key in _SYSTEM_KEYS},
    }


def _key(V: float) -> str:
    return f"{float(V):g}"


def save_hartree_fock_states(path: str | Path, results: Mapping[float, HartreeFockResult] | list[HartreeFockResult]) -> Path:
    """Write (or extend) a file of Hartree-Fock determinants, one per moiré depth V.

    Args:
        path: the ``.npz`` file; an existing file of the same system is extended (a V already in it is replaced).
        results: :class:`~qernel.reference.hartree_fock.HartreeFockResult` s of one system at different V.

    Returns:
        the path written.
    """
    results = list(results.values()) if isinstance(results, Mapping) else list(results)
    if not results:
        raise ValueError("results must hold at least one Hartree-Fock result")
    path = Path(path)
    system = _system_record(results[0].basis)
    arrays: dict[str, np.ndarray] = {}
    if path.is_file():
        arrays = _read(path)
        _check_system(arrays, system, path)
    arrays.update(system)
    for result in results:
        mismatch = [k for k, v in _system_record(result.basis).items() if not np.array_equal(v, system[k])]
        if mismatch:
            raise ValueError(f"results mix systems (they differ in {mismatch}); store one system per file")
        tag = _key(result.basis.V)
        arrays[f"{tag}/coefficients_up"] = np.asarray(result.coefficients_up, dtype=np.complex64)
        arrays[f"{tag}/coefficients_down"] = np.asarray(result.coefficients_down, dtype=np.complex64)
        arrays[f"{tag}/energy_meV"] = np.array(result.energy_meV)
        arrays[f"{tag}/eigenvalues_up"] = np.asarray(result.eigenvalues_up)
        arrays[f"{tag}/eigenvalues_down"] = np.asarray(result.eigenvalues_down)
        arrays[f"{tag}/gap_meV"] = np.array(result.gap_meV)
        arrays[f"{tag}/converged"] = np.array(bool(result.converged))
        arrays[f"{tag}/start"] = np.array(result.start)
        arrays[f"{tag}/n_iterations"] = np.array(int(result.n_iterations))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)  # atomic: a reader never sees half a file
    return path


def _read(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a states file, refusing any other file."""
    if not path.is_file():
        raise ValueError(f"Hartree-Fock states file {path} does not exist (write it with save_hartree_fock_states)")
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    if str(arrays.get("format", "")) != _FORMAT:
        raise ValueError(f"{path} is not a file of Hartree-Fock states ({_FORMAT})")
    return arrays


def _tags(arrays: Mapping[str, np.ndarray]) -> list[str]:
    """The V keys of a states file, ascending."""
    return sorted({name.split("/")[0] for name in arrays if "/" in name}, key=float)


def stored_hartree_fock_values(path: str | Path) -> list[float]:
    """The moiré depths V (meV) a states file holds, ascending (read without checking the determinants)."""
    return [float(tag) for tag in _tags(_read(Path(path)))]


def _check_system(arrays: Mapping[str, np.ndarray], system: Mapping[str, np.ndarray], path: Path) -> None:
    for key, value in system.items():
        if not np.array_equal(np.asarray(arrays[key]), value):
            raise ValueError(f"{path} holds Hartree-Fock states of another system: {key} = {arrays[key]} "
                             f"in the file, {value} here")


def _lowdin(coefficients: np.ndarray) -> np.ndarray:
    """(n, n_pw) rows made orthonormal with the least change: ``S^(-1/2) C``, ``S = C C^H``."""
    c = coefficients.astype(np.complex128)
    if len(c) == 0:
        return c
    w, u = np.linalg.eigh(c @ c.conj().T)
    return (u / np.sqrt(w)) @ u.conj().T @ c


def load_hartree_fock_states(path: str | Path, hamiltonian, *, tol_meV: float = 1e-3) -> dict[float, HartreeFockResult]:
    """The stored determinants of ``hamiltonian``'s system, by V (meV), each checked against its stored energy.

    Args:
        path: a file written by :func:`save_hartree_fock_states`.
        hamiltonian: the :class:`~qernel.hamiltonian.moire.MoireHamiltonian` they are for (supercell, phi, m*,
            a_M, eps, interaction and the spin sector must match the file's).
        tol_meV: largest accepted difference (meV, total) between the stored energy and the energy recomputed
            from the reloaded orbitals.

    Returns:
        ``{V: HartreeFockResult}``; ``history`` and ``starts`` are not stored (empty), ``seconds`` is 0.
    """
    path = Path(path)
    arrays = _read(path)
    cutoff = float(arrays["cutoff"])
    states = {}
    for tag in _tags(arrays):
        basis = PlaneWaveBasis.from_hamiltonian(hamiltonian, V=float(tag), cutoff=cutoff)
        _check_system(arrays, _system_record(basis), path)
        up = _lowdin(arrays[f"{tag}/coefficients_up"])
        down = _lowdin(arrays[f"{tag}/coefficients_down"])
        if (len(up), len(down)) != (hamiltonian.n_up, hamiltonian.n_down):
            raise ValueError(f"{path} holds (n_up, n_down) = ({len(up)}, {len(down)}) at V = {tag} meV; the "
                             f"Hamiltonian has ({hamiltonian.n_up}, {hamiltonian.n_down})")
        parts = determinant_energy(basis, up, down)
        stored = float(arrays[f"{tag}/energy_meV"])
        if abs(parts["energy_meV"] - stored) > tol_meV:
            raise ValueError(f"{path}: the determinant at V = {tag} meV has energy {parts['energy_meV']:.6f} meV, "
                             f"the file says {stored:.6f} meV (tolerance {tol_meV} meV)")
        states[float(tag)] = HartreeFockResult(
            energy_meV=parts["energy_meV"], kinetic_meV=parts["kinetic_meV"], moire_meV=parts["moire_meV"],
            hartree_meV=parts["hartree_meV"], exchange_meV=parts["exchange_meV"],
            madelung_meV=parts["madelung_meV"], gap_meV=float(arrays[f"{tag}/gap_meV"]),
            eigenvalues_up=arrays[f"{tag}/eigenvalues_up"], eigenvalues_down=arrays[f"{tag}/eigenvalues_down"],
            coefficients_up=up, coefficients_down=down, converged=bool(arrays[f"{tag}/converged"]),
            start=str(arrays[f"{tag}/start"]), n_iterations=int(arrays[f"{tag}/n_iterations"]), history=(),
            basis=basis,
        )
    return states
