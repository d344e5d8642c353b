"""Parameter spaces: which Hamiltonian parameter values the Markov chains carry.

A foundation model is trained on many Hamiltonian parameter values at once (DESIGN.md section 3).
Each Markov chain carries one row ``p`` of P parameter values (in *user* units, e.g. the moiré
depth V in meV) in the last P columns of its sample; the sampler never moves them. A parameter
space decides which rows the chains get:

* :class:`ParameterList` — an explicit finite list of points ``(n_points, P)``;
* :class:`ParameterGrid` — the Cartesian product of per-parameter value lists;
* :class:`UniformRange` — a box ``[low, high]^P`` from which ``n_groups`` points are drawn at
  random (and re-drawn whenever the training driver asks for it).

**Groups.** Chains that carry the same row form a *group*; energies and log-derivatives are
centered within each group and MCMC step sizes are adapted per group. Every space has a fixed
number of groups ``n_groups`` (``n_points`` for finite spaces, ``n_groups`` for random ones)
and a jit-able :meth:`ParameterSpace.group_ids` mapping parameter rows to group indices
``0 .. n_groups - 1``: the index of the grid point for finite spaces; for random spaces the
rank of the row in lexicographic order among the current draw (the draw is sorted, so group
``g`` always holds the ``g``-th smallest value and keeps a comparable MCMC step size across
re-draws).

**Chain layout.** Chains are assigned round-robin: chain ``c`` belongs to group
``c % n_groups``. ``n_chains`` must be a multiple of ``n_groups`` so that every group has the
same number of chains (equal statistical weight, and every device holds every group when the
chains are sharded over devices in contiguous blocks).

**Normalisation.** The network should see O(1) inputs: :meth:`ParameterSpace.normalize`
returns ``(p - center) / scale``; by default ``center`` is the middle of the range and
``scale`` its half-width, so the normalised values lie in ``[-1, 1]``.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..types import Array, ArrayLike, DType, PRNGKey

__all__ = ["ParameterSpace", "ParameterList", "ParameterGrid", "UniformRange", "no_parameters"]


def _names(names) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"parameter names must be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names must be unique, got {names!r}")
    return names


def _finite_vector(values, name: str, size: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = np.full(size, float(array))
    if array.shape != (size,):
        raise ValueError(f"{name} must be a scalar or have one entry per parameter ({size}), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


class ParameterSpace(abc.ABC):
    """Base class: P named Hamiltonian parameters, ``n_groups`` groups of chains.

    Subclasses implement :meth:`draw_group_values`, :meth:`group_ids` and
    :meth:`check_values`. Instances are immutable and hashable (they are static fields of
    NetKet sampler rules).
    """

    def __init__(self, names: Sequence[str] | str, center: ArrayLike, scale: ArrayLike, n_groups: int) -> None:
        self._names = _names(names)
        P = len(self._names)
        self._center = tuple(_finite_vector(center, "center", P).tolist())
        scale = _finite_vector(scale, "scale", P)
        if np.any(scale <= 0):
            raise ValueError(f"scale must be > 0 for every parameter, got {scale.tolist()}")
        self._scale = tuple(scale.tolist())
        if int(n_groups) != n_groups or n_groups < 1:
            raise ValueError(f"n_groups must be a positive integer, got {n_groups}")
        self._n_groups = int(n_groups)

    # -- description ------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Names of the carried parameters, in sample-column order."""
        return self._names

    @property
    def n_parameters(self) -> int:
        """P, the number of carried parameters."""
        return len(self._names)

    @property
    def n_groups(self) -> int:
        """Number of groups of chains that share parameter values."""
        return self._n_groups

    @property
    def center(self) -> np.ndarray:
        """(P,) center subtracted by :meth:`normalize` (user units)."""
        return np.array(self._center, dtype=float)

    @property
    def scale(self) -> np.ndarray:
        """(P,) scale divided out by :meth:`normalize` (user units)."""
        return np.array(self._scale, dtype=float)

    @property
    @abc.abstractmethod
    def is_random(self) -> bool:
        """True if :meth:`draw_group_values` depends on the key (values can be re-drawn)."""

    # -- values -----------------------------------------------------------------------------
    def normalize(self, values: ArrayLike) -> Array:
        """Normalised parameters ``(p - center) / scale`` the network sees; shape (..., P)."""
        dtype = jnp.result_type(values, float)
        return (values - jnp.asarray(self._center, dtype)) / jnp.asarray(self._scale, dtype)

    @abc.abstractmethod
    def draw_group_values(self, key: PRNGKey | None, dtype: DType = float) -> Array:
        """The parameter row of every group, shape (n_groups, P), user units."""

    @abc.abstractmethod
    def group_ids(self, values: ArrayLike) -> Array:
        """Group index (int32, shape (...)) of parameter rows ``values`` (..., P); jit-able."""

    @abc.abstractmethod
    def check_values(self, values: ArrayLike) -> None:
        """Raise ValueError unless the rows ``values`` (n, P) belong to this space."""

    def assign(self, n_chains: int, key: PRNGKey | None = None, dtype: DType = float) -> tuple[Array, Array]:
        """Parameter rows and group indices of ``n_chains`` chains (round-robin over groups).

        Args:
            n_chains: number of chains, a multiple of :attr:`n_groups`.
            key: JAX PRNG key (needed for random spaces, ignored by finite ones).
            dtype: floating dtype of the returned values.

        Returns:
            ``values`` (n_chains, P) in user units and ``group_ids`` (n_chains,) int32.
        """
        self.check_n_chains(n_chains)
        group_values = self.draw_group_values(key, dtype)
        groups = jnp.arange(n_chains, dtype=jnp.int32) % self._n_groups
        return group_values[groups], groups

    # -- validation -------------------------------------------------------------------------
    def check_n_chains(self, n_chains: int) -> None:
        """Raise ValueError unless ``n_chains`` is a positive multiple of :attr:`n_groups`."""
        if int(n_chains) != n_chains or n_chains < 1:
            raise ValueError(f"n_chains must be a positive integer, got {n_chains}")
        if n_chains % self._n_groups != 0:
            raise ValueError(
                f"n_chains={n_chains} must be a multiple of the number of parameter groups "
                f"n_groups={self._n_groups} (every group gets n_chains / n_groups chains); "
                f"e.g. use n_chains={self._n_groups * max(1, round(n_chains / self._n_groups))}"
            )

    def check_hilbert(self, hilbert: Any) -> None:
        """Raise ValueError unless ``hilbert.parameter_names`` equals :attr:`names` (same order)."""
        hilbert_names = tuple(getattr(hilbert, "parameter_names", ()))
        if hilbert_names != self._names:
            raise ValueError(
                f"parameter space names {self._names} do not match the Hilbert space's carried "
                f"parameter_names {hilbert_names} (same names in the same order are required)"
            )

    # -- identity ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _key(self) -> tuple: ...

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))


class ParameterList(ParameterSpace):
    """An explicit list of parameter points; each point is one group.

    Args:
        points: (n_points, P) parameter rows in user units (for P = 1 a flat list is accepted).
        names: the P parameter names (must equal the Hilbert space's ``parameter_names``).
        center, scale: normalisation; default: midpoint and half-width of the points' range
            per parameter (scale 1 where all points share one value).
    """

    def __init__(
        self, points: ArrayLike, names: Sequence[str] | str, *, center: ArrayLike | None = None,
        scale: ArrayLike | None = None,
    ) -> None:
        names = _names(names)
        array = np.asarray(points, dtype=float)
        if array.ndim == 1 and len(names) == 1:
            array = array[:, None]
        if array.ndim == 1 and len(names) == 0 and array.size == 0:
            array = array.reshape(1, 0)
        if array.ndim != 2 or array.shape[1] != len(names) or array.shape[0] < 1:
            raise ValueError(
                f"points must have shape (n_points >= 1, P={len(names)}) for names {names}, got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"parameter points must be finite, got {array.tolist()}")
        if len(np.unique(array, axis=0)) != len(array):
            raise ValueError(f"parameter points must be distinct, got {array.tolist()}")
        self._points = tuple(map(tuple, array.tolist()))
        lo, hi = (array.min(0), array.max(0)) if array.size else (np.zeros(0), np.zeros(0))
        if center is None:
            center = 0.5 * (lo + hi)
        if scale is None:
            scale = np.where(hi > lo, 0.5 * (hi - lo), 1.0)
        super().__init__(names, center, scale, n_groups=len(array))

    @property
    def points(self) -> np.ndarray:
        """(n_points, P) parameter rows; row g is group g."""
        return np.array(self._points, dtype=float).reshape(len(self._points), self.n_parameters)

    @property
    def is_random(self) -> bool:
        return False

    def draw_group_values(self, key: PRNGKey | None = None, dtype: DType = float) -> Array:
        return jnp.asarray(self.points, dtype=dtype)

    def group_ids(self, values: ArrayLike) -> Array:
        """Index of the nearest point (in normalised units) for each row of ``values`` (..., P)."""
        values = jnp.asarray(values)
        if self.n_parameters == 0 or self.n_groups == 1:
            return jnp.zeros(values.shape[:-1], dtype=jnp.int32)
        points = self.normalize(jnp.asarray(self.points, dtype=jnp.result_type(values, float)))
        distance = jnp.sum((self.normalize(values)[..., None, :] - points) ** 2, axis=-1)
        return jnp.argmin(distance, axis=-1).astype(jnp.int32)

    def check_values(self, values: ArrayLike) -> None:
        values = np.asarray(values, dtype=float).reshape(-1, self.n_parameters)
        if not np.all(np.isfinite(values)):
            raise ValueError("parameter values must be finite")
        if self.n_parameters == 0:
            return
        z = (values - self.center) / self.scale
        zp = (self.points - self.center) / self.scale
        distance = np.min(np.max(np.abs(z[:, None, :] - zp[None]), axis=-1), axis=-1)
        bad = distance > 1e-6
        if np.any(bad):
            raise ValueError(
                f"parameter values {values[bad][:3].tolist()} are not points of this {type(self).__name__} "
                f"{self.points.tolist()}; to use other values build a ParameterList of them"
            )

    def _key(self) -> tuple:
        return (self._names, self._points, self._center, self._scale)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(names={self._names}, n_points={self.n_groups})"


class ParameterGrid(ParameterList):
    """Cartesian grid: all combinations of per-parameter value lists (last parameter fastest).

    Args:
        values: one sequence of values per parameter, e.g. ``[[5, 10, 15], [30, 45]]`` for
            names ``("V", "phi")``; for a single parameter a flat list ``[5, 10, 15]`` is accepted.
        names: the parameter names, in sample-column order.
        center, scale: normalisation (see :class:`ParameterList`).
    """

    def __init__(
        self, values: Sequence[ArrayLike] | ArrayLike, names: Sequence[str] | str, *,
        center: ArrayLike | None = None, scale: ArrayLike | None = None,
    ) -> None:
        names = _names(names)
        if len(names) == 1 and len(values) > 0 and np.ndim(values[0]) == 0:
            values = [values]
        if len(values) != len(names):
            raise ValueError(f"values must hold one list per parameter name {names}, got {len(values)} lists")
        axes = []
        for name, axis in zip(names, values):
            axis = np.asarray(axis, dtype=float).ravel()
            if axis.size == 0:
                raise ValueError(f"values of parameter {name!r} must not be empty")
            if len(np.unique(axis)) != axis.size:
                raise ValueError(f"values of parameter {name!r} must be distinct, got {axis.tolist()}")
            axes.append(tuple(axis.tolist()))
        self._axes = tuple(axes)
        points = [list(p) for p in itertools.product(*axes)] if axes else [[]]
        super().__init__(np.asarray(points, dtype=float).reshape(len(points), len(names)), names,
                         center=center, scale=scale)

    @property
    def axes(self) -> tuple[tuple[float, ...], ...]:
        """The per-parameter value lists."""
        return self._axes


def no_parameters() -> ParameterList:
    """The trivial space of a Hamiltonian with no carried parameters (P = 0, one group)."""
    return ParameterList(np.zeros((1, 0)), ())


class UniformRange(ParameterSpace):
    """Parameter values drawn uniformly from the box ``[low, high]^P``, ``n_groups`` at a time.

    Each draw picks ``n_groups`` independent points, sorted lexicographically (group ``g`` holds
    the ``g``-th smallest); chains share values within a group so that energies can be centered
    per group. Re-draw with :func:`qernel.sampler.redraw_parameters`.

    Args:
        low, high: bounds per parameter (scalars broadcast), ``low < high``, finite, user units.
        names: the parameter names, in sample-column order.
        n_groups: number of distinct values per draw (>= 1).
        center, scale: normalisation; default: ``(low + high) / 2`` and ``(high - low) / 2``.
    """

    def __init__(
        self, low: ArrayLike, high: ArrayLike, names: Sequence[str] | str, *, n_groups: int,
        center: ArrayLike | None = None, scale: ArrayLike | None = None,
    ) -> None:
        names = _names(names)
        if not names:
            raise ValueError("UniformRange needs at least one parameter name")
        P = len(names)
        low_v = _finite_vector(low, "low", P)
        high_v = _finite_vector(high, "high", P)
        if np.any(low_v >= high_v):
            raise ValueError(f"need low < high for every parameter of {names}, got low={low_v.tolist()}, "
                             f"high={high_v.tolist()}")
        self._low = tuple(low_v.tolist())
        self._high = tuple(high_v.tolist())
        super().__init__(
            names,
            0.5 * (low_v + high_v) if center is None else center,
            0.5 * (high_v - low_v) if scale is None else scale,
            n_groups=n_groups,
        )

    @property
    def low(self) -> np.ndarray:
        return np.array(self._low, dtype=float)

    @property
    def high(self) -> np.ndarray:
        return np.array(self._high, dtype=float)

    @property
    def is_random(self) -> bool:
        return True

    def draw_group_values(self, key: PRNGKey | None, dtype: DType = float) -> Array:
        if key is None:
            raise ValueError("UniformRange needs a JAX PRNG key to draw parameter values")
        dtype = jax.dtypes.canonicalize_dtype(dtype)
        low, high = jnp.asarray(self._low, dtype), jnp.asarray(self._high, dtype)
        draws = low + (high - low) * jax.random.uniform(key, (self.n_groups, self.n_parameters), dtype)
        # sorted, so that group g keeps the g-th smallest value (and group_ids agrees)
        return jnp.unique(draws, axis=0, size=self.n_groups)

    def group_ids(self, values: ArrayLike) -> Array:
        """Rank of each row among the distinct rows of ``values`` (lexicographic); jit-able.

        ``values`` must contain at most ``n_groups`` distinct rows (true for the chains' values)
        and every group present: a chunk of the batch that misses a group gets shifted ranks, so
        pass the whole batch (or use ``qernel.sampler.chain_group_ids`` / ``sample_group_ids``).
        """
        values = jnp.asarray(values)
        flat = values.reshape(-1, self.n_parameters)
        _, inverse = jnp.unique(flat, axis=0, size=self.n_groups, return_inverse=True)
        return inverse.reshape(values.shape[:-1]).astype(jnp.int32)

    def check_values(self, values: ArrayLike) -> None:
        values = np.asarray(values, dtype=float).reshape(-1, self.n_parameters)
        if not np.all(np.isfinite(values)):
            raise ValueError("parameter values must be finite")
        tol = 1e-6 * (self.high - self.low)
        outside = np.any((values < self.low - tol) | (values > self.high + tol), axis=-1)
        if np.any(outside):
            raise ValueError(f"parameter values {values[outside][:3].tolist()} lie outside "
                             f"[low={self.low.tolist()}, high={self.high.tolist()}]")
        n_distinct = len(np.unique(values, axis=0))
        if n_distinct > self.n_groups:
            raise ValueError(f"got {n_distinct} distinct parameter rows, but this UniformRange has only "
                             f"n_groups={self.n_groups} groups")

    def _key(self) -> tuple:
        return (self._names, self._low, self._high, self.n_groups, self._center, self._scale)

    def __repr__(self) -> str:
        return (f"UniformRange(names={self._names}, low={self._low}, high={self._high}, "
                f"n_groups={self.n_groups})")
