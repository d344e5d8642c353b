"""Fourier components of the charge density and the crystal order parameter, per group.

    rho(G) = (1/N) sum_i exp(-i G . r_i)          (per sample; complex)

averaged over the samples of a group: ``<rho(G)> = (1/N) integral n(r) exp(-i G.r) d^2 r``, the
Fourier component of the density ``n(r)`` per electron. For a periodic supercell it is meaningful
at the supercell's reciprocal-lattice vectors; the order parameter of the moiré crystal is
``|<rho(g)>|`` at the moiré reciprocal vectors ``g_j`` (first shell,
:func:`qernel.hamiltonian.moire_potential.moire_g_vectors`; ``rho(-g) = rho(g)^*`` so ``g_1..g_3``
suffice), averaged over the shell.

When is it nonzero? A Monte Carlo average over ``|psi|^2`` gives the density of the *state*, not
of a symmetry-broken snapshot. If the Hamiltonian is invariant under continuous translations
(jellium, a trap-free gas in a periodic cell) its ground state is too, ``n(r)`` is flat and
``<rho(G)> = 0`` for every ``G != 0``, even in a Wigner crystal (the crystal floats; MCMC averages
over its position). Crystallinity then shows in the structure factor
(:mod:`qernel.observables.structure_factor`), not here. The moiré potential breaks translation
symmetry down to the moiré lattice and pins the density to it, so ``<rho(g_j)>`` is nonzero for
any ``V != 0``: in the liquid as the linear response to ``V`` (small) and in the crystal as the
localisation on the moiré sites (``|rho(g)| -> exp(-g^2 s^2 / 4)`` for electrons localised in
Gaussians ``|psi|^2 ~ exp(-|r - R|^2 / s^2)``, i.e. -> 1 for point-like electrons). At filling 1
the crystal is commensurate with the potential, so the "transition" is a rapid rise of
``|rho(g)|`` rather than a zero-to-nonzero jump.

Error bars of the modulus use the delta method, linearised per sample:
``|<rho>| = <Re(rho conj(u))>`` with ``u = <rho> / |<rho>|`` the phase of the group mean; the
per-sample series ``Re(rho conj(u))`` goes through ``nk.stats.statistics`` (autocorrelation and
the correlations between shell members included). A finite sample biases ``|<rho>|`` upward by
about the noise floor ``sqrt(pi/4 (err_re^2 + err_im^2))`` (the mean modulus of pure noise), which is
reported alongside: values comparable to it are consistent with zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..geometry.lattice import Lattice, triangular_lattice
from ..hamiltonian.moire_potential import moire_g_vectors
from .density import require_supercell, spin_slice
from .estimates import Estimate, estimate, to_json_value
from .groups import ParameterGroups, auto_batch_size, check_samples, groups_from_state, map_samples, resolve_groups

__all__ = [
    "DensityFourier",
    "OrderParameter",
    "density_fourier_samples",
    "density_fourier",
    "crystal_order_parameter",
    "order_parameter_from_fourier",
    "first_shell",
    "default_order_parameter_vectors",
    "measure_density_fourier",
    "measure_order_parameter",
]


@dataclass(frozen=True)
class _FourierKernel:
    """One sample -> (K, 2) real and imaginary parts of ``(1/n) sum_i exp(-i G . r_i)``."""

    first: int
    count: int

    def __call__(self, x, G):
        positions = x[2 * self.first : 2 * (self.first + self.count)].reshape(self.count, 2)
        phase = positions @ G.T  # (count, K)
        return jnp.stack([jnp.mean(jnp.cos(phase), axis=0), -jnp.mean(jnp.sin(phase), axis=0)], axis=-1)


def _check_vectors(G, name: str = "G") -> np.ndarray:
    G = np.asarray(G, dtype=float)
    if G.ndim == 1 and G.shape == (2,):
        G = G[None]
    if G.ndim != 2 or G.shape[1] != 2 or G.shape[0] < 1:
        raise ValueError(f"{name} must have shape (K >= 1, 2) (Cartesian, internal inverse length), got {G.shape}")
    if not np.all(np.isfinite(G)):
        raise ValueError(f"{name} must be finite")
    return G


def density_fourier_samples(
    samples, hamiltonian, G, *, spin: str | None = None, batch_size: int | None = None
) -> jnp.ndarray:
    """Per-sample ``rho(G) = (1/n) sum_i exp(-i G . r_i)`` over the electrons of ``spin``.

    Args:
        samples: (n_chains, chain_length, 2N + P).
        hamiltonian: the Hamiltonian of the samples (for N and the spin sector).
        G: (K, 2) wavevectors, Cartesian, internal inverse length units.
        spin: None (all electrons), ``"up"`` or ``"down"``.
        batch_size: samples per jitted batch (default automatic).

    Returns:
        complex array (n_chains, chain_length, K) (complex64 for float32 samples).
    """
    samples = check_samples(samples, hamiltonian)
    G = _check_vectors(G)
    first, count = spin_slice(hamiltonian, spin)
    if count == 0:
        raise ValueError(f"there are no {spin} electrons in {hamiltonian!r}")
    if batch_size is None:
        batch_size = auto_batch_size(4 * count * len(G))
    parts = map_samples(_FourierKernel(first, count), samples, jnp.asarray(G, samples.dtype), batch_size=batch_size)
    return parts[..., 0] + 1j * parts[..., 1]


def first_shell(lattice: Lattice) -> np.ndarray:
    """Shortest nonzero reciprocal vectors of ``lattice``, one of each ``+-G`` pair, (K, 2).

    Sorted by angle in [0, pi). For the triangular lattice K = 3, for the square lattice K = 2.
    """
    B = lattice.reciprocal_vectors
    ms = np.arange(-2, 3)
    m = np.stack(np.meshgrid(ms, ms, indexing="ij"), -1).reshape(-1, 2)
    G = (m @ B)[np.any(m != 0, axis=1)]
    length = np.linalg.norm(G, axis=1)
    shell = G[length < length.min() * (1 + 1e-9)]
    angle = np.mod(np.arctan2(shell[:, 1], shell[:, 0]), 2 * np.pi)
    half = shell[(angle < np.pi - 1e-9) | (angle > 2 * np.pi - 1e-9)]
    return half[np.argsort(np.mod(np.arctan2(half[:, 1], half[:, 0]), np.pi))]


def default_order_parameter_vectors(hamiltonian) -> np.ndarray:
    """The moiré ``g_1, g_2, g_3`` (internal units, ``moire_g_vectors(1.0)``) if the supercell is
    built on the unit triangular moiré lattice, else :func:`first_shell` of the supercell's
    primitive lattice."""
    cell = require_supercell(hamiltonian)
    if np.allclose(cell.primitive.vectors, triangular_lattice(1.0).vectors, atol=1e-12):
        return moire_g_vectors(1.0)
    return first_shell(cell.primitive)


@dataclass(frozen=True)
class DensityFourier:
    """``<rho(G)>`` of one group.

    Attributes:
        parameters: the group's carried parameter values (user units).
        G: (K, 2) wavevectors (internal inverse length units).
        real, imag: :class:`Estimate` (K,) of ``Re rho(G)`` and ``Im rho(G)``.
        modulus: :class:`Estimate` (K,) of ``|<rho(G)>|`` (delta method, see module docstring).
        spin: electrons included (None: all).
        n_samples: number of samples of the group.
    """

    parameters: dict[str, float]
    G: np.ndarray
    real: Estimate
    imag: Estimate
    modulus: Estimate
    spin: str | None
    n_samples: int

    @property
    def mean(self) -> np.ndarray:
        """(K,) complex mean ``<rho(G)>``."""
        return np.asarray(self.real.mean) + 1j * np.asarray(self.imag.mean)

    @property
    def noise_floor(self) -> np.ndarray:
        """(K,) expected ``|<rho>|`` if the true value were 0: ``sqrt(pi/4 (err_re^2 + err_im^2))``."""
        return np.sqrt(np.pi / 4 * (np.asarray(self.real.error) ** 2 + np.asarray(self.imag.error) ** 2))

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": dict(self.parameters),
            "G": to_json_value(self.G),
            "real": self.real.to_dict(),
            "imag": self.imag.to_dict(),
            "modulus": self.modulus.to_dict(),
            "noise_floor": to_json_value(self.noise_floor),
            "spin": self.spin,
            "n_samples": self.n_samples,
        }


@dataclass(frozen=True)
class OrderParameter:
    """Shell-averaged ``|<rho(g)>|`` of one group (dimensionless, between 0 and 1).

    Attributes:
        parameters: the group's carried parameter values (user units).
        value: :class:`Estimate` (scalar) of ``(1/K) sum_j |<rho(g_j)>|``.
        noise_floor: the value expected from pure noise (see module docstring).
        components: the per-vector :class:`DensityFourier`.
    """

    parameters: dict[str, float]
    value: Estimate
    noise_floor: float
    components: DensityFourier

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": dict(self.parameters),
            "value": self.value.to_dict(),
            "noise_floor": self.noise_floor,
            "components": self.components.to_dict(),
        }


def _group_fourier(rho, G, parameters, spin, n_samples) -> tuple[DensityFourier, jnp.ndarray]:
    """Estimates for one group's rho (n_chains_g, L, K); also returns the per-sample projections."""
    mean = jnp.mean(rho, axis=(0, 1))
    size = jnp.abs(mean)
    phase = jnp.where(size > 0, mean / jnp.where(size > 0, size, 1), 1)
    projection = jnp.real(rho * jnp.conj(phase))  # per-sample linearisation of |<rho>|
    parts = estimate(jnp.stack([rho.real, rho.imag, projection], axis=-1))  # (K, 3)
    result = DensityFourier(
        parameters=parameters,
        G=np.asarray(G),
        real=parts[:, 0],
        imag=parts[:, 1],
        modulus=parts[:, 2],
        spin=spin,
        n_samples=n_samples,
    )
    return result, projection


def density_fourier(
    samples,
    hamiltonian,
    G,
    *,
    spin: str | None = None,
    groups: ParameterGroups | None = None,
    batch_size: int | None = None,
) -> dict[tuple[float, ...], DensityFourier]:
    """``<rho(G)>`` with error bars at the wavevectors ``G`` (K, 2), per group.

    See :func:`density_fourier_samples` for the arguments; ``groups`` defaults to the groups of
    the carried-parameter columns.
    """
    samples = check_samples(samples, hamiltonian)
    G = _check_vectors(G)
    groups = resolve_groups(samples, hamiltonian, groups)
    rho = density_fourier_samples(samples, hamiltonian, G, spin=spin, batch_size=batch_size)
    results = {}
    for g in groups.present:
        index = np.flatnonzero(groups.members(g))
        results[groups.key(g)], _ = _group_fourier(
            rho[index], G, groups.parameters(g), spin, int(len(index) * samples.shape[1])
        )
    return results


def crystal_order_parameter(
    samples,
    hamiltonian,
    G=None,
    *,
    spin: str | None = None,
    groups: ParameterGroups | None = None,
    batch_size: int | None = None,
) -> dict[tuple[float, ...], OrderParameter]:
    """Shell average of ``|<rho(g)>|`` with error bars, per group.

    Args:
        samples: (n_chains, chain_length, 2N + P).
        hamiltonian: the periodic Hamiltonian of the samples.
        G: (K, 2) shell vectors (internal units); default :func:`default_order_parameter_vectors`
            (the moiré ``g_1, g_2, g_3`` for moiré Hamiltonians).
        spin, groups, batch_size: as in :func:`density_fourier`.

    Returns:
        ``{group key: OrderParameter}``.
    """
    samples = check_samples(samples, hamiltonian)
    G = default_order_parameter_vectors(hamiltonian) if G is None else _check_vectors(G)
    groups = resolve_groups(samples, hamiltonian, groups)
    rho = density_fourier_samples(samples, hamiltonian, G, spin=spin, batch_size=batch_size)
    return order_parameter_from_fourier(rho, G, groups, spin=spin)


def order_parameter_from_fourier(
    rho, G, groups: ParameterGroups, *, spin: str | None = None
) -> dict[tuple[float, ...], OrderParameter]:
    """:func:`crystal_order_parameter` from the per-sample ``rho(G)`` (n_chains, chain_length, K)
    of :func:`density_fourier_samples` (e.g. kept from blocks of samples, :mod:`qernel.scan`)."""
    rho = jnp.asarray(rho)
    results = {}
    for g in groups.present:
        index = np.flatnonzero(groups.members(g))
        components, projection = _group_fourier(
            rho[index], G, groups.parameters(g), spin, int(len(index) * rho.shape[1])
        )
        results[groups.key(g)] = OrderParameter(
            parameters=groups.parameters(g),
            value=estimate(jnp.mean(projection, axis=-1)),
            noise_floor=float(np.mean(components.noise_floor)),
            components=components,
        )
    return results


def measure_density_fourier(vstate, hamiltonian, G, **options) -> dict[tuple[float, ...], DensityFourier]:
    """:func:`density_fourier` of ``vstate.samples`` with the groups of its sampler."""
    return density_fourier(vstate.samples, hamiltonian, G, groups=groups_from_state(vstate, hamiltonian), **options)


def measure_order_parameter(vstate, hamiltonian, G=None, **options) -> dict[tuple[float, ...], OrderParameter]:
    """:func:`crystal_order_parameter` of ``vstate.samples`` with the groups of its sampler."""
    return crystal_order_parameter(
        vstate.samples, hamiltonian, G, groups=groups_from_state(vstate, hamiltonian), **options
    )
