"""Numerically exact ground-state energy of two electrons in a 2D parabolic quantum dot.

    H = sum_{i=1,2} [ -1/2 nabla_i^2 + 1/2 omega^2 r_i^2 ] + 1/|r_1 - r_2|     (Hartree units)

separates into the center of mass (mass 2; 2D oscillator ground state: E_cm = omega) and the
relative coordinate r = r_1 - r_2 (reduced mass 1/2):

    H_rel = -nabla^2 + omega^2 r^2 / 4 + 1/r.

The singlet ground state has m = 0, so H_rel acts on a radial function R(r) as
``-(1/r) (r R')' + (omega^2 r^2 / 4 + 1/r) R``. We discretise it with a cell-centered finite
difference grid ``r_i = (i - 1/2) h`` (the flux ``r R'`` vanishes at r = 0, so no boundary
condition is needed there), symmetrise with ``sqrt(r_i)``, take the lowest eigenvalue of the
tridiagonal matrix and remove the O(h^2) error by Richardson extrapolation.

Independent checks (the quasi-exact solutions of Taut, J. Phys. A 27, 1045 (1994), derived in
``quasi_exact_energy``): omega = 1 gives E = 3 Ha, omega = 1/6 gives E = 2/3 Ha.

Run ``python examples/exact_two_electron_dot.py 0.5 0.75 1.0`` to print energies.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.linalg import eigh_tridiagonal

__all__ = ["relative_energy", "two_electron_energy", "quasi_exact_energy"]


def _lowest_eigenvalue(omega: float, n_points: int, r_max: float) -> float:
    h = r_max / n_points
    r = (np.arange(n_points) + 0.5) * h  # cell centers
    flux = np.arange(1, n_points + 1) * h  # r at the cell faces i + 1/2 (face 1/2 at r = 0 carries no flux)
    left = np.concatenate([[0.0], flux[:-1]])
    diagonal = (flux + left) / (r * h**2) + 0.25 * omega**2 * r**2 + 1.0 / r
    # R vanishes beyond r_max (Dirichlet); symmetrise -(1/r)(r R')' with sqrt(r_i)
    off = -flux[:-1] / (h**2 * np.sqrt(r[:-1] * r[1:]))
    return float(eigh_tridiagonal(diagonal, off, select="i", select_range=(0, 0), eigvals_only=True)[0])


def relative_energy(omega: float, n_points: int = 20_000, r_max: float | None = None) -> float:
    """Lowest m = 0 eigenvalue of ``-nabla^2 + omega^2 r^2/4 + 1/r`` (Hartree).

    Args:
        omega: trap frequency (Hartree), > 0.
        n_points: grid points of the finer of the two grids used for Richardson extrapolation.
        r_max: box radius (bohr); default 12 oscillator lengths of the relative motion
            (``sqrt(2/omega)``), far beyond where the wavefunction has decayed.
    """
    if not (math.isfinite(omega) and omega > 0):
        raise ValueError(f"omega must be a finite number > 0, got {omega}")
    if n_points < 100:
        raise ValueError(f"n_points must be >= 100, got {n_points}")
    if r_max is None:
        r_max = 12.0 * math.sqrt(2.0 / omega) + 5.0
    coarse = _lowest_eigenvalue(omega, n_points // 2, r_max)
    fine = _lowest_eigenvalue(omega, n_points, r_max)
    return (4.0 * fine - coarse) / 3.0  # Richardson: the error is O(h^2)


def two_electron_energy(omega: float, **kwargs) -> float:
    """Exact singlet ground-state energy of two electrons in the 2D dot (Hartree): E_rel + omega."""
    return relative_energy(omega, **kwargs) + omega


def quasi_exact_energy(degree: int) -> tuple[float, float, int]:
    """Taut's closed-form m = 0 solutions ``R = P(r) exp(-omega r^2/4)`` with P of ``degree`` n.

    Inserting ``P = sum_k c_k r^k`` into H_rel R = E R gives the recursion
    ``(k+1)^2 c_{k+1} = c_k + (omega k - E) c_{k-1}``; it terminates at degree n for
    ``E_rel = (n + 1) omega`` and ``c_{n+1} = 0``, a polynomial condition on omega.

    Returns:
        ``(omega, E, n_nodes)`` for the largest root omega: the total energy ``E_rel + omega``
        and the number of radial nodes of P on r > 0 (0: it is the ground state; degrees 1 and 2
        give omega = 1, E = 3 and omega = 1/6, E = 2/3).
    """
    if degree < 1:
        raise ValueError(f"degree must be >= 1, got {degree}")
    from numpy.polynomial import Polynomial

    # coefficients c_k as polynomials in omega, with E = (degree + 1) omega
    energy = Polynomial([0.0, degree + 1.0])
    c = [Polynomial([1.0]), Polynomial([1.0])]  # c_0 = 1, c_1 = c_0 (k = 0)
    for k in range(1, degree + 1):
        c.append((c[k] + (Polynomial([0.0, float(k)]) - energy) * c[k - 1]) / (k + 1) ** 2)
    roots = c[degree + 1].roots()
    omega = float(max(r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0))
    radial = Polynomial([float(ck(omega)) for ck in c[: degree + 1]]).roots()
    n_nodes = int(sum(1 for r in radial if abs(r.imag) < 1e-12 and r.real > 0))
    return omega, (degree + 2) * omega, n_nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("omega", type=float, nargs="*", default=[0.5, 0.625, 0.7, 0.75, 0.875, 1.0])
    args = parser.parse_args()
    for omega in args.omega:
        print(f"omega = {omega:8.4f}   E = {two_electron_energy(omega):.6f} Ha")


if __name__ == "__main__":
    main()
