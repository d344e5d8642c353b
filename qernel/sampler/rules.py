"""NetKet Metropolis rules for :class:`~qernel.geometry.hilbert.ElectronHilbert` samples.

Samples are rows ``[r_1x, r_1y, ..., r_Nx, r_Ny, p_1, ..., p_P]`` (positions Cartesian in
internal length units, ``p`` the carried Hamiltonian parameters in user units). The rules here

* move only the electron columns and copy the parameter columns bit for bit;
* wrap moved electrons into the supercell parallelogram with ``Supercell.wrap`` (open
  boundaries when ``hilbert.supercell is None``); a Gaussian step wrapped onto the torus is
  still a symmetric proposal, so no Hastings correction is needed;
* draw the step from an isotropic Gaussian whose width ``sigma`` is **per chain** (an array of
  shape (n_chains,) in the rule state), so that every parameter group can have its own width
  (adapted by :func:`qernel.sampler.adapt_step_sizes`).

The rule state (:class:`ElectronRuleState`) also holds the authoritative copy of every chain's
parameter row and group index, and the acceptance counters accumulated since the last step-size
adaptation. It lives in ``MetropolisSamplerState.rule_state`` and survives ``sampler.reset``
(and hence every ``MCState.sample()``), because :meth:`ElectronMoveRule.reset` keeps it.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct as flax_struct
from netket.sampler.rules import MetropolisRule
from netket.utils import struct

from ..geometry.hilbert import ElectronHilbert
from .parameter_space import ParameterSpace

__all__ = ["ElectronRuleState", "ElectronMoveRule", "GaussianElectronRule", "SingleElectronRule"]


@flax_struct.dataclass
class ElectronRuleState:
    """State of an :class:`ElectronMoveRule` (a pytree; flax-serialisable for checkpoints).

    Attributes:
        sigma: (n_chains,) Gaussian step width per chain, internal length units.
        values: (n_chains, P) parameter row each chain carries, user units.
        group_ids: (n_chains,) int32 group index of each chain (0 .. n_groups - 1).
        accepted_offset: (n_chains,) accepted moves since the last step-size adaptation that
            are no longer in the sampler's ``n_accepted_proc`` counter (which ``reset`` zeroes);
            may be negative right after an adaptation (see
            :func:`qernel.sampler.acceptance_since_adaptation`).
        steps_offset: () the same for ``n_steps_proc`` (moves summed over chains).
    """

    sigma: jax.Array
    values: jax.Array
    group_ids: jax.Array
    accepted_offset: jax.Array
    steps_offset: jax.Array


class ElectronMoveRule(MetropolisRule):
    """Base rule: electron moves of per-chain width, parameter columns untouched.

    Args:
        parameter_space: assigns the parameter rows to the chains (its names must equal the
            Hilbert space's ``parameter_names``).
        initial_sigma: initial Gaussian step width (internal length units, > 0), same for all
            chains.
        init_width: for open boundaries, the standard deviation (internal length units, > 0) of
            the Gaussian blob the initial positions are drawn from; periodic systems start
            uniformly in the supercell.
    """

    parameter_space: ParameterSpace = struct.field(pytree_node=False)
    initial_sigma: float = struct.field(pytree_node=False)
    init_width: float = struct.field(pytree_node=False)

    def __init__(self, parameter_space: ParameterSpace, initial_sigma: float, init_width: float = 1.0) -> None:
        if not isinstance(parameter_space, ParameterSpace):
            raise TypeError(f"parameter_space must be a qernel ParameterSpace, got {type(parameter_space).__name__}")
        for name, value in (("initial_sigma", initial_sigma), ("init_width", init_width)):
            if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self.parameter_space = parameter_space
        self.initial_sigma = float(initial_sigma)
        self.init_width = float(init_width)

    # -- helpers -----------------------------------------------------------------------------
    def check_hilbert(self, hilbert: Any) -> None:
        """Raise unless ``hilbert`` is an ElectronHilbert whose parameters match the space."""
        if not isinstance(hilbert, ElectronHilbert):
            raise TypeError(f"{type(self).__name__} needs a qernel ElectronHilbert, got {type(hilbert).__name__}")
        self.parameter_space.check_hilbert(hilbert)

    @staticmethod
    def _wrap(hilbert: ElectronHilbert, positions):
        return positions if hilbert.supercell is None else hilbert.supercell.wrap(positions)

    # -- MetropolisRule interface ------------------------------------------------------------
    def init_state(self, sampler, machine, params, key):
        self.check_hilbert(sampler.hilbert)
        n_chains = sampler.n_batches
        dtype = sampler.dtype
        values, groups = self.parameter_space.assign(n_chains, key, dtype=dtype)
        return ElectronRuleState(
            sigma=jnp.full((n_chains,), self.initial_sigma, dtype=dtype),
            values=values,
            group_ids=groups,
            accepted_offset=jnp.zeros((n_chains,), dtype=int),
            steps_offset=jnp.zeros((), dtype=int),
        )

    def reset(self, sampler, machine, params, sampler_state):
        # ``sampler.reset`` is about to zero the acceptance counters: bank them, so that the
        # acceptance since the last adaptation stays available across ``MCState.sample()`` calls.
        rs = sampler_state.rule_state
        return rs.replace(
            accepted_offset=rs.accepted_offset + sampler_state.n_accepted_proc,
            steps_offset=rs.steps_offset + sampler_state.n_steps_proc,
        )

    def random_state(self, sampler, machine, params, sampler_state, key):
        hilbert = sampler.hilbert
        n_chains, n_el, dtype = sampler.n_batches, hilbert.n_electrons, sampler.dtype
        if hilbert.supercell is None:
            positions = self.init_width * jax.random.normal(key, (n_chains, n_el, 2), dtype)
        else:
            fractional = jax.random.uniform(key, (n_chains, n_el, 2), dtype)
            positions = hilbert.supercell.wrap(hilbert.supercell.to_cartesian(fractional))
        return hilbert.join(positions, sampler_state.rule_state.values.astype(dtype))

    def _step(self, key, sigma, positions):
        """Displacements (n_chains, N, 2) and the mask (n_chains, N, 1) of moved electrons."""
        raise NotImplementedError

    def transition(self, sampler, machine, parameters, state, key, r):
        if jnp.issubdtype(r.dtype, jnp.complexfloating):
            raise TypeError(f"{type(self).__name__} needs real-valued samples, got dtype {r.dtype}")
        hilbert = sampler.hilbert
        positions, values = hilbert.split(r)
        sigma = state.rule_state.sigma.astype(r.dtype)
        step, moved = self._step(key, sigma, positions)
        # only moved electrons are wrapped: the others keep their coordinates bit for bit
        new = jnp.where(moved, self._wrap(hilbert, positions + step), positions)
        return hilbert.join(new, values), None


class GaussianElectronRule(ElectronMoveRule):
    """All-electron move: every electron is displaced by an independent N(0, sigma_c^2 I_2) step.

    One Metropolis step costs one wavefunction evaluation; the optimal width shrinks like
    1 / sqrt(N). Use ``sweep_size`` of a few steps per sample.
    """

    def _step(self, key, sigma, positions):
        step = jax.random.normal(key, positions.shape, positions.dtype) * sigma[:, None, None]
        return step, jnp.ones(positions.shape[:-1] + (1,), dtype=bool)

    def __repr__(self) -> str:
        return f"GaussianElectronRule(initial_sigma={self.initial_sigma}, space={self.parameter_space})"


class SingleElectronRule(ElectronMoveRule):
    """Single-electron move: one electron, chosen uniformly per chain, gets an N(0, sigma_c^2 I_2) step.

    Each step re-evaluates the full wavefunction (no fast determinant updates), so a sweep of
    ``sweep_size ~ N`` steps costs N evaluations; useful when all-electron moves must be tiny.
    """

    def _step(self, key, sigma, positions):
        key_which, key_step = jax.random.split(key)
        n_chains, n_el = positions.shape[:2]
        which = jax.random.randint(key_which, (n_chains,), 0, n_el)
        moved = (jnp.arange(n_el)[None, :] == which[:, None])[..., None]
        step = jax.random.normal(key_step, positions.shape, positions.dtype) * sigma[:, None, None]
        return jnp.where(moved, step, 0), moved

    def __repr__(self) -> str:
        return f"SingleElectronRule(initial_sigma={self.initial_sigma}, space={self.parameter_space})"
