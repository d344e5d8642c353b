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
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import haiku as hk
import jax.numpy as jnp
import numpy as np

from qernel._shim import REMOVAL_VERSION
from qernel.geometry.hilbert import ElectronHilbert
from qernel.types import ArrayLike

from .jastrow import Jastrow
from .orbitals import log_psi_from_orbitals, plane_wave_kpoints, real_plane_wave_basis, reciprocal_lattice_vectors
from .system import resolve_system

__all__ = ["make_slater_jastrow", "SlaterJastrow", "SlaterJastrowConfig", "oscillator_exponents", "slater_basis", "bloch_coefficients"]

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


class SlaterJastrow(hk.Module):
    """The Slater-Jastrow baseline as a Haiku module: ``SlaterJastrow(config, hilbert, ...)(x)``.

    Call with samples ``x`` (..., 2N + P); returns ``log psi`` (...,) (complex, or real
    ``log|psi|`` with ``config.log_abs_only``); the carried parameters are ignored.
    :func:`make_slater_jastrow` wraps it for NetKet.

    The module is *transparent* (:func:`haiku.transparent`): its parameters live where it is
    called, ``~/coefficients_<spin>_<real|imag>`` (M coefficients per orbital) and ``jastrow/...``
    at the top level of a model, the tree of the baseline before it became a module (checkpoints
    keep loading).

    Args:
        config: the baseline's settings (its ``cusp_coupling``/``length_scale`` are ignored here:
            the builder resolves them into the arguments below).
        hilbert: electrons, spin sector and cell.
        cusp_coupling: Coulomb coupling kappa (internal units) of the Jastrow cusps (>= 0).
        length_scale: oscillator length of the open-boundary basis (internal units, > 0).
        orbital_coefficients: initial coefficients ``{"up": (n_up, M), "down": (n_down, M)}`` in
            the order of :func:`slater_basis` (default ``[1 | 0]``: the M lowest basis functions).
        name: Haiku module name (unused by the parameter tree, see above).
    """

    def __init__(
        self,
        config: SlaterJastrowConfig,
        hilbert: ElectronHilbert,
        *,
        cusp_coupling: float = 0.0,
        length_scale: float = 1.0,
        orbital_coefficients: Mapping[str, ArrayLike] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.n_basis, self.initial = _checked(config, hilbert, cusp_coupling, length_scale, orbital_coefficients)
        self.config, self.hilbert = config, hilbert
        self.cusp_coupling, self.length_scale = float(cusp_coupling), float(length_scale)
        self.basis = slater_basis(hilbert, self.n_basis, config.complex_output, self.length_scale, config.twist)
        self.spins = (("up", 0, hilbert.n_up), ("down", hilbert.n_up, hilbert.n_down))

    @hk.transparent
    def __call__(self, x: ArrayLike) -> jnp.ndarray:
        config, hilbert = self.config, self.hilbert
        dtype = _DTYPES[config.dtype]
        x, batch_shape = hilbert.flatten(jnp.asarray(x))
        x = x.astype(dtype)
        positions, _ = hilbert.split(x)
        blocks = []
        for spin, start, n in self.spins:
            if n == 0:
                continue
            c0 = self.initial[spin]
            c = hk.get_parameter(f"coefficients_{spin}_real", c0.shape, dtype, init=lambda s, d, c0=c0: jnp.asarray(c0.real, d))
            if config.complex_output:
                c = c + 1j * hk.get_parameter(
                    f"coefficients_{spin}_imag", c0.shape, dtype, init=lambda s, d, c0=c0: jnp.asarray(np.imag(c0), d)
                )
            b = self.basis(positions[:, start : start + n])  # (B, n, M)
            blocks.append((b @ c.T)[:, None])  # (B, 1, n_elec, n_orb)
        log_psi = log_psi_from_orbitals(blocks, "log_abs" if config.log_abs_only else "complex")
        jastrow = Jastrow(
            hilbert.n_up, hilbert.n_down, hilbert.supercell, cusp_coupling=self.cusp_coupling,
            length=None if hilbert.is_periodic else self.length_scale, n_smooth=config.jastrow_smooth,
        )
        log_psi = log_psi + jastrow(positions)
        return log_psi.reshape(batch_shape)


def _checked(config, hilbert, cusp_coupling, length_scale, given) -> tuple[int, dict[str, np.ndarray]]:
    """Validate the arguments of :class:`SlaterJastrow`; ``(n_basis, initial)`` with ``initial``
    the ``{spin: (n_sigma, n_basis)}`` coefficients: ``given`` (validated) or ``[1 | 0]``."""
    if not isinstance(config, SlaterJastrowConfig):
        raise TypeError(f"config must be a SlaterJastrowConfig, got {type(config).__name__}")
    if not isinstance(hilbert, ElectronHilbert):
        raise TypeError(f"hilbert must be a qernel ElectronHilbert, got {type(hilbert).__name__}")
    if not cusp_coupling >= 0:
        raise ValueError(f"cusp_coupling must be >= 0, got {cusp_coupling}")
    if not length_scale > 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale}")
    n_max = max(hilbert.n_up, hilbert.n_down)
    n_basis = n_max if config.n_basis is None else int(config.n_basis)
    if n_basis < n_max:
        raise ValueError(f"n_basis must be >= max(n_up, n_down) = {n_max}, got {n_basis}")
    complex_output = config.complex_output
    initial = {}
    for spin, n in (("up", hilbert.n_up), ("down", hilbert.n_down)):
        if n == 0:
            continue
        if given is not None and spin in given:
            c = np.asarray(given[spin])
            if c.shape != (n, n_basis):
                raise ValueError(f"orbital_coefficients[{spin!r}] must have shape ({n}, {n_basis}), got {c.shape}")
            if np.iscomplexobj(c) and not complex_output and np.any(c.imag != 0):
                raise ValueError("complex orbital_coefficients need complex_output=True")
        else:
            c = np.eye(n, n_basis)
        initial[spin] = c
    return n_basis, initial


#: the options of the legacy call ``make_slater_jastrow(system, ...)``, in their old positional order
_LEGACY_OPTIONS = ("cusp_coupling", "n_basis", "complex_output", "dtype", "orbital_coefficients", "jastrow_smooth",
                   "length_scale", "log_abs_only", "twist")


def make_slater_jastrow(
    config: SlaterJastrowConfig | Any,
    system: Any = None,
    parameter_space: Any = None,
    *,
    orbital_coefficients: Mapping[str, ArrayLike] | None = None,
    **legacy_options: Any,
) -> hk.Transformed:
    """Build the Slater-Jastrow baseline, as :func:`~qernel.ansatz.make_qernel` builds QERNEL.

    ``make_slater_jastrow(SlaterJastrowConfig(...), hamiltonian, parameter_space)`` takes the
    Jastrow cusps from ``hamiltonian.cusp_coupling`` and the open-boundary basis length from
    ``hamiltonian.length_scale`` unless the config overrides them. The baseline is not conditioned
    on the carried parameters: ``parameter_space`` is optional and only checked against the
    Hamiltonian's carried names.

    Args:
        config: the baseline's settings.
        system: a Hamiltonian (its ``hilbert``, ``cusp_coupling`` and ``length_scale`` are used,
            see :mod:`qernel.ansatz.system`), or an :class:`ElectronHilbert` (electrons, spin
            sector and cell; then cusp coupling 0 and length 1 unless ``config`` sets them).
        parameter_space: the chains' parameter space (optional; its names must match the
            Hamiltonian's carried parameters).
        orbital_coefficients: optional initial coefficients ``{"up": (n_up, M), "down":
            (n_down, M)}`` (complex allowed when ``config.complex_output``) in the basis order of
            :func:`slater_basis`, e.g. from :func:`bloch_coefficients`.
        legacy_options: *deprecated* form ``make_slater_jastrow(system, cusp_coupling=...,
            n_basis=..., ...)`` (the system first, the fields of :class:`SlaterJastrowConfig` as
            keywords or in their old positional order): still builds the same model, with a
            ``DeprecationWarning``.

    Returns:
        ``hk.Transformed``: ``apply(params, None, x (..., 2N + P)) -> log psi (...,)``.
    """
    if not isinstance(config, SlaterJastrowConfig):
        return _legacy_make_slater_jastrow(config, system, parameter_space, orbital_coefficients, legacy_options)
    if legacy_options:
        raise TypeError(f"make_slater_jastrow: with a SlaterJastrowConfig, set {sorted(legacy_options)} in the config")
    if system is None:
        raise TypeError("make_slater_jastrow: missing the system (a Hamiltonian or an ElectronHilbert)")
    if isinstance(system, ElectronHilbert):
        hilbert, physics = system, {}
        if parameter_space is not None:
            parameter_space.check_hilbert(hilbert)
    else:
        hilbert, _, _, physics = resolve_system(system, parameter_space, conditioned=False, who="make_slater_jastrow")
    cusp_coupling = _first_given(config.cusp_coupling, physics.get("cusp_coupling"), 0.0)
    length_scale = _first_given(config.length_scale, physics.get("length_scale"), 1.0)
    _checked(config, hilbert, cusp_coupling, length_scale, orbital_coefficients)  # validate before tracing

    def forward(x):
        return SlaterJastrow(config, hilbert, cusp_coupling=cusp_coupling, length_scale=length_scale,
                             orbital_coefficients=orbital_coefficients)(x)

    return hk.transform(forward)


def _first_given(*values) -> float:
    return float(next(v for v in values if v is not None))


def _legacy_make_slater_jastrow(system: Any, *rest: Any) -> hk.Transformed:
    """``make_slater_jastrow(system, cusp_coupling=None, n_basis=None, ...)``: the old form."""
    second, third, orbital_coefficients, options = rest
    options = dict(options)
    for name, value in zip(_LEGACY_OPTIONS, (second, third)):  # old positions: (cusp_coupling, n_basis)
        if value is None:
            continue
        if name in options:
            raise TypeError(f"make_slater_jastrow() got multiple values for argument {name!r}")
        options[name] = value
    unknown = sorted(set(options) - set(_LEGACY_OPTIONS))
    if unknown:
        raise TypeError(f"make_slater_jastrow() got unexpected keyword arguments {unknown}")
    if "orbital_coefficients" in options:
        orbital_coefficients = options.pop("orbital_coefficients")
    warnings.warn(
        "qernel.ansatz.make_slater_jastrow(system, ...) with the options as arguments is deprecated and will be "
        f"removed in qernel {REMOVAL_VERSION}: use make_slater_jastrow(SlaterJastrowConfig(...), system)",
        DeprecationWarning, stacklevel=3,
    )
    if "twist" in options and options["twist"] is not None:
        options["twist"] = tuple(options["twist"])
    config = SlaterJastrowConfig(**options)
    return make_slater_jastrow(config, system, orbital_coefficients=orbital_coefficients)
