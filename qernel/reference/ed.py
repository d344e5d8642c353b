"""Band-projected exact diagonalisation of electrons in a moiré supercell (issue 13, item 3).

The many-body Hamiltonian of :mod:`qernel.reference.planewave` (one convention for Hartree-Fock and ED: plane-wave
Coulomb ``v(p) / A`` with ``p = 0`` dropped, plus ``N xi / 2``) is projected onto the lowest ``n_b`` non-interacting
bands at the supercell's commensurate k-points::

    H_P = sum_{ac} h_ac c+_a c_c + 1/2 sum_{abcd} V_abcd c+_a c+_b c_d c_c + N xi / 2,
    V_abcd = sum_{p != 0} (v(p) / A) <a| e^{+i p.r} |c> <b| e^{-i p.r} |d>,

with ``h`` the exact one-body matrix (kinetic + moiré) in the band orbitals and every momentum transfer ``p`` of the
plane-wave basis (umklapp included). ``H_P`` conserves total crystal momentum; each sector is diagonalised with
sparse Lanczos (:func:`scipy.sparse.linalg.eigsh`) on the bit-string Fock basis of :mod:`._ed_fock`.

Because ``H_P`` is ``H`` restricted to the subspace spanned by Slater determinants of the kept bands, its ground
energy is a variational upper bound that falls monotonically with ``n_b`` (Rayleigh-Ritz), and an eigenvector
written as a multi-determinant wavefunction (:func:`ed_log_amplitude`) has ``<H> =`` its eigenvalue under the full
continuum Hamiltonian (tests/test_ed.py checks this with qernel's Monte Carlo and real-space Ewald sum).

Degenerate multiplets. Keeping one member of a degenerate set of band levels at some k (e.g. the C3 doublet formed
by bands 3 and 4 at Gamma) breaks the symmetry and makes the energy depend on an arbitrary basis choice. Such cuts
are detected; ``multiplets="extend"`` (default) keeps the whole multiplet at that k, ``"refuse"`` raises.
:func:`symmetric_band_counts` lists the ``n_b`` that split nothing (at V = 15 meV on the 2x2 and 3x3 supercells:
1, 2, 4, 6; so ``n_bands=3`` keeps 4 bands at Gamma, 28 orbitals on 3x3 instead of 27).

Cost (N = 6 on 3x3, V = 15 meV, eps = 5, one core): n_b = 1, 2, 3 (28 orbitals, dimension 376,740 in 9 sectors of
~42,000) take 0.1 s, 1 s and 88 s of CPU time, peak resident memory 0.44, 0.47 and 1.8 GB. Larger problems are
refused before any Fock-space work with the dimension and the estimated memory in the message.

Any spin sector: spin-polarised (``n_down = 0``) or ``S_z = (n_up - n_down) / 2``, where the spin-orbitals are the
band orbitals times up/down and ``n_up`` is conserved alongside the crystal momentum (the Coulomb interaction is
spin independent).
"""

from __future__ import annotations

import math
import resource
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse.linalg

from . import _ed_fock as fock
from .planewave import PlaneWaveBasis

__all__ = ["EDResult", "band_projected_ed", "ed_log_amplitude", "symmetric_band_counts"]

#: Levels closer than this (meV) at one k count as one degenerate multiplet.
DEGENERACY_TOL_MEV: float = 1e-6
#: Bytes per stored candidate matrix element during assembly (COO int32 row + col + complex128, then CSR).
_BYTES_PER_ELEMENT = 64
#: Sectors up to this dimension are diagonalised densely (faster and exact for tiny problems).
_DENSE_MAX = 400


@dataclass(frozen=True, eq=False)
class EDResult:
    """Result of :func:`band_projected_ed`. Energies in meV, times in seconds, memory in GB.

    Attributes:
        energy_meV: ground-state energy (lowest level over all momentum sectors).
        n_electrons, n_bands: electrons and requested bands per k.
        n_up, n_down: electrons per spin (``n_down = 0``: spin polarised).
        bands_per_k: (n_k,) bands actually kept at each k (> n_bands where a multiplet was extended).
        keeps_multiplets: whether the requested ``n_bands`` cuts no degenerate multiplet at any k.
        symmetric_n_bands: band counts up to ``n_bands + 4`` that cut no multiplet.
        dimension: total Fock-space dimension ``C(n_orbitals, N)``.
        sectors: one dict per momentum sector: ``momentum_fractional`` (k in units of the moiré reciprocal
            vectors b_1, b_2), ``dimension``, ``levels_meV`` (lowest ``n_levels``, ascending).
        ground_momentum_fractional: momentum of the ground state.
        bloch_determinant_energy_meV: ``<H>`` of the best Slater determinant of the lowest single-particle levels
            (exact, no Monte Carlo; minimum over degenerate open-shell choices).
        parameters: V_meV, phi_deg, m_star, a_M_nm, eps, interaction, cutoff, n_plane_waves.
        timings_s: wall-clock matrix_elements, basis, assembly, diagonalisation, total; total_cpu (process CPU time).
        peak_memory_GB: peak resident memory of the process (ru_maxrss) after the run.
        ground_state: (D,) complex ground-state vector in the Fock basis ``ground_basis`` (uint64 bit strings).
        orbital_coefficients: (n_orb, n_pw) band orbitals in the plane-wave basis; ``basis``: that basis.
    """

    energy_meV: float
    n_electrons: int
    n_up: int
    n_down: int
    n_bands: int
    bands_per_k: tuple[int, ...]
    keeps_multiplets: bool
    symmetric_n_bands: tuple[int, ...]
    dimension: int
    sectors: tuple[dict, ...]
    ground_momentum_fractional: tuple[float, float]
    bloch_determinant_energy_meV: float
    parameters: dict
    timings_s: dict
    peak_memory_GB: float
    ground_state: np.ndarray = field(repr=False)
    ground_basis: np.ndarray = field(repr=False)
    orbital_coefficients: np.ndarray = field(repr=False)
    basis: PlaneWaveBasis = field(repr=False)

    @property
    def energy_per_electron_meV(self) -> float:
        """Ground-state energy per electron (meV)."""
        return self.energy_meV / self.n_electrons

    @property
    def n_orbitals(self) -> int:
        """Number of (spatial) band orbitals kept (sum of ``bands_per_k``)."""
        return int(sum(self.bands_per_k))

    @property
    def spinful(self) -> bool:
        """Whether both spin species are present (Fock states then run over spin-orbitals, up first)."""
        return self.n_up > 0 and self.n_down > 0

    def as_dict(self) -> dict:
        """JSON-ready summary (keys name their units; no arrays)."""
        return {
            "method": "ed",
            "V_meV": self.parameters["V_meV"],
            "energy_meV": self.energy_meV,
            "energy_per_electron_meV": self.energy_per_electron_meV,
            "bloch_determinant_energy_meV": self.bloch_determinant_energy_meV,
            "bloch_determinant_energy_per_electron_meV": self.bloch_determinant_energy_meV / self.n_electrons,
            "n_electrons": self.n_electrons,
            "n_up": self.n_up,
            "n_down": self.n_down,
            "n_bands": self.n_bands,
            "n_orbitals": self.n_orbitals,
            "bands_per_k": list(self.bands_per_k),
            "keeps_multiplets": self.keeps_multiplets,
            "symmetric_n_bands": list(self.symmetric_n_bands),
            "dimension": self.dimension,
            "ground_momentum_fractional": list(self.ground_momentum_fractional),
            "sectors": [dict(s) for s in self.sectors],
            "parameters": dict(self.parameters),
            "timings_s": dict(self.timings_s),
            "peak_memory_GB": self.peak_memory_GB,
        }


# ------------------------------------------------------------------------------------------------
# validation and band selection
# ------------------------------------------------------------------------------------------------
def _check_int(value, name: str, low: int, high: int | None = None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)


def _cuts(energies: np.ndarray, n_bands: int, tol: float) -> np.ndarray:
    """(n_k,) bool: the cut after ``n_bands`` bands splits a degenerate multiplet at that k."""
    return energies[:, n_bands] - energies[:, n_bands - 1] < tol


def symmetric_band_counts(energies_meV: np.ndarray, tol: float = DEGENERACY_TOL_MEV) -> tuple[int, ...]:
    """Band counts ``n_b`` (1 .. n_available - 1) whose cut splits no degenerate multiplet at any k.

    Args:
        energies_meV: (n_k, n_available) band energies ascending per k.
        tol: degeneracy tolerance (meV).
    """
    energies_meV = np.asarray(energies_meV)
    return tuple(n for n in range(1, energies_meV.shape[1]) if not np.any(_cuts(energies_meV, n, tol)))


def _bands_per_k(energies: np.ndarray, n_bands: int, multiplets: str, tol: float) -> tuple[np.ndarray, bool]:
    split = _cuts(energies, n_bands, tol)
    if not split.any():
        return np.full(len(energies), n_bands), True
    symmetric = [n for n in symmetric_band_counts(energies, tol)]
    if multiplets == "refuse":
        raise ValueError(
            f"n_bands={n_bands} splits a degenerate multiplet at k-point(s) {np.flatnonzero(split).tolist()} "
            f"(energies {energies[split, n_bands - 1].round(6).tolist()} meV); band counts that split none: "
            f"{symmetric}; or pass multiplets='extend'"
        )
    keep = np.full(len(energies), n_bands)
    for ik in np.flatnonzero(split):
        while keep[ik] < energies.shape[1] and energies[ik, keep[ik]] - energies[ik, keep[ik] - 1] < tol:
            keep[ik] += 1
    return keep, False


def _momentum_group(basis: PlaneWaveBasis) -> tuple[np.ndarray, np.ndarray]:
    """Labels (n_k, 2) ints mod n_cells (k in units of b_1/n_cells, b_2/n_cells) and the addition table."""
    n_cells = basis.supercell.n_cells
    fractional = basis.kpoints_int @ np.linalg.inv(basis.supercell.matrix.T)  # k = f @ B_moire
    labels = np.mod(np.rint(fractional * n_cells).astype(int), n_cells)
    lookup = {tuple(label): i for i, label in enumerate(labels)}
    if len(lookup) != len(labels):
        raise RuntimeError("commensurate k-points are not distinct modulo the moiré reciprocal lattice")
    add = np.array([[lookup[tuple(np.mod(li + lj, n_cells))] for lj in labels] for li in labels])
    return labels, add


# ------------------------------------------------------------------------------------------------
# matrix elements
# ------------------------------------------------------------------------------------------------
def _momentum_transfers(basis: PlaneWaveBasis) -> np.ndarray:
    """All nonzero integer momenta ``p = q' - q`` between plane waves of the basis, (n_p, 2)."""
    q = basis.q_int - basis.q_int.min(axis=0)
    width = int(q.max()) + 1
    code = q[:, 0] * (2 * width) + q[:, 1]  # p = q' - q has components in (-width, width)
    diff = np.unique(code[None, :] - code[:, None])
    p = np.stack([np.floor_divide(diff + width, 2 * width), np.mod(diff + width, 2 * width) - width], -1)
    return p[np.any(p != 0, axis=1)]


def _two_body(basis: PlaneWaveBasis, C: np.ndarray) -> np.ndarray:
    """``V[a, b, c, d] = sum_{p != 0} coulomb_meV(p) <a|e^{ip.r}|c> <b|e^{-ip.r}|d>`` (meV), (n,)*4 complex.

    With ``F_p = basis.form_factor(C, C, p) = <.|e^{-ip.r}|.>``: ``<a|e^{ip.r}|c> = conj(F_p[c, a])``.
    """
    n = len(C)
    p = _momentum_transfers(basis)
    v = basis.coulomb_meV(p)
    F = np.stack([basis.form_factor(C, C, pp) for pp in p])  # (n_p, n, n)
    left = (np.conj(F).transpose(0, 2, 1) * v[:, None, None]).reshape(len(p), n * n)  # [p, (a, c)]
    right = F.reshape(len(p), n * n)  # [p, (b, d)]
    V = (left.T @ right).reshape(n, n, n, n)  # [a, c, b, d]
    return V.transpose(0, 2, 1, 3)


# ------------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------------
def _estimate_memory_GB(max_sector: int, n_particles: int, momenta: np.ndarray, add: np.ndarray) -> float:
    """Upper bound of the assembly memory: occupied pairs x largest same-momentum pair set per state."""
    first, second = np.triu_indices(len(momenta), k=1)
    pairs_per_momentum = np.bincount(add[momenta[first], momenta[second]], minlength=add.shape[0])
    candidates_per_state = math.comb(n_particles, 2) * int(pairs_per_momentum.max())
    return max_sector * candidates_per_state * _BYTES_PER_ELEMENT / 1e9


def _peak_memory_GB() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e9 if sys.platform == "darwin" else rss * 1024 / 1e9


def _lowest(H, n_levels: int, want_vector: bool):
    D = H.shape[0]
    if D <= _DENSE_MAX:
        w, v = np.linalg.eigh(H.toarray())
        return w[:n_levels], v[:, 0]
    k = min(n_levels, D - 1)
    # a Krylov space of 32 (ARPACK's default is 20) saves ~15% of the matrix-vector products at N = 6, 28 orbitals
    w, v = scipy.sparse.linalg.eigsh(H, k=k, which="SA", tol=1e-10, ncv=min(D, max(2 * k + 1, 32)))
    order = np.argsort(w)
    return w[order], v[:, order[0]]


def band_projected_ed(
    hamiltonian,
    *,
    n_bands: int,
    V: float | None = None,
    n_levels: int = 4,
    bands: str = "noninteracting",
    multiplets: str = "extend",
    cutoff: float | None = None,
    max_memory_GB: float = 4.0,
    degeneracy_tol_meV: float = DEGENERACY_TOL_MEV,
) -> EDResult:
    """Exact diagonalisation of the moiré Hamiltonian projected onto the lowest ``n_bands`` bands.

    Args:
        hamiltonian: a :class:`~qernel.hamiltonian.moire.MoireHamiltonian` (supercell, N, spin sector ``n_up`` /
            ``n_down``, parameters, ``interaction``).
        n_bands: bands kept per k-point (>= 1).
        V: moiré depth in meV (default: the Hamiltonian's).
        n_levels: lowest levels reported per momentum sector (>= 1).
        bands: ``"noninteracting"`` (the only projection implemented so far).
        multiplets: ``"extend"`` keeps whole degenerate multiplets where ``n_bands`` would cut one, ``"refuse"``
            raises instead.
        cutoff: plane-wave cutoff ``|G|_max / |g_1|`` (default that of :mod:`qernel.reference.planewave`).
        max_memory_GB: refuse (before any Fock-space work) when the estimated assembly memory exceeds this.
        degeneracy_tol_meV: band levels closer than this at one k form a multiplet.

    Returns:
        :class:`EDResult` (meV).
    """
    from ..hamiltonian.moire import MoireHamiltonian

    t0, cpu0 = time.perf_counter(), time.process_time()
    if not isinstance(hamiltonian, MoireHamiltonian):
        raise TypeError(
            f"hamiltonian must be a MoireHamiltonian (ED is for moiré supercells), got {type(hamiltonian).__name__}"
        )
    n_bands = _check_int(n_bands, "n_bands", 1, 40)
    n_levels = _check_int(n_levels, "n_levels", 1)
    if bands != "noninteracting":
        raise ValueError(f"bands must be 'noninteracting' (Hartree-Fock bands are not implemented), got {bands!r}")
    if multiplets not in ("extend", "refuse"):
        raise ValueError(f"multiplets must be 'extend' or 'refuse', got {multiplets!r}")
    if V is not None and (isinstance(V, bool) or not isinstance(V, (int, float, np.floating, np.integer))
                          or not math.isfinite(V)):
        raise ValueError(f"V (meV) must be a finite number, got {V!r}")
    if isinstance(max_memory_GB, bool) or not isinstance(max_memory_GB, (int, float, np.floating, np.integer)) \
            or not (math.isfinite(max_memory_GB) and max_memory_GB > 0):
        raise ValueError(f"max_memory_GB must be a finite number > 0, got {max_memory_GB!r}")
    N = hamiltonian.n_electrons
    if N < 2:
        raise ValueError(f"n_electrons must be >= 2 for ED (one electron: the band energies are exact), got {N}")

    basis = PlaneWaveBasis.from_hamiltonian(hamiltonian, V=V, cutoff=cutoff)
    if n_bands + 1 > basis.n_G:
        raise ValueError(f"n_bands must be < the number of G vectors per k ({basis.n_G}), got {n_bands}; raise cutoff")
    n_avail = min(basis.n_G, n_bands + 5)
    while True:  # enough bands to see the whole multiplet at every cut (free electrons: 6-fold shells and more)
        pw_bands = basis.band_states(n_avail)
        keep, symmetric = _bands_per_k(pw_bands.energies_meV, n_bands, multiplets, degeneracy_tol_meV)
        if keep.max() < n_avail or n_avail == basis.n_G:
            break
        n_avail = min(basis.n_G, 2 * n_avail)
    k_of = np.concatenate([np.full(n, ik) for ik, n in enumerate(keep)])
    band_of = np.concatenate([np.arange(n) for n in keep])
    n_sp = len(k_of)
    n_up, n_down = hamiltonian.n_up, hamiltonian.n_down
    if max(n_up, n_down) > n_sp:
        raise ValueError(f"n_up={n_up}, n_down={n_down} electrons do not fit in {n_sp} band orbitals; raise n_bands")
    spinful = n_up > 0 and n_down > 0
    labels, add_k = _momentum_group(basis)
    # conserved labels: crystal momentum, and for both spins also n_up (group Z_k x Z_{N+1}; an up orbital adds 1)
    m = N + 1 if spinful else 1
    e = np.arange(add_k.shape[0] * m)
    add = add_k[e[:, None] // m, e[None, :] // m] * m + (e[:, None] % m + e[None, :] % m) % m
    momenta = np.concatenate([k_of * m + 1, k_of * m]) if spinful else k_of
    n_orb = len(momenta)  # spin-orbitals: up block first
    if n_orb > fock._MAX_ORBITALS:
        raise ValueError(f"{n_orb} spin-orbitals exceed the {fock._MAX_ORBITALS} a 64-bit Fock state can hold")
    dims = fock.count_sector_dimensions(momenta, add, N)
    wanted = [int(K) for K in range(len(dims)) if K % m == n_up % m]
    largest = int(max(dims[K] for K in wanted))
    dimension = math.comb(n_sp, n_up) * math.comb(n_sp, n_down)
    C = pw_bands.coefficients[k_of, band_of]  # (n_sp, n_pw)
    energies = pw_bands.energies_meV[k_of, band_of]

    enumeration = math.comb(n_orb, N) * (8 * N + 24) / 1e9  # all N-particle bit strings are enumerated once
    memory = max(_estimate_memory_GB(largest, N, momenta, add), enumeration)
    if memory > max_memory_GB:
        raise ValueError(
            f"ED too large: N={N} electrons (n_up={n_up}, n_down={n_down}) in {n_sp} band orbitals "
            f"(n_bands={n_bands}, {basis.n_k} k-points) is a Hilbert space of dimension {dimension:,} (largest "
            f"momentum sector {largest:,}); it would need ~{memory:.1f} GB > max_memory_GB={max_memory_GB}; "
            "reduce n_bands or the supercell"
        )

    t1 = time.perf_counter()
    h1 = np.conj(C) @ basis.one_body_matrix() @ C.T  # exact one-body part in the band orbitals (meV)
    V2 = _two_body(basis, C)
    if spinful:  # spin independent: <a s, b s'| v |c s'', d s'''> = V_abcd delta_{s s''} delta_{s' s'''}
        spin = np.repeat([0, 1], n_sp)
        same = spin[:, None] == spin[None, :]
        V2 = np.where(same[:, None, :, None] & same[None, :, None, :], np.tile(V2, (2, 2, 2, 2)), 0.0)
        h1 = np.kron(np.eye(2), h1)
    table = fock.pair_table(fock.pair_matrix(V2, h1, N), momenta, add, tol=1e-12)
    constant = N * basis.madelung_meV / 2.0
    t2 = time.perf_counter()
    sectors_states = {K: v for K, v in fock.sector_basis(momenta, add, N).items() if K % m == n_up % m}
    t3 = time.perf_counter()

    assembly = diagonalisation = 0.0
    sectors, best = [], None
    lowest_one_body = np.sort(energies)[:n_up].sum() + np.sort(energies)[:n_down].sum()
    energies_so = np.tile(energies, n_orb // n_sp)
    bloch = math.inf
    for K in sorted(sectors_states):
        states = sectors_states[K]
        ta = time.perf_counter()
        H = fock.sector_hamiltonian(states, table, n_orb, N, constant=constant)
        tb = time.perf_counter()
        levels, vector = _lowest(H, n_levels, True)
        tc = time.perf_counter()
        assembly, diagonalisation = assembly + tb - ta, diagonalisation + tc - tb
        one_body = fock.occupied_orbitals(states, n_orb, N)
        filled = np.abs(energies_so[one_body].sum(axis=1) - lowest_one_body) < degeneracy_tol_meV * N
        if filled.any():
            bloch = min(bloch, float(np.real(H.diagonal()[filled]).min()))
        momentum = tuple(float(x) for x in np.round(labels[K // m] / basis.supercell.n_cells, 12))
        sectors.append({"momentum_fractional": list(momentum), "dimension": int(len(states)),
                        "levels_meV": [float(x) for x in levels]})
        if best is None or levels[0] < best[0]:
            best = (float(levels[0]), momentum, vector, states)
        del H

    parameters = {
        "V_meV": basis.V, "phi_deg": basis.phi, "m_star": basis.m_star, "a_M_nm": basis.a_M, "eps": basis.eps,
        "interaction": basis.interaction, "cutoff": basis.cutoff, "n_plane_waves": basis.n_pw,
        "supercell": basis.supercell.matrix.tolist(),
    }
    t4 = time.perf_counter()
    timings = {"matrix_elements": t2 - t1, "basis": t3 - t2, "assembly": assembly, "diagonalisation": diagonalisation,
               "total": t4 - t0, "total_cpu": time.process_time() - cpu0}
    return EDResult(
        energy_meV=best[0], n_electrons=N, n_up=n_up, n_down=n_down, n_bands=n_bands,
        bands_per_k=tuple(int(x) for x in keep),
        keeps_multiplets=symmetric, symmetric_n_bands=symmetric_band_counts(pw_bands.energies_meV, degeneracy_tol_meV),
        dimension=dimension, sectors=tuple(sectors), ground_momentum_fractional=best[1],
        bloch_determinant_energy_meV=bloch, parameters=parameters, timings_s=timings, peak_memory_GB=_peak_memory_GB(),
        ground_state=best[2], ground_basis=best[3], orbital_coefficients=C, basis=basis,
    )


# ------------------------------------------------------------------------------------------------
# the ED ground state as a multi-determinant wavefunction (JAX)
# ------------------------------------------------------------------------------------------------
def ed_log_amplitude(result: EDResult, drop_below: float = 0.0):
    """``log psi(r)`` of the ED ground state, ``psi = sum_s C_s det[phi_{j}(r_i)]_{j in s}``.

    Configurations ``s`` are the Fock states (orbitals in ascending index order, matching the bit-string sign
    convention of :mod:`._ed_fock`), ``phi_j`` the band orbitals as :class:`~qernel.hamiltonian.bands.BlochOrbitals`.

    Args:
        result: an :class:`EDResult`.
        drop_below: configurations with ``|C_s|`` below this are dropped (0 keeps all).

    Returns:
        ``f(positions)`` with positions (..., N, 2) in units of a_M returning complex ``log|psi| + i arg psi``, shape
        (...). jit- and vmap-compatible.
    """
    import jax.numpy as jnp

    N, n_up, n_sp = result.n_electrons, result.n_up, result.n_orbitals
    keep = np.abs(result.ground_state) > drop_below
    n_so = 2 * n_sp if result.spinful else n_sp
    occ = fock.occupied_orbitals(result.ground_basis[keep], n_so, N)  # (n_conf, N) ascending, up block first
    # spinful: qernel's electrons 0..n_up-1 are up and the rest down; the Fock ordering (all up orbitals before
    # all down ones) gives psi = sum_s C_s det_up det_down with one common sign
    blocks = [(slice(0, n_up), occ[:, :n_up]), (slice(n_up, N), occ[:, n_up:] - n_sp)] if result.spinful else \
        [(slice(0, N), occ)]
    coefficients = result.ground_state[keep]
    orbitals = result.basis.orbitals(result.orbital_coefficients)

    def log_psi(positions):
        if positions.shape[-2:] != (N, 2):
            raise ValueError(f"positions must have shape (..., {N}, 2), got {positions.shape}")
        sign, logabs = 1.0, 0.0
        for electrons, columns in blocks:
            phi = orbitals(positions[..., electrons, :])  # (..., n, n_sp)
            matrices = jnp.swapaxes(phi[..., columns], -2, -3)  # (..., n_conf, n electrons, n orbitals)
            det_sign, log_det = jnp.linalg.slogdet(matrices)
            sign, logabs = sign * det_sign, logabs + log_det
        shift = jnp.max(logabs, axis=-1, keepdims=True)
        c = jnp.asarray(coefficients, dtype=jnp.result_type(sign, jnp.complex64))
        total = jnp.sum(c * sign * jnp.exp(logabs - shift), axis=-1)
        return jnp.log(total) + shift[..., 0]

    return log_psi
