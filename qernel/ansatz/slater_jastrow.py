"""Slater-Jastrow baseline: one determinant per spin of learnable single-particle orbitals.

Orbital ``j`` of spin ``sigma`` is ``phi_j(r) = sum_m C^sigma_jm b_m(r)`` over a fixed basis:

* periodic cell, complex: plane waves ``b_m = exp(i k_m . r)``, ``k_m`` the ``M`` shortest
  supercell reciprocal-lattice vectors (:func:`~qernel.ansatz.orbitals.plane_wave_kpoints`,
  plus an optional twist); real: ``1, cos(G.r), sin(G.r)`` (:func:`real_plane_wave_basis`);
* open boundaries: Cartesian oscillator functions ``x^a y^b exp(-|r|^2 / (2 l^2))`` ordered by
  shell ``a + b`` (then ``a`` descending); for ``l = 1/sqrt(omega)`` the first ``n`` span the
  lowest Fock-Darwin shells (exact non-interacting trap orbitals for closed shells).

At initialisation ``C = [1 | 0]`` (the ``n_sigma`` lowest basis functions), so with
``cusp_coupling = 0`` the model is exactly the plane-wave (free-electron) Slater determinant,
the non-interacting ground state for closed shells. Bloch orbitals of a periodic potential are
the special case ``C = `` plane-wave coefficients of the occupied bands, which can be passed as
``orbital_coefficients`` (e.g. from a plane-wave band solver on the same k-list). The Jastrow is
:class:`~qernel.ansatz.jastrow.Jastrow` (cusp term plus zero-initialised smooth part). The
baseline ignores the carried Hamiltonian parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import haiku as hk
import jax.numpy as jnp
import numpy as np

from qernel.geometry.hilbert import ElectronHilbert

from .jastrow import Jastrow
from .orbitals import log_psi_from_orbitals, plane_wave_kpoints, real_plane_wave_basis, reciprocal_lattice_vectors
from .system import resolve_system

__all__ = ["make_slater_jastrow", "SlaterJastrowConfig", "oscillator_exponents", "slater_basis", "bloch_coefficients"]

_DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


@dataclass(frozen=True)
class SlaterJastrowConfig:
    """Settings of the Slater-Jastrow baseline (``[ansatz] kind = "slater_jastrow"``); the keyword
    arguments of :func:`make_slater_jastrow` other than the system and initial coefficients.

    Attributes:
        n_basis: basis functions per spin (None: ``max(n_up, n_down)``).
        complex_output: complex coefficients and basis (else real).
        dtype: ``"float32"`` or ``"float64"``.
        jastrow_smooth: smooth Jastrow functions per spin channel (>= 0).
        log_abs_only: with real orbitals return the real ``log|psi|``.
        twist: boundary twist for complex plane waves (fractional reciprocal units) or None.
        cusp_coupling: override of the Hamiltonian's ``cusp_coupling`` (>= 0; 0: no cusp term,
            an exact Slater determinant at initialisation); None: the Hamiltonian's.
        length_scale: override of the Hamiltonian's ``length_scale`` (> 0); None: the Hamiltonian's.
    """

    n_basis: int | None = None
    complex_output: bool = True
    dtype: str = "float64"
    jastrow_smooth: int = 8
    log_abs_only: bool = False
    twist: tuple[float, float] | None = None
    cusp_coupling: float | None = None
    length_scale: float | None = None

    def __post_init__(self) -> None:
        if self.n_basis is not None and not (isinstance(self.n_basis, (int, np.integer)) and self.n_basis >= 1):
            raise ValueError(f"SlaterJastrowConfig.n_basis must be an integer >= 1 or None, got {self.n_basis!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"SlaterJastrowConfig.dtype must be one of {tuple(_DTYPES)}, got {self.dtype!r}")
        if self.jastrow_smooth < 0:
            raise ValueError(f"SlaterJastrowConfig.jastrow_smooth must be >= 0, got {self.jastrow_smooth}")
        if self.log_abs_only and self.complex_output:
            raise ValueError("SlaterJastrowConfig.log_abs_only=True needs complex_output=False (real orbitals)")
        if self.cusp_coupling is not None and not self.cusp_coupling >= 0:
            raise ValueError(f"SlaterJastrowConfig.cusp_coupling must be >= 0, got {self.cusp_coupling}")
        if self.length_scale is not None and not self.length_scale > 0:
            raise ValueError(f"SlaterJastrowConfig.length_scale must be > 0, got {self.length_scale}")

    def replace(self, **changes) -> "SlaterJastrowConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def oscillator_exponents(n: int) -> np.ndarray:
    """Exponents ``(a, b)`` of the first ``n`` Cartesian oscillator functions, shape (n, 2)."""
    pairs = []
    shell = 0
    while len(pairs) < n:
        pairs += [(a, shell - a) for a in range(shell, -1, -1)]
        shell += 1
    return np.array(pairs[:n])


def slater_basis(hilbert: ElectronHilbert, n_basis: int, complex_output: bool, length_scale: float = 1.0, twist=None):
    """Basis functions ``positions (..., 2) -> (..., n_basis)`` used by :func:`make_slater_jastrow`."""
    if hilbert.is_periodic:
        if complex_output:
            k = plane_wave_kpoints(hilbert.supercell, n_basis, twist)

            def basis(r):
                return jnp.exp(1j * (r @ jnp.asarray(k.T, r.dtype)))

        else:
            if twist is not None:
                raise ValueError("a twist needs complex_output=True")
            g, phase = real_plane_wave_basis(hilbert.supercell, n_basis)

            def basis(r):
                return jnp.cos(r @ jnp.asarray(g.T, r.dtype) - jnp.asarray(phase, r.dtype))

        return basis
    exponents = oscillator_exponents(n_basis)

    def basis(r):
        u = r / length_scale
        poly = jnp.prod(u[..., None, :] ** jnp.asarray(exponents, r.dtype), axis=-1)
        return poly * jnp.exp(-0.5 * jnp.sum(u**2, axis=-1, keepdims=True))

    return basis


def bloch_coefficients(orbitals: Mapping[str, object], supercell, tolerance: float = 1e-12):
    """Coefficients of Bloch orbitals in the plane-wave basis of :func:`make_slater_jastrow`.

    Args:
        orbitals: ``{"up": o, "down": o}`` with objects having ``k`` (n, 2), ``G`` (n_G, 2) and
            ``coefficients`` (n, n_G) such that ``phi_n(r) = sum_G c[n, G] exp(i (k_n + G) . r)``
            (e.g. :class:`qernel.hamiltonian.bands.BlochOrbitals`; internal units), with every
            ``k_n + G`` on the supercell reciprocal lattice (commensurate k-points).
        supercell: the periodic cell.
        tolerance: plane waves with ``|c| <= tolerance`` are dropped.

    Returns:
        ``(coefficients, n_basis)``: ``{"up": (n_up, n_basis), "down": ...}`` complex arrays over
        ``plane_wave_kpoints(supercell, n_basis)``, with ``n_basis`` the smallest complete-shell
        basis that holds every kept plane wave. Pass both to :func:`make_slater_jastrow`.
    """
    inverse = np.linalg.inv(supercell.reciprocal_vectors)
    entries = {}
    radius = 0.0
    for spin, orb in orbitals.items():
        c = np.asarray(orb.coefficients)
        if c.shape[0] == 0:
            continue
        q = np.asarray(orb.k)[:, None, :] + np.asarray(orb.G)[None, :, :]  # (n, n_G, 2)
        m = q @ inverse
        if not np.allclose(m, np.round(m), atol=1e-6):
            raise ValueError(f"{spin} orbitals: k + G is not on the supercell reciprocal lattice (k not commensurate)")
        keep = np.abs(c) > tolerance
        radius = max(radius, float(np.max(np.linalg.norm(q[keep], axis=-1))))
        entries[spin] = (np.round(m).astype(int), c, keep)
    basis = reciprocal_lattice_vectors(supercell, 1)
    n_basis = 1
    while np.max(np.linalg.norm(basis, axis=-1)) < radius * (1 - 1e-9):
        n_basis *= 2
        basis = reciprocal_lattice_vectors(supercell, n_basis)
    basis = basis[np.linalg.norm(basis, axis=-1) <= radius * (1 + 1e-9) + 1e-12]
    n_basis = len(basis)
    index = {tuple(v): i for i, v in enumerate(np.round(basis @ inverse).astype(int).tolist())}
    result = {}
    for spin, (m, c, keep) in entries.items():
        out = np.zeros((c.shape[0], n_basis), dtype=complex)
        for n, g in zip(*np.nonzero(keep)):
            out[n, index[tuple(m[n, g])]] += c[n, g]
        result[spin] = out
    return result, n_basis


def make_slater_jastrow(
    system,
    cusp_coupling: float | None = None,
    n_basis: int | None = None,
    complex_output: bool = True,
    dtype: str = "float64",
    orbital_coefficients: Mapping[str, np.ndarray] | None = None,
    jastrow_smooth: int = 8,
    length_scale: float | None = None,
    log_abs_only: bool = False,
    twist=None,
) -> hk.Transformed:
    """Build the Slater-Jastrow baseline.

    Args:
        system: a Hamiltonian (its ``hilbert``, ``cusp_coupling`` and ``length_scale`` are used,
            see :mod:`qernel.ansatz.system`), or an :class:`ElectronHilbert` (electrons, spin
            sector and cell; open boundaries: oscillator basis).
        cusp_coupling: Coulomb coupling kappa (internal units) for the Jastrow cusps; 0 gives
            an exact Slater determinant at initialisation. None: the Hamiltonian's, or 0 for an
            ``ElectronHilbert``.
        n_basis: basis functions per spin (default: ``n_sigma``, i.e. fixed orbitals up to a
            learnable rotation); must be >= max(n_up, n_down).
        complex_output: complex coefficients and basis (log psi complex); else real.
        dtype: ``"float32"`` or ``"float64"``.
        orbital_coefficients: optional initial coefficients ``{"up": (n_up, M), "down":
            (n_down, M)}`` (complex allowed when ``complex_output``) in the basis order of
            :func:`slater_basis`.
        jastrow_smooth: smooth Jastrow functions per spin channel (zero at init).
        length_scale: oscillator length of the open-boundary basis (None: the Hamiltonian's,
            or 1 for an ``ElectronHilbert``).
        log_abs_only: with real orbitals return the real ``log|psi|`` (see :mod:`qernel.ansatz.qernel`).
        twist: boundary twist for complex plane waves.

    Returns:
        ``hk.Transformed``: ``apply(params, None, x (..., 2N + P)) -> log psi (...,)``.
    """
    # the baseline is not conditioned on the carried parameters: no parameter space is needed
    hilbert = system if isinstance(system, ElectronHilbert) else None
    physics = {}
    if hilbert is None:
        hilbert, _, _, physics = resolve_system(system, conditioned=False, who="make_slater_jastrow")
    cusp_coupling = float(next(v for v in (cusp_coupling, physics.get("cusp_coupling"), 0.0) if v is not None))
    length_scale = float(next(v for v in (length_scale, physics.get("length_scale"), 1.0) if v is not None))
    if not cusp_coupling >= 0:
        raise ValueError(f"cusp_coupling must be >= 0, got {cusp_coupling}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {tuple(_DTYPES)}, got {dtype!r}")
    if log_abs_only and complex_output:
        raise ValueError("log_abs_only=True needs complex_output=False")
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale}")
    n_max = max(hilbert.n_up, hilbert.n_down)
    n_basis = n_max if n_basis is None else int(n_basis)
    if n_basis < n_max:
        raise ValueError(f"n_basis must be >= max(n_up, n_down) = {n_max}, got {n_basis}")
    basis_fn = slater_basis(hilbert, n_basis, complex_output, length_scale, twist)
    jdtype = _DTYPES[dtype]
    spins = (("up", 0, hilbert.n_up), ("down", hilbert.n_up, hilbert.n_down))
    initial = {}
    for spin, _, n in spins:
        if n == 0:
            continue
        if orbital_coefficients is not None and spin in orbital_coefficients:
            c = np.asarray(orbital_coefficients[spin])
            if c.shape != (n, n_basis):
                raise ValueError(f"orbital_coefficients[{spin!r}] must have shape ({n}, {n_basis}), got {c.shape}")
            if np.iscomplexobj(c) and not complex_output and np.any(c.imag != 0):
                raise ValueError("complex orbital_coefficients need complex_output=True")
        else:
            c = np.eye(n, n_basis)
        initial[spin] = c

    def forward(x):
        x = jnp.asarray(x)
        if x.shape[-1] != hilbert.size:
            raise ValueError(f"samples must have last dimension 2N + P = {hilbert.size}, got shape {x.shape}")
        batch_shape = x.shape[:-1]
        x = x.reshape(-1, hilbert.size).astype(jdtype)
        positions, _ = hilbert.split(x)
        blocks = []
        for spin, start, n in spins:
            if n == 0:
                continue
            c0 = initial[spin]
            c = hk.get_parameter(f"coefficients_{spin}_real", c0.shape, jdtype, init=lambda s, d, c0=c0: jnp.asarray(c0.real, d))
            if complex_output:
                c = c + 1j * hk.get_parameter(
                    f"coefficients_{spin}_imag", c0.shape, jdtype, init=lambda s, d, c0=c0: jnp.asarray(np.imag(c0), d)
                )
            b = basis_fn(positions[:, start : start + n])  # (B, n, M)
            blocks.append((b @ c.T)[:, None])  # (B, 1, n_elec, n_orb)
        log_psi = log_psi_from_orbitals(blocks, "log_abs" if log_abs_only else "complex")
        jastrow = Jastrow(
            hilbert.n_up, hilbert.n_down, hilbert.supercell, cusp_coupling,
            length=None if hilbert.is_periodic else length_scale, n_smooth=jastrow_smooth,
        )
        log_psi = log_psi + jastrow(positions)
        return log_psi.reshape(batch_shape)

    return hk.transform(forward)
