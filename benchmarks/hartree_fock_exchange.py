"""One Hartree-Fock exchange matrix: the convolution form of qernel (one real matrix product of the Coulomb
matrix with the density matrix's diagonals) against the orbital form ``K = W W^H`` it replaced, side by side.

Usage: python benchmarks/hartree_fock_exchange.py [--supercells 3 6] [--cutoff 3.0] [--repeats 3]

Prints, per moiré supercell at filling 2/3 (spin polarised: N = 6 on 3x3, 24 on 6x6), the number of plane
waves, of occupied orbitals and of momentum transfers, the best process CPU time of each form over
``--repeats`` calls on the same random orthonormal orbitals, their ratio and the largest difference of the
two matrices (relative to the largest element).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg.blas

from qernel.hamiltonian import WSE2_WS2, MoireHamiltonian
from qernel.reference.hartree_fock import _CoulombOperators
from qernel.reference.planewave import PlaneWaveBasis


def orbital_form_exchange(basis: PlaneWaveBasis, coefficients: np.ndarray) -> np.ndarray:
    """``K = W W^H``, ``W[a, (p, i)] = sqrt(v(p)) c_i(q_a + p)``: cost n_pw^2 n_p n_occ (the previous form)."""
    q = basis.q_int
    p = np.unique((q[:, None] - q[None, :]).reshape(-1, 2), axis=0)
    v = basis.coulomb_meV(p)
    p, sqrt_v = p[v > 0], np.sqrt(v[v > 0])
    shift = basis.index_of(q[None, :, :] + p[:, None, :])
    shift = np.where(shift >= 0, shift, basis.n_pw)
    padded = np.concatenate([coefficients, np.zeros((len(coefficients), 1), dtype=complex)], axis=1)
    W = padded[:, shift] * sqrt_v[None, :, None]
    W = np.asfortranarray(W.reshape(-1, basis.n_pw).T)
    K = scipy.linalg.blas.zherk(1.0, W)
    return np.triu(K) + np.triu(K, 1).conj().T


def _best(fn, repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--supercells", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--cutoff", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("supercell  N  n_pw  n_p  convolution [s]  orbital form [s]  ratio  max rel. diff")
    for n in args.supercells:
        ham = MoireHamiltonian(**WSE2_WS2, supercell=n, filling=2 / 3, polarized=True)
        basis = PlaneWaveBasis.from_hamiltonian(ham, V=15.0, cutoff=args.cutoff)
        rng = np.random.default_rng(0)
        z = rng.normal(size=(basis.n_pw, ham.n_up)) + 1j * rng.normal(size=(basis.n_pw, ham.n_up))
        coefficients = np.linalg.qr(z)[0].T
        ops = _CoulombOperators(basis)
        t_new, K_new = _best(lambda: ops.exchange(coefficients), args.repeats)
        t_old, K_old = _best(lambda: orbital_form_exchange(basis, coefficients), args.repeats)
        diff = np.abs(K_new - K_old).max() / np.abs(K_old).max()
        print(f"{n}x{n:<7d} {ham.n_electrons:3d} {basis.n_pw:5d} {ops.minus_d.shape[1]:5d} {t_new:15.3f} "
              f"{t_old:17.3f} {t_old / t_new:6.1f}  {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
