"""Parameter groups of a batch of samples, and mapping per-sample kernels over a batch.

A *group* is the set of Markov chains that carry the same Hamiltonian parameter values
(:mod:`qernel.sampler`); every observable is estimated per group. Samples have the NetKet
layout ``(n_chains, chain_length, 2N + P)`` (:mod:`qernel.geometry.hilbert`): the last ``P``
columns are the carried parameters, constant along each chain.

Results are returned as ``dict[key, result]`` ordered by group, with ``key`` the tuple of the
group's parameter values (user units, in the order of ``hamiltonian.conditioned_on``) rounded to
7 significant digits, so that float32 and float64 samples give the same keys (``(5.0,)`` for
V = 5 meV; ``()`` for a Hamiltonian without carried parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ParameterGroups",
    "groups_from_samples",
    "groups_from_state",
    "check_samples",
    "map_samples",
    "auto_batch_size",
    "records",
]


def _key_value(value: float) -> float:
    return float(f"{float(value):.7g}")


@dataclass(frozen=True, eq=False)
class ParameterGroups:
    """Which chain belongs to which parameter group.

    Attributes:
        names: the P carried parameter names (sample-column order).
        values: (n_groups, P) parameter values of each group, user units.
        chain_ids: (n_chains,) group index of every chain.
    """

    names: tuple[str, ...]
    values: np.ndarray
    chain_ids: np.ndarray

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(self.names):
            raise ValueError(f"values must have shape (n_groups, P={len(self.names)}), got {values.shape}")
        chain_ids = np.asarray(self.chain_ids, dtype=int).reshape(-1)
        if chain_ids.size and (chain_ids.min() < 0 or chain_ids.max() >= len(values)):
            raise ValueError(f"chain_ids must lie in [0, n_groups={len(values)}), got {np.unique(chain_ids)}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "chain_ids", chain_ids)
        keys = [self.key(g) for g in self.present]
        if len(set(keys)) != len(keys):
            raise ValueError(f"two parameter groups share the key (7 significant digits): {keys}")

    @property
    def n_groups(self) -> int:
        return len(self.values)

    @property
    def n_chains(self) -> int:
        return len(self.chain_ids)

    @property
    def present(self) -> list[int]:
        """Indices of the groups that own at least one chain, ascending."""
        return [g for g in range(self.n_groups) if np.any(self.chain_ids == g)]

    def members(self, group: int) -> np.ndarray:
        """(n_chains,) boolean mask of the chains of ``group``."""
        return self.chain_ids == group

    def parameters(self, group: int) -> dict[str, float]:
        """``{name: value}`` of ``group`` (user units)."""
        return {name: float(v) for name, v in zip(self.names, self.values[group])}

    def key(self, group: int) -> tuple[float, ...]:
        """Result key of ``group``: its parameter values rounded to 7 significant digits."""
        return tuple(_key_value(v) for v in self.values[group])


def check_samples(samples, hamiltonian) -> jax.Array:
    """Validate a batch of samples against a Hamiltonian; return it as a JAX array.

    Args:
        samples: (n_chains, chain_length, 2N + P) real array (NetKet's ``vstate.samples``).
        hamiltonian: a :class:`~qernel.hamiltonian.base.ContinuumHamiltonian`.
    """
    samples = jnp.asarray(samples)
    size = hamiltonian.hilbert.size
    if samples.ndim != 3 or samples.shape[-1] != size or samples.shape[0] < 1 or samples.shape[1] < 1:
        raise ValueError(
            f"samples must have shape (n_chains, chain_length, 2N+P={size}) for {hamiltonian!r}, "
            f"got {tuple(samples.shape)}"
        )
    if not jnp.issubdtype(samples.dtype, jnp.floating):
        raise ValueError(f"samples must be real floating point, got dtype {samples.dtype}")
    return samples


def groups_from_samples(samples, hamiltonian) -> ParameterGroups:
    """Groups from the carried-parameter columns: chains with equal rows form a group.

    Groups are sorted lexicographically by their values. Raises ``ValueError`` if a chain's
    parameters change along the chain (qernel samplers never move them).
    """
    samples = np.asarray(check_samples(samples, hamiltonian))
    P = hamiltonian.n_parameters
    names = tuple(hamiltonian.conditioned_on)
    _, params = hamiltonian.hilbert.split(samples)
    if not np.all(params == params[:, :1]):
        raise ValueError("carried parameters must be constant along each chain (samples[c, :, -P:])")
    if P == 0:
        return ParameterGroups(names, np.zeros((1, 0)), np.zeros(samples.shape[0], dtype=int))
    values, chain_ids = np.unique(params[:, 0], axis=0, return_inverse=True)
    return ParameterGroups(names, values, chain_ids.reshape(-1))


def groups_from_state(vstate, hamiltonian) -> ParameterGroups:
    """Groups of an ``MCState``: from its qernel sampler's chain assignment if it has one
    (:func:`qernel.sampler.chain_group_ids`), else from the sample columns."""
    from ..sampler import chain_group_ids, group_values
    from ..sampler.rules import ElectronMoveRule

    if not isinstance(getattr(vstate.sampler, "rule", None), ElectronMoveRule):
        return groups_from_samples(vstate.samples, hamiltonian)
    names = vstate.sampler.rule.parameter_space.names
    if tuple(names) != tuple(hamiltonian.conditioned_on):
        raise ValueError(
            f"the sampler's parameter names {tuple(names)} differ from the Hamiltonian's "
            f"conditioned_on {tuple(hamiltonian.conditioned_on)}"
        )
    return ParameterGroups(names, np.asarray(group_values(vstate)), np.asarray(chain_group_ids(vstate)))


def resolve_groups(samples, hamiltonian, groups: ParameterGroups | None) -> ParameterGroups:
    """``groups`` if given (checked against the batch), else :func:`groups_from_samples`."""
    if groups is None:
        return groups_from_samples(samples, hamiltonian)
    if groups.n_chains != samples.shape[0]:
        raise ValueError(f"groups describe {groups.n_chains} chains, samples have {samples.shape[0]}")
    return groups


def auto_batch_size(floats_per_sample: int, budget: int = 2**24) -> int:
    """Samples per ``lax.map`` batch so that one batch's intermediates stay below ``budget`` floats."""
    return int(np.clip(budget // max(int(floats_per_sample), 1), 1, 4096))


def map_samples(kernel: Callable, samples, *operands, batch_size: int) -> jax.Array:
    """Apply ``kernel(x, *operands)`` (one sample x of shape (D,)) to a batch (..., D), jitted.

    ``kernel`` must be hashable with value semantics (a frozen dataclass) so that the compiled
    function is reused across calls; samples are processed ``batch_size`` at a time
    (``jax.lax.map``), bounding memory for large batches.
    """
    return _map_samples(kernel, samples, tuple(operands), int(batch_size))


@partial(jax.jit, static_argnums=(0, 3))
def _map_samples(kernel, samples, operands, batch_size):
    flat = samples.reshape(-1, samples.shape[-1])
    out = jax.lax.map(lambda x: kernel(x, *operands), flat, batch_size=min(batch_size, flat.shape[0]))
    return out.reshape(samples.shape[:-1] + out.shape[1:])


def records(results: dict[tuple[float, ...], Any]) -> list[dict[str, Any]]:
    """JSON-friendly list ``[result.to_dict(), ...]`` of a ``{key: result}`` mapping (group order)."""
    return [result.to_dict() for result in results.values()]
