"""Shared type aliases of qernel's public signatures (annotations only; nothing here runs).

The aliases follow NetKet's :mod:`netket.utils.types` (``Array``, ``PRNGKeyT``, ``PyTree``,
``DType``) without importing NetKet, so the lowest layers (:mod:`qernel.geometry`) may use them.

* :data:`Array` -- a JAX or NumPy array (shapes are given in each docstring);
* :data:`ArrayLike` -- anything ``jnp.asarray`` accepts (arrays, nested sequences, scalars);
* :data:`PRNGKey` -- a JAX random key (``jax.random.PRNGKey(seed)`` or ``jax.random.key``);
* :data:`PyTree` -- a nested container of arrays;
* :data:`Params` -- model parameters: a Haiku ``{module: {name: array}}`` mapping, or NetKet's
  ``{"params": ...}`` wrapping of it;
* :data:`DType` -- a dtype, a dtype name such as ``"float32"`` or a scalar type;
* :data:`VariationalState` -- a NetKet ``MCState`` (duck-typed: ``sampler``, ``sampler_state``,
  ``samples``, ``parameters``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import jax
import numpy as np

__all__ = ["Array", "ArrayLike", "PRNGKey", "PyTree", "Params", "DType", "VariationalState"]

#: a JAX or NumPy array (shapes are given in each docstring)
Array: TypeAlias = jax.Array | np.ndarray
#: anything ``jnp.asarray`` accepts: arrays, nested sequences, scalars
ArrayLike: TypeAlias = jax.typing.ArrayLike
#: a JAX random key (``jax.random.PRNGKey(seed)`` or ``jax.random.key(seed)``)
PRNGKey: TypeAlias = jax.Array
#: a nested container (dicts, lists, tuples) of arrays
PyTree: TypeAlias = Any
#: model parameters: Haiku's ``{module: {name: array}}`` or NetKet's ``{"params": ...}``
Params: TypeAlias = Mapping[str, Any]
#: a dtype, a dtype name such as ``"float32"`` or a scalar type
DType: TypeAlias = Any
#: a NetKet ``MCState`` (duck-typed: ``sampler``, ``sampler_state``, ``samples``, ``parameters``)
VariationalState: TypeAlias = Any
