"""Plane-wave bands of the moiré continuum model and the exact non-interacting many-electron reference.

Single-particle Hamiltonian (DESIGN.md section 1), user units (meV, nm, degrees, m_e)::

    h = -hbar^2 nabla^2 / (2 m*) + Delta(r),   Delta(r) = -2 V sum_{j=1..3} cos(g_j . r + phi)

Since ``cos(x) = (e^{ix} + e^{-ix}) / 2``, the Fourier components of ``Delta`` are ``-V e^{+i phi}`` at
``+g_j`` and ``-V e^{-i phi}`` at ``-g_j``. The ``g_j`` of :func:`~qernel.hamiltonian.moire_potential.
moire_g_vectors` are reciprocal-lattice vectors of ``triangular_lattice(a_M)``:
``g_1 = b_1``, ``g_2 = b_2``, ``g_3 = -b_1 - b_2`` (checked when the basis is built). In the plane-wave
basis ``|k + G>`` (``G`` in the moiré reciprocal lattice, ``|G| <= cutoff |g_1|``)::

    <k+G| h |k+G'> = hbar^2 |k+G|^2 / (2 m*) delta_{GG'} + Delta_{G-G'}

The same ``G`` set is used for every ``k`` (it is C6- and inversion-symmetric, so the symmetry
degeneracies of the exact spectrum survive the truncation); ``k`` is folded into the first
Brillouin zone before diagonalising, which changes no energy and keeps the basis centered.

Everything here is NumPy (reference calculations), except :class:`BlochOrbitals` and
:func:`slater_log_amplitude`, which are ``jax.numpy`` so that the non-interacting Slater
determinant can be used as a wavefunction (jit, vmap, grad; float32 or float64).

Units at the boundary: :func:`moire_bands` and :func:`moire_bloch_states` take ``k`` in nm^-1 and
return meV; :func:`noninteracting_ground_state` takes a supercell in internal units (lengths in
``a_M``, :mod:`qernel.units`) and returns meV, with orbitals in internal units.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ..units import HBAR2_OVER_2ME_MEV_NM2, moire_energy_unit_meV
from ..geometry.lattice import Supercell, triangular_lattice
from .moire_potential import moire_g_vectors

__all__ = [
    "BlochOrbitals",
    "BlochStates",
    "NonInteractingGroundState",
    "default_cutoff",
    "high_symmetry_points",
    "moire_bands",
    "moire_bloch_states",
    "moire_hamiltonian_matrix",
    "noninteracting_ground_state",
    "reciprocal_basis",
    "slater_log_amplitude",
]


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------
def _check_finite(value, name: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def _check_positive(value, name: str) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _check_model(V, phi, m_star, a_M) -> tuple[float, float, float, float]:
    return (
        _check_finite(V, "V (meV)"),
        _check_finite(phi, "phi (degrees)"),
        _check_positive(m_star, "m_star (units of m_e)"),
        _check_positive(a_M, "a_M (nm)"),
    )


def _check_kpoints(k) -> np.ndarray:
    k = np.asarray(k, dtype=float)
    if k.ndim != 2 or k.shape[-1] != 2 or k.shape[0] < 1:
        raise ValueError(f"k must have shape (K, 2) with K >= 1 (Cartesian wavevectors in nm^-1), got {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError("k must be finite")
    return k


def _check_n_bands(n_bands, n_basis: int | None = None) -> int:
    if int(n_bands) != n_bands or n_bands < 1:
        raise ValueError(f"n_bands must be an integer >= 1, got {n_bands}")
    if n_basis is not None and n_bands > n_basis:
        raise ValueError(f"n_bands must be <= the number of plane waves ({n_basis}), got {n_bands}; raise cutoff")
    return int(n_bands)


# ------------------------------------------------------------------------------------------------
# plane-wave basis and Hamiltonian
# ------------------------------------------------------------------------------------------------
def _g_length(a_M: float) -> float:
    """``|g_j| = 4 pi / (sqrt(3) a_M)``."""
    return 4.0 * math.pi / (math.sqrt(3.0) * a_M)


def default_cutoff(n_bands: int, *, V: float, m_star: float, a_M: float) -> float:
    """Plane-wave cutoff (``|G|_max`` in units of ``|g_1|``) used when none is given.

    Two scales, in units of ``|g|``: the ``n_bands``-th free band sits at ``|k+G| ~ sqrt(n_bands / 3.6)``
    (3.6 reciprocal points per unit disc area), and a deep potential squeezes the lowest orbitals
    into Gaussians whose Fourier width grows like ``(V / E_g)^(1/4)`` (harmonic expansion of
    ``Delta`` at its minimum, ``E_g = hbar^2 |g|^2 / (2 m*)``). Because ``Delta`` has only
    first-shell harmonics the coefficients decay faster than exponentially beyond these scales.
    The constants were fitted to converged runs: the default cutoff converges the lowest 8 bands
    at Gamma, K, M to < 1e-9 meV for m* = 0.35, a_M = 8.031 nm and V from 0 to 200 meV
    (tests/test_bands.py checks < 1e-6 meV at the WSe2/WS2 parameters).
    """
    n_bands = _check_n_bands(n_bands)
    m_star, a_M = _check_positive(m_star, "m_star (units of m_e)"), _check_positive(a_M, "a_M (nm)")
    e_g = HBAR2_OVER_2ME_MEV_NM2 / m_star * _g_length(a_M) ** 2
    depth = (abs(float(V)) / e_g) ** 0.25
    return float(max(3.0, 2.0 + 6.0 * depth + math.sqrt(n_bands / 3.6)))


def _reciprocal_integers(a_M: float, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer coordinates ``m`` (G = m @ B) and vectors G with ``|G| <= cutoff |g|``, sorted by length."""
    B = triangular_lattice(a_M).reciprocal_vectors
    n_max = int(math.ceil(cutoff * 1.2)) + 1  # |m1 b1 + m2 b2| >= (sqrt(3)/2) max|m_i| |b|
    ms = np.arange(-n_max, n_max + 1)
    m = np.stack(np.meshgrid(ms, ms, indexing="ij"), -1).reshape(-1, 2)
    G = m @ B
    length = np.linalg.norm(G, axis=-1)
    keep = length <= cutoff * _g_length(a_M) * (1 + 1e-12)
    order = np.lexsort((m[keep][:, 1], m[keep][:, 0], np.round(length[keep] / _g_length(a_M), 9)))
    return m[keep][order], G[keep][order]


def reciprocal_basis(a_M: float, cutoff: float) -> np.ndarray:
    """Moiré reciprocal-lattice vectors ``G`` with ``|G| <= cutoff * |g_1|``, shape (n_G, 2), nm^-1.

    Sorted by length, ``G = 0`` first. ``a_M`` in nm, ``cutoff`` dimensionless (> 0).
    """
    a_M = _check_positive(a_M, "a_M (nm)")
    cutoff = _check_positive(cutoff, "cutoff (|G|_max in units of |g_1|)")
    return _reciprocal_integers(a_M, cutoff)[1]


def _g_integer_coordinates(a_M: float) -> np.ndarray:
    """Integer coordinates of g_1, g_2, g_3 in the reciprocal basis; asserts they are lattice vectors."""
    B = triangular_lattice(a_M).reciprocal_vectors
    coords = moire_g_vectors(a_M) @ np.linalg.inv(B)
    rounded = np.rint(coords)
    if not np.allclose(coords, rounded, atol=1e-9):
        raise RuntimeError(f"moire g vectors are not reciprocal lattice vectors: coordinates {coords.tolist()}")
    return rounded.astype(int)


def _potential_matrix(m: np.ndarray, V: float, phi_deg: float, a_M: float) -> np.ndarray:
    """``Delta_{G_i - G_j}`` for the basis with integer coordinates ``m`` (n_G, 2); (n_G, n_G) complex."""
    dm = m[:, None, :] - m[None, :, :]
    phase = np.exp(1j * math.radians(phi_deg))
    P = np.zeros(dm.shape[:2], dtype=complex)
    for g in _g_integer_coordinates(a_M):
        P[np.all(dm == g, axis=-1)] = -V * phase
        P[np.all(dm == -g, axis=-1)] = -V * np.conj(phase)
    return P


def _fold(k: np.ndarray, a_M: float) -> np.ndarray:
    """Shortest image of each k (K, 2) modulo the reciprocal lattice; keeps k itself on BZ-boundary ties."""
    B = triangular_lattice(a_M).reciprocal_vectors
    k0 = k - np.rint(k @ np.linalg.inv(B)) @ B
    shifts = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=float) @ B
    candidates = k0[:, None, :] + shifts[None]
    best = candidates[np.arange(len(k)), np.argmin(np.linalg.norm(candidates, axis=-1), axis=-1)]
    keep = np.linalg.norm(k, axis=-1) <= np.linalg.norm(best, axis=-1) + 1e-10 * _g_length(a_M)
    return np.where(keep[:, None], k, best)


def moire_hamiltonian_matrix(
    k, *, V: float, phi: float, m_star: float, a_M: float, cutoff: float = 4.0
) -> tuple[np.ndarray, np.ndarray]:
    """The plane-wave matrix ``<k+G|h|k+G'>`` (meV) at the given k (no folding).

    Args:
        k: (K, 2) wavevectors in nm^-1.
        V: moiré depth (meV); phi: phase (degrees); m_star: effective mass (m_e); a_M: moiré
            lattice constant (nm); cutoff: ``|G|_max / |g_1|``.

    Returns:
        ``(H, G)``: H of shape (K, n_G, n_G) complex Hermitian, G of shape (n_G, 2) in nm^-1.
    """
    V, phi, m_star, a_M = _check_model(V, phi, m_star, a_M)
    k = _check_kpoints(k)
    cutoff = _check_positive(cutoff, "cutoff (|G|_max in units of |g_1|)")
    m, G = _reciprocal_integers(a_M, cutoff)
    kinetic = (HBAR2_OVER_2ME_MEV_NM2 / m_star) * np.sum((k[:, None, :] + G[None]) ** 2, axis=-1)
    H = np.broadcast_to(_potential_matrix(m, V, phi, a_M), (len(k),) + (len(G),) * 2).copy()
    H[:, np.arange(len(G)), np.arange(len(G))] += kinetic
    return H, G


# ------------------------------------------------------------------------------------------------
# bands and Bloch states
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BlochStates:
    """Bloch eigenstates ``phi_{k,n}(r) = sum_G c[k, n, G] exp(i (k + G) . r)`` (user units).

    Attributes:
        energies: (K, n_bands) band energies in meV, ascending per k.
        coefficients: (K, n_bands, n_G) complex plane-wave coefficients, ``sum_G |c|^2 = 1``.
        k: (K, 2) wavevectors in nm^-1 actually used: the requested k folded into the first
            Brillouin zone (they differ by reciprocal-lattice vectors and label the same states).
        G: (n_G, 2) reciprocal-lattice vectors of the basis in nm^-1 (shared by all k).
    """

    energies: np.ndarray
    coefficients: np.ndarray
    k: np.ndarray
    G: np.ndarray


def moire_bloch_states(
    k, n_bands: int, *, V: float, phi: float, m_star: float, a_M: float, cutoff: float | None = None
) -> BlochStates:
    """Lowest ``n_bands`` Bloch states of the moiré continuum model at each k.

    Args:
        k: (K, 2) wavevectors in nm^-1 (any; folded into the first Brillouin zone).
        n_bands: number of bands (>= 1).
        V: moiré depth in meV. phi: phase in degrees. m_star: effective mass in m_e (> 0).
        a_M: moiré lattice constant in nm (> 0).
        cutoff: plane waves with ``|G| <= cutoff * |g_1|``; default :func:`default_cutoff`.

    Returns:
        :class:`BlochStates` (energies in meV, coefficients, folded k, basis G).
    """
    V, phi, m_star, a_M = _check_model(V, phi, m_star, a_M)
    k = _check_kpoints(k)
    n_bands = _check_n_bands(n_bands)
    if cutoff is None:
        cutoff = default_cutoff(n_bands, V=V, m_star=m_star, a_M=a_M)
    cutoff = _check_positive(cutoff, "cutoff (|G|_max in units of |g_1|)")
    m, G = _reciprocal_integers(a_M, cutoff)
    n_bands = _check_n_bands(n_bands, len(G))
    k = _fold(k, a_M)
    potential = _potential_matrix(m, V, phi, a_M)
    diag = np.arange(len(G))
    energies = np.empty((len(k), n_bands))
    coefficients = np.empty((len(k), n_bands, len(G)), dtype=complex)
    for i, kk in enumerate(k):  # one k at a time bounds memory at n_G^2
        H = potential.copy()
        H[diag, diag] += (HBAR2_OVER_2ME_MEV_NM2 / m_star) * np.sum((kk + G) ** 2, axis=-1)
        w, v = scipy.linalg.eigh(H, subset_by_index=[0, n_bands - 1])
        energies[i], coefficients[i] = w, v.T
    return BlochStates(energies=energies, coefficients=coefficients, k=k, G=G)


def moire_bands(
    k, n_bands: int, *, V: float, phi: float, m_star: float, a_M: float, cutoff: float | None = None
) -> np.ndarray:
    """Lowest ``n_bands`` band energies (meV), shape (K, n_bands), at wavevectors k (K, 2) in nm^-1.

    Same arguments as :func:`moire_bloch_states`.
    """
    return moire_bloch_states(k, n_bands, V=V, phi=phi, m_star=m_star, a_M=a_M, cutoff=cutoff).energies


def high_symmetry_points(a_M: float) -> dict[str, np.ndarray]:
    """Gamma, K, K' and M of the moiré Brillouin zone, each shape (2,), in 1/(unit of a_M).

    With ``b_1, b_2`` the reciprocal vectors of ``triangular_lattice(a_M)``:
    ``K = (2 b_1 + b_2) / 3 = (4 pi / (3 a_M)) (1, 0)`` (a zone corner), ``K' = -K``,
    ``M = (b_1 + b_2) / 2 = (pi / a_M) (1, 1/sqrt(3))`` (the edge center adjacent to K).
    """
    a_M = _check_positive(a_M, "a_M")
    b1, b2 = triangular_lattice(a_M).reciprocal_vectors
    K = (2.0 * b1 + b2) / 3.0
    return {"Gamma": np.zeros(2), "K": K, "K'": -K, "M": (b1 + b2) / 2.0}


# ------------------------------------------------------------------------------------------------
# JAX orbitals and the Slater determinant
# ------------------------------------------------------------------------------------------------
@jax.tree_util.register_dataclass
@dataclass(frozen=True, eq=False)
class BlochOrbitals:
    """Bloch orbitals ``phi_n(r) = sum_G c[n, G] exp(i (k_n + G) . r)`` of one spin species.

    A JAX pytree whose leaves are the three arrays below (no static fields): pass it as an
    argument to jitted functions or close over it; it is not hashable (``eq=False``), so do not
    use it as a static argument. All quantities are in internal units (lengths in ``a_M``).

    Attributes:
        k: (n_orb, 2) crystal momenta in 1/a_M.
        G: (n_G, 2) reciprocal-lattice vectors in 1/a_M, shared by all orbitals.
        coefficients: (n_orb, n_G) complex plane-wave coefficients.
    """

    k: np.ndarray
    G: np.ndarray
    coefficients: np.ndarray

    @property
    def n_orbitals(self) -> int:
        """Number of orbitals (static)."""
        return int(np.shape(self.coefficients)[0])

    def __call__(self, positions):
        """Orbital matrix ``Phi[..., i, n] = phi_n(r_i)``.

        Args:
            positions: (..., N, 2) Cartesian positions in units of a_M (float32 or float64).

        Returns:
            (..., N, n_orb) complex (complex64 for float32 input, complex128 for float64).
        """
        real = jnp.result_type(positions, jnp.float32)
        positions = jnp.asarray(positions, real)
        k = jnp.asarray(self.k, real)
        G = jnp.asarray(self.G, real)
        c = jnp.asarray(self.coefficients, jnp.result_type(real, jnp.complex64))
        # factor e^{i k.r} out: the plane waves e^{i G.r} (N x n_G) are shared by all orbitals
        periodic = jnp.exp(1j * (positions @ G.T)) @ c.T
        return jnp.exp(1j * (positions @ k.T)) * periodic


def _log_det(matrix):
    sign, logabs = jnp.linalg.slogdet(matrix)
    return logabs + 1j * jnp.angle(sign)


def slater_log_amplitude(
    orbitals_up: BlochOrbitals, orbitals_down: BlochOrbitals | None = None
) -> Callable:
    """``log psi(r) = log det Phi_up + log det Phi_down`` for a spin-block Slater determinant.

    Args:
        orbitals_up: orbitals of the ``n_up`` spin-up electrons (which come first).
        orbitals_down: orbitals of the ``n_down`` spin-down electrons, or None / empty if none.

    Returns:
        ``f(positions)`` with positions (..., n_up + n_down, 2) in units of a_M, returning the
        complex ``log|psi| + i arg(psi)``, shape (...). jit-, vmap- and grad-compatible.
    """
    n_up = orbitals_up.n_orbitals
    n_down = 0 if orbitals_down is None else orbitals_down.n_orbitals

    def log_psi(positions):
        if positions.shape[-2:] != (n_up + n_down, 2):
            raise ValueError(f"positions must have shape (..., {n_up + n_down}, 2), got {positions.shape}")
        result = _log_det(orbitals_up(positions[..., :n_up, :]))
        if n_down:
            result = result + _log_det(orbitals_down(positions[..., n_up:, :]))
        return result

    return log_psi


# ------------------------------------------------------------------------------------------------
# exact non-interacting ground state in a supercell
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NonInteractingGroundState:
    """Filled lowest Bloch levels among a supercell's commensurate k-points, per spin.

    Attributes:
        energy_meV: total energy (meV); unique even when a shell is open.
        energy_up_meV, energy_down_meV: per-spin sums of occupied band energies (meV).
        energy_unit_meV: internal unit ``E0 = hbar^2 / (m* a_M^2)`` (meV).
        kpoints: (n_k, 2) commensurate k-points in 1/a_M (folded into the first Brillouin zone).
        band_energies_meV: (n_k, n_b) lowest bands at those k (meV).
        occupied_up, occupied_down: ((k index, band index), ...) in order of increasing energy.
        gap_up_meV, gap_down_meV: lowest unoccupied minus highest occupied level of that spin
            (``inf`` if no electrons of that spin). Zero (within tolerance) = open shell.
        closed_shell_up, closed_shell_down: whether the gap exceeds the degeneracy tolerance.
        orbitals_up, orbitals_down: occupied :class:`BlochOrbitals` (internal units), in the
            order of ``occupied_*``; empty (0 orbitals) for a spin with no electrons.
    """

    energy_meV: float
    energy_up_meV: float
    energy_down_meV: float
    energy_unit_meV: float
    kpoints: np.ndarray
    band_energies_meV: np.ndarray
    occupied_up: tuple[tuple[int, int], ...]
    occupied_down: tuple[tuple[int, int], ...]
    gap_up_meV: float
    gap_down_meV: float
    closed_shell_up: bool
    closed_shell_down: bool
    orbitals_up: BlochOrbitals
    orbitals_down: BlochOrbitals

    @property
    def closed_shell(self) -> bool:
        """True if both spin species fill a closed shell (unique Slater-determinant ground state)."""
        return self.closed_shell_up and self.closed_shell_down

    @property
    def energy_internal(self) -> float:
        """Total energy in internal units ``E0``."""
        return self.energy_meV / self.energy_unit_meV


def _check_unit_triangular(supercell) -> None:
    if not isinstance(supercell, Supercell):
        raise TypeError(f"supercell must be a qernel Supercell, got {type(supercell).__name__}")
    if not np.allclose(supercell.primitive.vectors, triangular_lattice(1.0).vectors, atol=1e-10):
        raise ValueError(
            "supercell must be built on the moiré lattice in internal units, "
            f"triangular_lattice(1.0) (lengths in a_M), got primitive vectors {supercell.primitive.vectors.tolist()}"
        )


def noninteracting_ground_state(
    supercell: Supercell,
    n_up: int,
    n_down: int,
    *,
    V: float,
    phi: float,
    m_star: float,
    a_M: float,
    cutoff: float | None = None,
    degeneracy_tol_meV: float = 1e-7,
) -> NonInteractingGroundState:
    """Exact ground state of the non-interacting moiré problem in a periodic supercell.

    Each spin species fills its lowest Bloch levels among the supercell's commensurate
    k-points (periodic boundary conditions). If the highest occupied level of a spin is
    degenerate (within ``degeneracy_tol_meV``) with its lowest unoccupied one the shell is open:
    the many-body ground state is then not unique (the energy is); a ``UserWarning`` is issued
    and ``closed_shell_*`` is False.

    Args:
        supercell: a Supercell of ``triangular_lattice(1.0)`` (internal units: lengths in a_M).
        n_up, n_down: electron numbers per spin (integers >= 0, at least one electron).
        V, phi, m_star, a_M: model parameters in meV, degrees, m_e, nm.
        cutoff: plane-wave cutoff (``|G|_max / |g_1|``); default :func:`default_cutoff`.
        degeneracy_tol_meV: levels closer than this count as degenerate.
    """
    _check_unit_triangular(supercell)
    for name, value in (("n_up", n_up), ("n_down", n_down)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value}")
    n_up, n_down = int(n_up), int(n_down)
    if n_up + n_down < 1:
        raise ValueError(f"need at least one electron, got n_up={n_up}, n_down={n_down}")
    V, phi, m_star, a_M = _check_model(V, phi, m_star, a_M)
    degeneracy_tol_meV = _check_positive(degeneracy_tol_meV, "degeneracy_tol_meV")

    # snap to exact supercell reciprocal-lattice points (commensurate_kpoints rounds its fractional
    # coordinates to 1e-10, which would shift energies by ~1e-8 meV)
    B_super = supercell.reciprocal_vectors
    k_internal = np.rint(supercell.commensurate_kpoints() @ np.linalg.inv(B_super)) @ B_super
    n_b = max(n_up, n_down) + 1  # enough bands per k to also see the lowest unoccupied level
    states = moire_bloch_states(k_internal / a_M, n_b, V=V, phi=phi, m_star=m_star, a_M=a_M, cutoff=cutoff)
    flat = states.energies.ravel()
    order = np.argsort(flat, kind="stable")
    pairs = [divmod(int(i), n_b) for i in order]
    G_internal = states.G * a_M
    k_used = states.k * a_M

    def fill(n: int, spin: str):
        occupied = tuple(pairs[:n])
        energy = float(flat[order[:n]].sum())
        gap = float(flat[order[n]] - flat[order[n - 1]]) if n else math.inf
        closed = gap > degeneracy_tol_meV
        if not closed:
            warnings.warn(
                f"open shell for spin {spin} ({n} electrons, {supercell.n_cells} k-points): the highest occupied "
                f"level {flat[order[n - 1]]:.9g} meV is degenerate with the lowest unoccupied one; the ground "
                "state is not unique (its energy is)",
                stacklevel=3,
            )
        idx = np.array(occupied, dtype=int).reshape(-1, 2)
        orbitals = BlochOrbitals(
            k=k_used[idx[:, 0]], G=G_internal, coefficients=states.coefficients[idx[:, 0], idx[:, 1]]
        )
        return occupied, energy, gap, closed, orbitals

    occ_up, e_up, gap_up, closed_up, orb_up = fill(n_up, "up")
    occ_dn, e_dn, gap_dn, closed_dn, orb_dn = fill(n_down, "down")
    return NonInteractingGroundState(
        energy_meV=e_up + e_dn,
        energy_up_meV=e_up,
        energy_down_meV=e_dn,
        energy_unit_meV=moire_energy_unit_meV(m_star, a_M),
        kpoints=k_used,
        band_energies_meV=states.energies,
        occupied_up=occ_up,
        occupied_down=occ_dn,
        gap_up_meV=gap_up,
        gap_down_meV=gap_dn,
        closed_shell_up=closed_up,
        closed_shell_down=closed_dn,
        orbitals_up=orb_up,
        orbitals_down=orb_dn,
    )
