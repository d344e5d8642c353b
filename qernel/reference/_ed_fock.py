"""Fock-space engine of the exact diagonalisation: bit-string basis, momentum sectors, sparse two-body H.

Physics-free: it knows orbitals only through their crystal-momentum labels and the matrix elements
it is given. Conventions:

* A basis state of ``N`` fermions in ``n_orb <= 62`` orbitals is a bit string ``s`` (``uint64``), bit
  ``j`` set iff orbital ``j`` is occupied, and stands for ``c_{j1}^+ c_{j2}^+ ... |0>`` with
  ``j1 < j2 < ...`` (ascending). Hence ``c_j`` and ``c_j^+`` acting on ``s`` carry the sign
  ``(-1)^(number of occupied orbitals below j)``.
* Crystal momenta are indices ``0 .. n_k - 1`` into an abelian group given by its addition table
  ``add[i, j]`` (index of ``k_i + k_j``); ``zero`` is the index of the identity.
* The Hamiltonian is ``H = sum_{a<b, c<d} W[(a,b), (c,d)] c_a^+ c_b^+ c_d c_c`` (:func:`pair_matrix`
  folds a one-body part into ``W``), conserving total momentum, assembled as a scipy CSR matrix per
  sector, fully vectorised over basis states and matrix elements (chunks bound the memory).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse

__all__ = ["PairTable", "count_sector_dimensions", "sector_basis", "pair_matrix", "pair_table", "sector_hamiltonian"]

_MAX_ORBITALS = 62  # bit strings are uint64 and 1 << j must stay representable for masks


def _check_orbitals(n_orbitals: int, n_particles: int) -> None:
    if not 1 <= n_orbitals <= _MAX_ORBITALS:
        raise ValueError(f"number of orbitals must be in [1, {_MAX_ORBITALS}], got {n_orbitals}")
    if not 1 <= n_particles <= n_orbitals:
        raise ValueError(f"number of particles must be in [1, n_orbitals={n_orbitals}], got {n_particles}")


def count_sector_dimensions(momenta: np.ndarray, add: np.ndarray, n_particles: int) -> np.ndarray:
    """Dimension of every total-momentum sector without enumerating states, shape (n_k,) of Python ints.

    Dynamic programming over orbitals: ``dp[n, K]`` counts the ways to occupy ``n`` of the orbitals seen
    so far with total momentum ``K``. ``momenta``: (n_orb,) int momentum index per orbital;
    ``add``: (n_k, n_k) addition table.
    """
    n_k = add.shape[0]
    zero = _identity(add)
    dp = [[0] * n_k for _ in range(n_particles + 1)]
    dp[0][zero] = 1
    for m in np.asarray(momenta, dtype=int):
        for n in range(min(n_particles, len(momenta)), 0, -1):
            row, below = dp[n], dp[n - 1]
            for K in range(n_k):
                if below[K]:
                    row[int(add[K, m])] += below[K]
    return np.array(dp[n_particles], dtype=object)


def _identity(add: np.ndarray) -> int:
    zero = [i for i in range(add.shape[0]) if np.array_equal(add[i], np.arange(add.shape[0]))]
    if len(zero) != 1:
        raise ValueError("add is not the addition table of a group (no unique identity)")
    return zero[0]


def _popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x).astype(np.int16)


def sector_basis(momenta: np.ndarray, add: np.ndarray, n_particles: int) -> dict[int, np.ndarray]:
    """All ``N``-particle bit strings grouped by total momentum: {sector: sorted uint64 array}.

    Enumerates all ``C(n_orb, N)`` combinations; the caller checks that this is affordable
    (:func:`count_sector_dimensions`) before calling.
    """
    momenta = np.asarray(momenta, dtype=np.int64)
    n_orb = len(momenta)
    _check_orbitals(n_orb, n_particles)
    flat = itertools.chain.from_iterable(itertools.combinations(range(n_orb), n_particles))
    occ = np.fromiter(flat, dtype=np.int64, count=math.comb(n_orb, n_particles) * n_particles).reshape(-1, n_particles)
    total = np.full(len(occ), _identity(add), dtype=np.int64)
    for column in occ.T:
        total = add[total, momenta[column]]
    bits = np.bitwise_or.reduce(np.left_shift(np.uint64(1), occ.astype(np.uint64)), axis=1)
    return {int(K): np.sort(bits[total == K]) for K in np.unique(total)}


def occupied_orbitals(states: np.ndarray, n_orbitals: int, n_particles: int) -> np.ndarray:
    """Occupied orbital indices of each bit string in ascending order, (n_states, N) int64."""
    bits = (states[:, None] >> np.arange(n_orbitals, dtype=np.uint64)[None, :]) & np.uint64(1)
    occ = np.nonzero(bits)[1].reshape(len(states), n_particles)
    return occ.astype(np.int64)


def pair_matrix(two_body: np.ndarray, one_body: np.ndarray, n_particles: int) -> np.ndarray:
    """Antisymmetrised pair amplitudes ``W[a, b, c, d] = V'_abcd - V'_abdc`` (only a<b, c<d are used).

    ``two_body[a, b, c, d] = <ab|v|cd>`` (H_2 = 1/2 sum V_abcd c_a^+ c_b^+ c_d c_c) and
    ``one_body[a, c]`` (H_1 = sum h_ac c_a^+ c_c), shapes (n,)*4 and (n, n). On ``N >= 2``-particle
    states ``c_a^+ c_c = c_a^+ N c_c / (N - 1)``, so H_1 is folded into
    ``V'_abcd = V_abcd + (h_ac delta_bd + delta_ac h_bd) / (N - 1)``.
    """
    n = one_body.shape[0]
    if n_particles < 2:
        raise ValueError(f"pair_matrix needs n_particles >= 2 (fold of the one-body term), got {n_particles}")
    eye = np.eye(n)
    fold = np.einsum("ac,bd->abcd", one_body, eye) + np.einsum("ac,bd->abcd", eye, one_body)
    V = two_body + fold / (n_particles - 1)
    return V - V.transpose(0, 1, 3, 2)


@dataclass(frozen=True)
class PairTable:
    """Momentum-conserving pair transitions ``(c, d) -> (a, b)`` with their amplitudes.

    Attributes:
        index: (n_orb, n_orb) int, index of the pair (c, d) for c < d, -1 otherwise.
        first, second: (n_pairs,) orbitals c < d of each pair.
        target_first, target_second: (n_pairs, m) orbitals a < b of the pairs with the same total
            momentum (padded with 0; ``valid`` marks real entries).
        amplitude: (n_pairs, m) complex ``W[(a, b), (c, d)]`` (0 on padding).
        valid: (n_pairs, m) bool.
    """

    index: np.ndarray
    first: np.ndarray
    second: np.ndarray
    target_first: np.ndarray
    target_second: np.ndarray
    amplitude: np.ndarray
    valid: np.ndarray


def pair_table(W: np.ndarray, momenta: np.ndarray, add: np.ndarray, tol: float = 0.0) -> PairTable:
    """Group the pairs by total momentum and keep the transitions with ``|W| > tol``."""
    n = len(momenta)
    first, second = np.triu_indices(n, k=1)
    index = -np.ones((n, n), dtype=np.int64)
    index[first, second] = np.arange(len(first))
    pair_k = add[np.asarray(momenta)[first], np.asarray(momenta)[second]]
    amplitudes = W[first[:, None], second[:, None], first[None, :], second[None, :]]  # [target, source]
    allowed = (pair_k[:, None] == pair_k[None, :]) & (np.abs(amplitudes) > tol)
    m = max(1, int(allowed.sum(axis=0).max())) if len(first) else 1
    order = np.argsort(~allowed, axis=0, kind="stable")[:m].T  # per source pair: allowed targets first
    valid = np.take_along_axis(allowed.T, order, axis=1)
    amp = np.where(valid, np.take_along_axis(amplitudes.T, order, axis=1), 0.0)
    return PairTable(index, first, second, first[order], second[order], amp, valid)


def sector_hamiltonian(states: np.ndarray, table: PairTable, n_orbitals: int, n_particles: int,
                       constant: float = 0.0, chunk_elements: int = 4_000_000) -> scipy.sparse.csr_matrix:
    """Sparse ``H[s', s] = <s'| sum W c_a^+ c_b^+ c_d c_c |s> + constant delta_{s's}`` on one sector.

    Args:
        states: (D,) sorted uint64 bit strings of one total-momentum sector.
        table: :func:`pair_table` of the antisymmetrised amplitudes.
        chunk_elements: candidate matrix elements per vectorised chunk (bounds the temporary memory,
            ~60 bytes each).

    Returns:
        (D, D) complex128 CSR matrix (duplicates summed).
    """
    D = len(states)
    iu, ju = np.triu_indices(n_particles, k=1)
    m = table.target_first.shape[1]
    chunk = max(1, chunk_elements // max(1, len(iu) * m))
    one = np.uint64(1)
    below = (one << np.arange(n_orbitals, dtype=np.uint64)) - one  # bits of the orbitals below j
    # per pair (x < y): its two bits, and the bits strictly between x and y whose parity is the sign of
    # c_y c_x (remove x, then y) or of c_x^+ c_y^+ (add y, then x) on a state without x and y
    pair_bits = (one << table.first.astype(np.uint64)) | (one << table.second.astype(np.uint64))
    between = below[table.second] ^ below[table.first] ^ (one << table.first.astype(np.uint64))
    target = table.index[table.target_first, table.target_second]  # (n_pairs, m) target pair index
    rows, cols, vals = [], [], []
    for start in range(0, D, chunk):
        S = states[start:start + chunk]
        occ = occupied_orbitals(S, n_orbitals, n_particles)
        P = table.index[occ[:, iu], occ[:, ju]]  # (n_s, n_pairs_occ) occupied pairs (c < d)
        s2 = S[:, None] & ~pair_bits[P]  # c and d removed
        parity = _popcount(s2 & between[P])  # c_d c_c: bits strictly between c and d
        T = target[P]  # (n_s, n_p, m)
        s2 = s2[..., None]
        ok = table.valid[P] & ((s2 & pair_bits[T]) == 0)
        parity = parity[..., None] + _popcount(s2 & between[T])
        new = (s2 | pair_bits[T])[ok]
        value = np.where(parity[ok] % 2 == 0, 1.0, -1.0) * table.amplitude[P][ok]
        row = np.searchsorted(states, new)
        if np.any(row >= D) or np.any(states[np.minimum(row, D - 1)] != new):
            raise RuntimeError("a transition left the momentum sector: the amplitudes do not conserve momentum")
        col = np.broadcast_to((start + np.arange(len(S), dtype=np.int32))[:, None, None], ok.shape)[ok]
        rows.append(row.astype(np.int32))
        cols.append(col)
        vals.append(value)
    rows.append(np.arange(D, dtype=np.int32))
    cols.append(np.arange(D, dtype=np.int32))
    vals.append(np.full(D, constant, dtype=complex))
    H = scipy.sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(D, D))
    return H.tocsr()


def binomial(n: int, k: int) -> int:
    """``C(n, k)`` as a Python int."""
    return math.comb(n, k)
