"""NetKet continuous operators for qernel Hamiltonians.

* :class:`KineticEnergy`: ``-1/2 sum_i nabla_i^2`` acting on the electron coordinates only
  (never on the carried Hamiltonian parameters), by folx's forward Laplacian:
  ``E_kin(x) = -1/2 [lap log psi + (grad log psi)^2]``, one forward pass per sample instead of
  the ``2N`` Hessian-vector products of ``nk.operator.KineticEnergy``. (That operator is also
  wrong on parameter-carrying samples: it differentiates the parameter columns too.)
  The QERNEL ansatz marks its costly composite operations (GELU, the attention core, the
  Jastrow pair sum) with folx rules (:mod:`qernel.ansatz.fused`) that this pass picks up;
  ``benchmarks/kinetic.py`` measures the local energy against NetKet's operator (about 9x, 6x
  and 5x faster for N = 16, 36, 64 on one CPU core, with ~8x less memory). Jacobians are
  propagated dense (``sparsity_threshold=0``): attention couples all electrons after the first
  block and the fused rules produce dense Jacobians, so folx's sparse mode measured no faster.
* :class:`PotentialEnergy`: one-body potential, interaction, or both, read from the sample.
* :class:`LocalEnergy`: the whole Hamiltonian in one kernel (one pass over the samples).

All energies are in the Hamiltonian's internal energy unit (:mod:`qernel.units`); multiply by
``hamiltonian.energy_unit`` for user units (meV for moiré systems).

The kernels accept a single sample ``(2N + P,)`` or a batch ``(..., 2N + P)``: NetKet calls them
on a batch, or on single samples inside ``vmap_chunked`` when ``chunk_size`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

import folx
import jax
import jax.numpy as jnp
from netket.operator import ContinuousOperator
from netket.utils import struct

from ..geometry.hilbert import ElectronHilbert, join_sample, split_sample

__all__ = ["KineticEnergy", "PotentialEnergy", "LocalEnergy", "local_kinetic_energy"]


class HamiltonianLike(Protocol):
    """What the operators need of a Hamiltonian (a :class:`~qernel.hamiltonian.ContinuumHamiltonian`).

    Spelled out here so that this module does not import :mod:`.base` (which imports this module
    to build its operators): no import cycle, not even one for annotations.
    """

    hilbert: ElectronHilbert
    n_electrons: int

    def potential_from_sample(self, x, part: str = "total"): ...


def local_kinetic_energy(logpsi: Callable, params, x, n_electrons: int):
    """Local kinetic energy ``-1/2 [lap_r log psi + (grad_r log psi)^2]`` of one sample.

    Args:
        logpsi: ``logpsi(params, x)`` for a batch ``x`` of shape (B, 2N + P); real or complex.
        params: variational parameters.
        x: one sample, shape (2N + P,).
        n_electrons: N; only the first 2N entries of ``x`` are differentiated.

    Returns:
        Scalar (complex if ``logpsi`` is complex), internal energy units.
    """
    positions, carried = split_sample(x, n_electrons)

    def logpsi_of_positions(r):  # r: flat (2N,) coordinates
        return logpsi(params, join_sample(r.reshape(n_electrons, 2), carried)[None, :])[0]

    result = folx.forward_laplacian(logpsi_of_positions, sparsity_threshold=0)(positions.reshape(-1))
    gradient = result.jacobian.dense_array
    return -0.5 * (result.laplacian + jnp.sum(gradient * gradient))


def _map_samples(kernel_single, x):
    """Apply a single-sample kernel to x of shape (2N+P,) or (..., 2N+P)."""
    if x.ndim == 1:
        return kernel_single(x)
    flat = x.reshape(-1, x.shape[-1])
    return jax.vmap(kernel_single)(flat).reshape(x.shape[:-1])


class KineticEnergy(ContinuousOperator):
    """Kinetic energy ``-1/2 sum_i nabla_i^2`` on the electron coordinates (forward Laplacian).

    Args:
        hilbert: the :class:`~qernel.geometry.hilbert.ElectronHilbert` of the samples.
        dtype: dtype of the expectation values.
    """

    def __init__(self, hilbert: ElectronHilbert, dtype=None) -> None:
        if not isinstance(hilbert, ElectronHilbert):
            raise TypeError(f"hilbert must be an ElectronHilbert, got {type(hilbert).__name__}")
        super().__init__(hilbert, dtype)

    @property
    def is_hermitian(self) -> bool:
        return True

    def _expect_kernel(self, logpsi: Callable, params, x):
        n = self.hilbert.n_electrons
        return _map_samples(lambda xi: local_kinetic_energy(logpsi, params, xi, n), x)

    @struct.property_cached(pytree_ignore=True)
    def _attrs(self) -> tuple[Hashable, ...]:
        return (self.hilbert, self.dtype)

    def __repr__(self) -> str:
        return f"qernel.hamiltonian.KineticEnergy({self.hilbert})"


_PARTS = ("total", "one_body", "interaction")


def _potential_function(hamiltonian: HamiltonianLike, part: str) -> Callable:
    if part not in _PARTS:
        raise ValueError(f"part must be one of {_PARTS}, got {part!r}")

    def potential(x):
        return hamiltonian.potential_from_sample(x, part)

    return potential


class PotentialEnergy(ContinuousOperator):
    """Potential energy of a qernel Hamiltonian read from each sample (positions and parameters).

    Args:
        hamiltonian: a :class:`~qernel.hamiltonian.base.ContinuumHamiltonian`.
        part: ``"total"`` (one-body + interaction), ``"one_body"`` or ``"interaction"``.
    """

    _hamiltonian: object = struct.static_field()
    _part: str = struct.static_field()

    def __init__(self, hamiltonian: HamiltonianLike, part: str = "total", dtype=None) -> None:
        if part not in _PARTS:
            raise ValueError(f"part must be one of {_PARTS}, got {part!r}")
        self._hamiltonian = hamiltonian
        self._part = part
        super().__init__(hamiltonian.hilbert, dtype)

    @property
    def is_hermitian(self) -> bool:
        return True

    def _expect_kernel(self, logpsi: Callable, params, x):
        return _map_samples(_potential_function(self._hamiltonian, self._part), x)

    @struct.property_cached(pytree_ignore=True)
    def _attrs(self) -> tuple[Hashable, ...]:
        return (self.hilbert, id(self._hamiltonian), self._part, self.dtype)

    def __repr__(self) -> str:
        return f"qernel.hamiltonian.PotentialEnergy({type(self._hamiltonian).__name__}, part={self._part!r})"


class LocalEnergy(ContinuousOperator):
    """The full Hamiltonian ``T + U + W`` of a qernel Hamiltonian, evaluated in one kernel.

    Args:
        hamiltonian: a :class:`~qernel.hamiltonian.base.ContinuumHamiltonian`.
    """

    _hamiltonian: object = struct.static_field()

    def __init__(self, hamiltonian: HamiltonianLike, dtype=None) -> None:
        self._hamiltonian = hamiltonian
        super().__init__(hamiltonian.hilbert, dtype)

    @property
    def hamiltonian(self) -> HamiltonianLike:
        return self._hamiltonian

    @property
    def is_hermitian(self) -> bool:
        return True

    def _expect_kernel(self, logpsi: Callable, params, x):
        n = self._hamiltonian.n_electrons
        potential = _potential_function(self._hamiltonian, "total")

        def local_energy(xi):
            return local_kinetic_energy(logpsi, params, xi, n) + potential(xi)

        return _map_samples(local_energy, x)

    @struct.property_cached(pytree_ignore=True)
    def _attrs(self) -> tuple[Hashable, ...]:
        return (self.hilbert, id(self._hamiltonian), self.dtype)

    def __repr__(self) -> str:
        return f"qernel.hamiltonian.LocalEnergy({self._hamiltonian!r})"
