"""Unrestricted self-consistent Hartree-Fock of a moiré supercell in its plane-wave basis (NumPy).

The determinant is free to break the moiré lattice's translations inside the supercell (generalized Wigner
crystals): orbitals are general coefficient vectors over all supercell plane waves ``q = k + G``
(:class:`~qernel.reference.planewave.PlaneWaveBasis`), one set per spin (any S_z, spin polarised included).
The energy functional is the expectation value of the Hamiltonian of :mod:`qernel.reference.planewave`
(identical to the real-space Ewald convention of qernel's Monte Carlo)::

    E = sum_s Tr[h rho_s] + 1/2 Tr[J rho] - 1/2 sum_s Tr[K_s rho_s] + N xi / 2,
    rho_s[a, b] = sum_{i occ} c_ia conj(c_ib),
    J[a, b] = v(q_a - q_b) n(q_a - q_b),    n(p) = sum_a rho[a + p, a],        (Hartree, both spins)
    K_s[a, b] = sum_{p != 0} v(p) rho_s[a + p, b + p],                          (exchange, same spin)

with ``v(p) = PlaneWaveBasis.coulomb_meV(p)`` (meV). The exchange depends on ``(a, b)`` through ``d = q_a - q_b``
and a convolution over ``p``: with ``R[c, d] = rho_s[c, c - d]`` (the density matrix along its ``d``-th diagonal),
``K_s[a, b] = sum_c v(q_c - q_a) R[c, q_a - q_b]``, i.e. one real matrix product ``v R`` of the (n_pw, n_pw)
Coulomb matrix with the (n_pw, n_d) diagonals, then a gather. Its cost ``n_pw^2 n_d`` does not grow with the
number of electrons (the orbital form ``W W^H`` costs ``n_pw^2 n_p n_occ``: 24x more at N = 24).

The self-consistency loop is level-shifted Roothaan diagonalisation with energy descent (a step that raises the
energy is rejected and the shift doubled), accelerated by DIIS (Pulay, commutator ``F rho - rho F`` as error) near
convergence; at a stationary point that does not occupy the lowest Fock levels, the highest occupied and lowest
virtual orbitals are swapped if that lowers the energy. The Fock matrix carries the Madelung term ``xi rho_s`` (see
``_evaluate``), which leaves energies unchanged and makes the gap that of the neutralised supercell. Several starts are run and the lowest converged energy kept: ``"noninteracting"`` (the lowest eigenvectors of
h), ``"crystal"`` (a temporary attractive bias on a set of moiré sites: the sqrt3 x sqrt3 sublattices when the
supercell allows them, i.e. the honeycomb crystal at filling 2/3 and the triangular one at 1/3) and ``"random"``
(random orthonormal orbitals in the span of the low-energy bands). A start that does not converge issues a
``UserWarning``; the lowest-energy start is kept (converged or not: any determinant's energy is a variational
upper bound) and ``HartreeFockResult.converged`` says whether it is stationary.

Export: :attr:`HartreeFockResult.orbitals_up` / ``orbitals_down`` are
:class:`~qernel.hamiltonian.bands.BlochOrbitals` of the occupied canonical orbitals (internal units), i.e. a Slater
determinant ``slater_log_amplitude(result.orbitals_up, result.orbitals_down)`` that qernel's samplers and ansatz
accept, and the targets of orbital pretraining.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from ..hamiltonian.bands import BlochOrbitals
from .planewave import PlaneWaveBasis

__all__ = ["HartreeFockResult", "determinant_energy", "hartree_fock", "STARTS"]

#: The available starting points (see the module docstring).
STARTS = ("noninteracting", "crystal", "random")


@dataclass(frozen=True, eq=False)
class HartreeFockResult:
    """A converged (or the best unconverged) unrestricted Hartree-Fock determinant. Energies in meV.

    Attributes:
        energy_meV: total energy ``E`` (kinetic + moire + hartree + exchange + madelung).
        kinetic_meV, moire_meV: one-body parts. hartree_meV: ``1/2 Tr[J rho]`` (p != 0). exchange_meV:
            ``-1/2 sum_s Tr[K_s rho_s]`` (<= 0). madelung_meV: ``N xi / 2``.
        gap_meV: lowest unoccupied minus highest occupied Fock eigenvalue over the spins that hold electrons
            (Fock matrix with the Madelung term, see ``_evaluate``).
        eigenvalues_up, eigenvalues_down: (n_pw,) Fock eigenvalues per spin (meV): the n_s occupied ones first
            (ascending), then the virtual ones (ascending).
        coefficients_up, coefficients_down: (n_s, n_pw) occupied canonical orbitals in the q basis.
        converged: whether the kept start met the tolerance. start: its name. n_iterations: its iterations.
        history: its energy per iteration (meV). starts: ``{start name: (energy_meV, converged)}`` of all starts.
        basis: the :class:`PlaneWaveBasis` (parameters, V, q set). seconds: wall time of all starts.
    """

    energy_meV: float
    kinetic_meV: float
    moire_meV: float
    hartree_meV: float
    exchange_meV: float
    madelung_meV: float
    gap_meV: float
    eigenvalues_up: np.ndarray
    eigenvalues_down: np.ndarray
    coefficients_up: np.ndarray
    coefficients_down: np.ndarray
    converged: bool
    start: str
    n_iterations: int
    history: tuple[float, ...]
    starts: dict = field(default_factory=dict)
    basis: PlaneWaveBasis | None = None
    seconds: float = 0.0

    @property
    def n_up(self) -> int:
        return len(self.coefficients_up)

    @property
    def n_down(self) -> int:
        return len(self.coefficients_down)

    @property
    def n_electrons(self) -> int:
        return self.n_up + self.n_down

    @property
    def energy_per_electron_meV(self) -> float:
        return self.energy_meV / self.n_electrons

    @property
    def orbitals_up(self) -> BlochOrbitals:
        """Occupied spin-up orbitals as :class:`BlochOrbitals` (internal units; k = 0, G = q)."""
        return self.basis.orbitals(self.coefficients_up.reshape(-1, self.basis.n_pw))

    @property
    def orbitals_down(self) -> BlochOrbitals:
        """Occupied spin-down orbitals as :class:`BlochOrbitals` (may hold 0 orbitals)."""
        return self.basis.orbitals(self.coefficients_down.reshape(-1, self.basis.n_pw))

    def density(self, n_grid: int = 48) -> tuple[np.ndarray, np.ndarray]:
        """Total electron density on a supercell grid: ``(positions_nm (n, n, 2), density_per_nm2 (n, n))``."""
        occupied = np.concatenate([self.coefficients_up, self.coefficients_down]).reshape(-1, self.basis.n_pw)
        return self.basis.density(occupied, n_grid)

    def as_dict(self) -> dict:
        """JSON-ready summary (keys name their units)."""
        return {
            "method": "hf",
            "V_meV": self.basis.V,
            "n_electrons": self.n_electrons,
            "n_up": self.n_up,
            "n_down": self.n_down,
            "energy_meV": self.energy_meV,
            "energy_per_electron_meV": self.energy_per_electron_meV,
            "kinetic_meV": self.kinetic_meV,
            "moire_meV": self.moire_meV,
            "hartree_meV": self.hartree_meV,
            "exchange_meV": self.exchange_meV,
            "madelung_meV": self.madelung_meV,
            "gap_meV": self.gap_meV,
            "converged": self.converged,
            "start": self.start,
            "n_iterations": self.n_iterations,
            "starts_energy_meV": {name: energy for name, (energy, _) in self.starts.items()},
            "n_plane_waves": self.basis.n_pw,
            "cutoff": self.basis.cutoff,
            "seconds": self.seconds,
        }


# ------------------------------------------------------------------------------------------------
# Coulomb operators in the plane-wave basis
# ------------------------------------------------------------------------------------------------
class _CoulombOperators:
    """Momentum-transfer tables for the Hartree and exchange matrices of one basis."""

    def __init__(self, basis: PlaneWaveBasis):
        q = basis.q_int
        diffs = (q[:, None, :] - q[None, :, :]).reshape(-1, 2)
        # unique rows through one integer key per row (np.unique(axis=0) sorts structured rows, ~30x slower)
        low, span = diffs.min(axis=0), np.ptp(diffs, axis=0) + 1
        keys, inverse = np.unique((diffs[:, 0] - low[0]) * span[1] + (diffs[:, 1] - low[1]), return_inverse=True)
        p = np.stack([keys // span[1] + low[0], keys % span[1] + low[1]], axis=-1)
        v = basis.coulomb_meV(p)
        self.v_pair = v[inverse.reshape(len(q), len(q))]  # v(q_a - q_b)
        self.pair_index = inverse.reshape(len(q), len(q))
        # minus_d[c, d] = index of q_c - p_d, or n_pw (a zero pad) outside the basis
        minus_d = basis.index_of(q[:, None, :] - p[None, :, :])
        self.minus_d = np.where(minus_d >= 0, minus_d, len(q))
        all_shift = basis.index_of(q[None, :, :] + p[:, None, :])
        self.all_shift = np.where(all_shift >= 0, all_shift, len(q))
        self.n_pw = len(q)

    def hartree(self, rho: np.ndarray) -> np.ndarray:
        """J (n_pw, n_pw) for the total density matrix rho."""
        padded = np.zeros((self.n_pw + 1, self.n_pw), dtype=complex)
        padded[:-1] = rho
        n_p = padded[self.all_shift, np.arange(self.n_pw)[None, :]].sum(axis=-1)  # n(p) = sum_a rho[a+p, a]
        return self.v_pair * n_p[self.pair_index]

    def exchange(self, coefficients: np.ndarray) -> np.ndarray:
        """K (n_pw, n_pw) of occupied orbitals (n_occ, n_pw) of one spin: ``K[a, b] = sum_p v(p) rho[a+p, b+p]``."""
        if len(coefficients) == 0:
            return np.zeros((self.n_pw, self.n_pw), dtype=complex)
        padded = np.zeros((self.n_pw + 1, self.n_pw + 1), dtype=complex)
        padded[:-1, :-1] = _density_matrix(coefficients)
        diagonals = padded[np.arange(self.n_pw)[:, None], self.minus_d]  # R[c, d] = rho[c, c - d], (n_pw, n_d)
        # one real product: v(q_c - q_a) = v_pair[a, c] (v depends on |p| only, so v_pair is symmetric and real),
        # and v_pair @ (Re R | Im R) gives the convolution for all d at once
        stacked = np.concatenate([diagonals.real, diagonals.imag], axis=1)
        convolved = self.v_pair @ stacked
        n_d = diagonals.shape[1]
        convolved = convolved[:, :n_d] + 1j * convolved[:, n_d:]
        return np.take_along_axis(convolved, self.pair_index, axis=1)  # K[a, b] = (v R)[a, index(q_a - q_b)]

def _density_matrix(coefficients: np.ndarray) -> np.ndarray:
    return coefficients.T @ coefficients.conj()


# ------------------------------------------------------------------------------------------------
# starts
# ------------------------------------------------------------------------------------------------
def _moire_sites(basis: PlaneWaveBasis) -> tuple[np.ndarray, np.ndarray]:
    """Moiré-potential minima in the supercell (a_M), (n_cells, 2), and their sqrt3 x sqrt3 class (or -1)."""
    # minimum of Delta in one moiré cell (grid search; any minimum works as a seed)
    s = np.arange(60) / 60
    frac = np.stack(np.meshgrid(s, s, indexing="ij"), -1).reshape(-1, 2)
    A = basis.supercell.primitive.vectors
    from ..hamiltonian.moire_potential import moire_g_vectors

    phases = frac @ A @ moire_g_vectors(1.0).T + math.radians(basis.phi)
    delta = -2 * np.sign(basis.V or 1.0) * np.cos(phases).sum(-1)
    r0 = frac[np.argmin(delta)] @ A
    M = basis.supercell.matrix
    span = int(np.abs(M).sum()) + 1
    n = np.stack(np.meshgrid(np.arange(-span, span + 1), np.arange(-span, span + 1), indexing="ij"), -1).reshape(-1, 2)
    f = np.round(n @ np.linalg.inv(M), 10)
    cells = n[np.all((f >= 0) & (f < 1), axis=-1)]
    sqrt3_ok = all((row[0] - row[1]) % 3 == 0 for row in M)
    classes = (cells[:, 0] - cells[:, 1]) % 3 if sqrt3_ok else -np.ones(len(cells), dtype=int)
    order = np.argsort(classes, kind="stable")
    return cells[order] @ A + r0, classes[order]


def _bias_matrix(basis: PlaneWaveBasis, sites: np.ndarray, depth_meV: float, width: float = 0.25) -> np.ndarray:
    """``<q_a| U |q_b>`` of ``U(r) = -depth sum_R exp(-|r - R|^2 / 2 w^2)`` (w in a_M), (n_pw, n_pw) meV."""
    if len(sites) == 0:
        return np.zeros((basis.n_pw,) * 2, dtype=complex)
    dq = basis.q[:, None, :] - basis.q[None, :, :]
    structure = np.exp(-1j * dq @ sites.T).sum(-1)
    return -depth_meV * 2 * math.pi * width**2 / basis.area * np.exp(-0.5 * width**2 * np.sum(dq**2, -1)) * structure


def _start(name: str, basis: PlaneWaveBasis, h: np.ndarray, n_up: int, n_down: int, rng) -> tuple[list, list]:
    """Initial occupied orbitals per spin and the bias matrices per spin (None = no bias)."""
    w, v = np.linalg.eigh(h)
    if name == "noninteracting":
        return [v[:, :n_up].T, v[:, :n_down].T], [None, None]
    if name == "random":
        m = min(basis.n_pw, max(3 * basis.n_k, n_up, n_down))
        out = []
        for n in (n_up, n_down):
            z = rng.normal(size=(m, n)) + 1j * rng.normal(size=(m, n))
            out.append((v[:, :m] @ np.linalg.qr(z)[0]).T)
        return out, [None, None]
    if name == "crystal":
        sites, _ = _moire_sites(basis)
        n_sites = len(sites)
        up = sites[np.arange(n_up) % n_sites]
        down = sites[(n_up + np.arange(n_down)) % n_sites]
        depth = 2.0 * abs(basis.V) + 2.0 * basis.coulomb_prefactor_meV
        biases = [_bias_matrix(basis, up, depth), _bias_matrix(basis, down, depth)]
        out = []
        for n, bias in zip((n_up, n_down), biases):
            out.append(np.linalg.eigh(h + bias)[1][:, :n].T)
        return out, biases
    raise ValueError(f"start must be one of {STARTS}, got {name!r}")


# ------------------------------------------------------------------------------------------------
# self-consistency
# ------------------------------------------------------------------------------------------------
def _evaluate(ops, h, T_diag, coefficients, madelung_total, xi):
    """Fock matrices, energy parts and commutator errors of the determinant ``coefficients`` (per spin).

    The Fock matrix carries the Madelung term as ``+ xi rho_s`` (the derivative of ``xi/2 Tr rho_s^2``, equal to
    ``N_s xi / 2`` for a determinant): the usual treatment of the p = 0 exchange in periodic Hartree-Fock (PySCF's
    ``exxdiv='ewald'``). It leaves energies unchanged and makes the Fock eigenvalues those of removing/adding an
    electron in the neutralised supercell (without it the gap would lack ``-xi``, tens of meV).
    """
    rhos = [_density_matrix(c) for c in coefficients]
    J = ops.hartree(rhos[0] + rhos[1])
    Ks = [ops.exchange(c) for c in coefficients]
    focks = [h + J - K + xi * r for K, r in zip(Ks, rhos)]
    parts = dict(
        kinetic=sum(float(np.real(np.sum(T_diag * np.diag(r)))) for r in rhos),
        moire=sum(float(np.real(np.vdot(r, h - np.diag(T_diag)))) for r in rhos),
        hartree=0.5 * float(np.real(np.vdot(rhos[0] + rhos[1], J))),
        exchange=-0.5 * sum(float(np.real(np.vdot(r, K))) for r, K in zip(rhos, Ks)),
    )
    energy = sum(parts.values()) + madelung_total
    # F rho - rho F = X - X^H with X = (F C^T) C^* (rho = C^T C^* has rank n_occ; F, rho Hermitian)
    products = [(F @ c.T) @ c.conj() for F, c in zip(focks, coefficients)]
    errors = [X - X.conj().T for X in products]
    return dict(focks=focks, rhos=rhos, parts=parts, energy=energy, errors=errors,
                error=max(float(np.abs(e).max()) for e in errors))


def _canonical(F: np.ndarray, coefficients: np.ndarray):
    """Canonical orbitals: F diagonalised within the occupied space and within its complement.

    Returns ``(w_occ, occupied (n_pw, n_s), w_vir, virtual (n_pw, n_pw - n_s))``, eigenvalues ascending. A stationary
    determinant need not occupy the lowest Fock levels (then ``w_vir[0] < w_occ[-1]``).
    """
    occupied = coefficients.T
    complement = scipy.linalg.null_space(coefficients.conj()) if len(coefficients) else np.eye(len(F))
    w_occ, u_occ = np.linalg.eigh(occupied.conj().T @ F @ occupied)
    w_vir, u_vir = np.linalg.eigh(complement.conj().T @ F @ complement)
    return w_occ, occupied @ u_occ, w_vir, complement @ u_vir


def _scf(basis, ops, h, coefficients, biases, *, madelung_total, max_iterations, tol_meV, bias_iterations, n_diis):
    """Level-shifted Roothaan iterations with DIIS near convergence.

    The level shift ``sigma (1 - rho)`` on the virtual space makes each step small enough that the energy falls;
    a step that raises the energy is rejected and ``sigma`` doubled, an accepted one lowers it (so the loop is a
    descent method that becomes plain DIIS-accelerated Roothaan once it is close).
    """
    n_s = [len(c) for c in coefficients]
    T_diag = basis.kinetic_matrix()
    xi = basis.madelung_meV
    fock_history, error_history, energies = [], [], []
    converged = False
    sigma, sigma_min = 1.0, 0.0
    current = _evaluate(ops, h, T_diag, coefficients, madelung_total, xi)
    energies.append(current["energy"])
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        biased = iteration <= bias_iterations and any(b is not None for b in biases)
        focks = current["focks"]
        if biased:
            focks = [F + (b if b is not None else 0) for F, b in zip(focks, biases)]
        else:
            fock_history.append(current["focks"])
            error_history.append(np.concatenate([e.ravel() for e in current["errors"]]))
            fock_history, error_history = fock_history[-n_diis:], error_history[-n_diis:]
            if len(fock_history) > 1 and current["error"] < 1.0:
                focks = _diis(fock_history, error_history)
            focks = [F + sigma * (np.eye(len(F)) - r) for F, r in zip(focks, current["rhos"])]
        new = []
        for s in range(2):
            if n_s[s] == 0:  # an empty spin (spin polarised): nothing to diagonalise
                new.append(np.zeros((0, len(focks[s])), dtype=complex))
                continue
            v = scipy.linalg.eigh(focks[s], subset_by_index=[0, n_s[s] - 1])[1]
            new.append(v.T)
        trial = _evaluate(ops, h, T_diag, new, madelung_total, xi)
        if not biased and trial["energy"] > current["energy"] + 1e-9 * max(1.0, abs(current["energy"])):
            sigma = max(2.0 * sigma, 1.0)  # reject: shorter step, restart DIIS
            fock_history, error_history = [], []
            energies.append(current["energy"])
            continue
        sigma = max(0.5 * sigma, sigma_min) if not biased else sigma
        change = abs(trial["energy"] - current["energy"])
        coefficients, current = new, trial
        energies.append(current["energy"])
        if not biased and current["error"] < tol_meV and change < 1e-2 * tol_meV:
            # stationary; the level shift also admits non-aufbau stationary points: try swapping the highest
            # occupied with a lower virtual level, keep it if E falls, and go on
            trial_coefficients = list(coefficients)
            for s in range(2):
                w_occ, occupied, w_vir, virtual = _canonical(current["focks"][s], coefficients[s])
                if len(w_occ) and len(w_vir) and w_vir[0] < w_occ[-1] - tol_meV:
                    occupied[:, -1] = virtual[:, 0]
                    trial_coefficients[s] = occupied.T
            swap = _evaluate(ops, h, T_diag, trial_coefficients, madelung_total, xi)
            if swap["energy"] >= current["energy"] - tol_meV:
                converged = True
                break
            coefficients, current = trial_coefficients, swap
            sigma, fock_history, error_history = 0.0, [], []
            energies.append(current["energy"])
        if not biased and change < 1e-5 * tol_meV and sigma > 1e3:
            break  # stalled: the shift no longer finds a lower determinant
    eigen = []
    for s in range(2):
        w_occ, occupied, w_vir, _ = _canonical(current["focks"][s], coefficients[s])
        coefficients[s] = occupied.T
        eigen.append((w_occ, w_vir))
    final = _evaluate(ops, h, T_diag, coefficients, madelung_total, xi)
    return dict(final["parts"], energy=final["energy"], converged=converged, n_iterations=iteration,
                history=tuple(energies), eigenvalues=eigen, coefficients=coefficients)


def _diis(fock_history, error_history):
    n = len(fock_history)
    B = -np.ones((n + 1, n + 1))
    B[n, n] = 0
    for i in range(n):
        for j in range(i, n):
            B[i, j] = B[j, i] = float(np.real(np.vdot(error_history[i], error_history[j])))
    rhs = np.zeros(n + 1)
    rhs[n] = -1
    try:
        weights = np.linalg.solve(B, rhs)[:n]
    except np.linalg.LinAlgError:
        return fock_history[-1]
    return [sum(w * F[s] for w, F in zip(weights, fock_history)) for s in range(2)]


def determinant_energy(basis: PlaneWaveBasis, coefficients_up, coefficients_down) -> dict:
    """Energy (meV) of any Slater determinant of orthonormal orbitals (n_s, n_pw) per spin, and its parts.

    Returns ``{"energy_meV", "kinetic_meV", "moire_meV", "hartree_meV", "exchange_meV", "madelung_meV"}``.
    """
    coefficients = [np.asarray(c, dtype=complex).reshape(-1, basis.n_pw) for c in (coefficients_up, coefficients_down)]
    n = sum(len(c) for c in coefficients)
    result = _evaluate(_CoulombOperators(basis), basis.one_body_matrix(), basis.kinetic_matrix(), coefficients,
                       n * basis.madelung_meV / 2, basis.madelung_meV)
    return {"energy_meV": result["energy"], **{f"{k}_meV": v for k, v in result["parts"].items()},
            "madelung_meV": n * basis.madelung_meV / 2}


def hartree_fock(
    hamiltonian,
    *,
    V: float | None = None,
    starts: tuple[str, ...] = STARTS,
    cutoff: float | None = None,
    basis: PlaneWaveBasis | None = None,
    max_iterations: int = 300,
    tol_meV: float = 1e-3,
    bias_iterations: int = 8,
    n_diis: int = 8,
    seed: int = 0,
) -> HartreeFockResult:
    """Unrestricted Hartree-Fock ground state of a moiré supercell (lowest of several starts).

    Args:
        hamiltonian: a :class:`~qernel.hamiltonian.moire.MoireHamiltonian` (supercell, spin sector n_up/n_down,
            parameters, ``interaction`` scale).
        V: moiré depth in meV (default: the Hamiltonian's).
        starts: names from :data:`STARTS`; all are run and the lowest energy kept.
        cutoff: plane-wave cutoff ``|G|_max / |g_1|`` (default :data:`~qernel.reference.planewave.DEFAULT_CUTOFF`).
        basis: a prebuilt basis (overrides V and cutoff).
        max_iterations: per start. tol_meV: convergence when ``max |F rho - rho F| < tol_meV`` and the energy
            changes by less than ``tol_meV / 100`` (meV) in one iteration. bias_iterations: iterations with the crystal bias on. n_diis: DIIS subspace size.
        seed: of the random start.

    Returns:
        :class:`HartreeFockResult`.
    """
    t0 = time.perf_counter()
    if not starts or any(s not in STARTS for s in starts):
        raise ValueError(f"starts must be a non-empty subset of {STARTS}, got {starts!r}")
    if basis is None:
        basis = PlaneWaveBasis.from_hamiltonian(hamiltonian, V=V, cutoff=cutoff)
    n_up, n_down = hamiltonian.n_up, hamiltonian.n_down
    if max(n_up, n_down) > basis.n_pw:
        raise ValueError(f"n_up, n_down must be <= the number of plane waves {basis.n_pw}; raise cutoff")
    ops = _CoulombOperators(basis)
    h = basis.one_body_matrix()
    madelung_total = (n_up + n_down) * basis.madelung_meV / 2
    rng = np.random.default_rng(seed)
    runs = {}
    for name in starts:
        coefficients, biases = _start(name, basis, h, n_up, n_down, rng)
        runs[name] = _scf(basis, ops, h, list(coefficients), biases, madelung_total=madelung_total,
                          max_iterations=max_iterations, tol_meV=tol_meV,
                          bias_iterations=bias_iterations if name == "crystal" else 0, n_diis=n_diis)
        if not runs[name]["converged"]:
            warnings.warn(f"Hartree-Fock start {name!r} did not converge in {max_iterations} iterations "
                          f"(V = {basis.V} meV); its energy {runs[name]['energy']:.6f} meV is not stationary",
                          stacklevel=2)
    ranked = sorted(runs, key=lambda k: runs[k]["energy"])  # lowest energy kept (every determinant is an upper bound)
    best_name = ranked[0]
    best = runs[best_name]
    (occ_up, vir_up), (occ_down, vir_down) = best["eigenvalues"]
    homo = [w.max() for w in (occ_up, occ_down) if len(w)]
    lumo = [v.min() for w, v in ((occ_up, vir_up), (occ_down, vir_down)) if len(w) and len(v)]
    gap = float(min(lumo) - max(homo)) if lumo else math.inf
    w_up, w_down = np.concatenate([occ_up, vir_up]), np.concatenate([occ_down, vir_down])
    return HartreeFockResult(
        energy_meV=best["energy"], kinetic_meV=best["kinetic"], moire_meV=best["moire"], hartree_meV=best["hartree"],
        exchange_meV=best["exchange"], madelung_meV=madelung_total, gap_meV=gap, eigenvalues_up=w_up,
        eigenvalues_down=w_down, coefficients_up=best["coefficients"][0], coefficients_down=best["coefficients"][1],
        converged=best["converged"], start=best_name, n_iterations=best["n_iterations"], history=best["history"],
        starts={k: (r["energy"], r["converged"]) for k, r in runs.items()}, basis=basis,
        seconds=time.perf_counter() - t0,
    )
