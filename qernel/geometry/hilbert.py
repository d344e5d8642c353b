"""Hilbert space of N electrons in 2D whose samples carry Hamiltonian parameters.

Sample layout (DESIGN.md section 3), one row of length ``2 N + P``::

    x = [r_1x, r_1y, r_2x, r_2y, ..., r_Nx, r_Ny, p_1, ..., p_P]

* electron positions ``r_i`` are Cartesian, in the Hamiltonian's *internal* length unit
  (see :mod:`qernel.units`), inside the supercell parallelogram for periodic systems;
* the first ``n_up`` electrons are spin up, the remaining ``n_down`` spin down;
* ``p`` are the values of the Hamiltonian parameters the model is conditioned on, in *user*
  units (e.g. the moiré depth ``V`` in meV). Samplers never move them; the kinetic operator
  never differentiates them; potentials read them from the sample.

Cartesian coordinates (not fractional) are used so that the Laplacian is the plain sum of
second derivatives for any cell shape; qernel's own Metropolis rules wrap with the lattice.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from netket.experimental.hilbert import ContinuousHilbert

from .lattice import Supercell

__all__ = ["ElectronHilbert", "split_sample", "join_sample"]


class ElectronHilbert(ContinuousHilbert):
    """N electrons in 2D (periodic supercell or open space) plus P carried Hamiltonian parameters.

    Args:
        n_up: number of spin-up electrons (listed first in the sample).
        n_down: number of spin-down electrons.
        supercell: periodic cell in internal length units, or ``None`` for open boundaries.
        parameter_names: names of the carried Hamiltonian parameters (may be empty).
    """

    def __init__(
        self,
        n_up: int,
        n_down: int,
        supercell: Supercell | None,
        parameter_names: tuple[str, ...] = (),
    ) -> None:
        for name, value in (("n_up", n_up), ("n_down", n_down)):
            if int(value) != value or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value}")
        if n_up + n_down <= 0:
            raise ValueError(f"number of electrons N = n_up + n_down must be > 0, got {n_up + n_down}")
        self._n_up = int(n_up)
        self._n_down = int(n_down)
        self._supercell = supercell
        self._parameter_names = tuple(parameter_names)
        if supercell is not None:
            extent = tuple(float(x) for x in np.abs(supercell.vectors).sum(0))
        else:
            extent = (float("inf"), float("inf"))
        super().__init__(extent)

    @property
    def size(self) -> int:
        """Length of one sample row, ``2 N + P``."""
        return 2 * self.n_electrons + self.n_parameters

    @property
    def n_up(self) -> int:
        return self._n_up

    @property
    def n_down(self) -> int:
        return self._n_down

    @property
    def n_electrons(self) -> int:
        return self._n_up + self._n_down

    @property
    def n_parameters(self) -> int:
        return len(self._parameter_names)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self._parameter_names

    @property
    def supercell(self) -> Supercell | None:
        return self._supercell

    @property
    def is_periodic(self) -> bool:
        return self._supercell is not None

    # -- the sample layout: the one place that knows where coordinates and parameters are ---------
    def split(self, x):
        """Split sample rows into positions and carried parameters.

        Args:
            x: samples, shape (..., 2N + P) (NumPy or JAX).

        Returns:
            ``(r, p)``: positions (..., N, 2) (internal length units) and carried parameter values
            (..., P) (user units); ``P = 0`` gives an empty last axis.
        """
        if x.shape[-1] != self.size:
            raise ValueError(f"samples must have last dimension 2N + P = {self.size}, got shape {tuple(x.shape)}")
        return split_sample(x, self.n_electrons)

    def flatten(self, x):
        """Sample rows of any leading shape as one batch, for models that work on (B, 2N + P).

        Args:
            x: samples, shape (..., 2N + P) (NumPy or JAX).

        Returns:
            ``(rows, batch_shape)``: ``x`` reshaped to (B, 2N + P) and its leading shape, so that a
            per-row result ``y`` (B,) goes back with ``y.reshape(batch_shape)``.
        """
        if x.shape[-1] != self.size:
            raise ValueError(f"samples must have last dimension 2N + P = {self.size}, got shape {tuple(x.shape)}")
        return x.reshape(-1, self.size), x.shape[:-1]

    def join(self, r, p):
        """Inverse of :meth:`split`: positions (..., N, 2) and parameters (..., P) to rows (..., 2N + P).

        ``p`` is broadcast over the leading axes of ``r`` (one parameter vector (P,) for a batch of
        configurations is allowed); the result has the dtype of ``r``.
        """
        if tuple(r.shape[-2:]) != (self.n_electrons, 2):
            raise ValueError(f"positions must have shape (..., N={self.n_electrons}, 2), got {tuple(r.shape)}")
        if p.shape[-1:] != (self.n_parameters,):
            raise ValueError(f"parameters must have last dimension P={self.n_parameters}, got shape {tuple(p.shape)}")
        return join_sample(r, p)

    @property
    def _attrs(self):
        return (self._n_up, self._n_down, self._supercell, self._parameter_names)

    def __repr__(self) -> str:
        cell = "open" if self._supercell is None else f"supercell {self._supercell.matrix.tolist()}"
        return (
            f"ElectronHilbert(n_up={self._n_up}, n_down={self._n_down}, {cell}, "
            f"parameters={self._parameter_names})"
        )


def split_sample(x, n_electrons: int):
    """Split samples (..., 2N + P) into positions (..., N, 2) and parameters (..., P).

    The function behind :meth:`ElectronHilbert.split` (which also checks the row length); prefer
    ``hilbert.split(x)`` where the Hilbert space is at hand.
    """
    positions = x[..., : 2 * n_electrons].reshape(*x.shape[:-1], n_electrons, 2)
    return positions, x[..., 2 * n_electrons :]


def join_sample(positions, parameters):
    """Inverse of :func:`split_sample`: (..., N, 2) and (..., P) to (..., 2N + P).

    The function behind :meth:`ElectronHilbert.join`; prefer ``hilbert.join(r, p)``.
    """
    flat = positions.reshape(*positions.shape[:-2], -1)
    parameters = jnp.broadcast_to(parameters, (*flat.shape[:-1], parameters.shape[-1]))
    return jnp.concatenate([flat, parameters.astype(flat.dtype)], axis=-1)
