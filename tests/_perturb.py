"""Test helper: network parameters with every leaf moved off its initial value.

At initialisation the FiLM heads and the smooth Jastrow weights are exactly zero, so a test run
there cannot see a bug in them (e.g. a FiLM shift that depends on the electron index); the
symmetry and local-energy tests evaluate the model at these parameters instead.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.jit, static_argnames="scale")
def _move(params, key, scale):
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    moved = [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
    unmoved = sum(jnp.sum(m == x) for m, x in zip(moved, leaves))
    return jax.tree_util.tree_unflatten(tree, moved), unmoved


def perturbed(params, seed: int, scale: float = 0.3):
    """``params`` with ``scale * N(0, 1)`` added to every entry of every leaf (same tree and dtypes).

    One compiled program for the whole tree. Raises AssertionError if some entry did not move (so
    a zero-initialised head cannot stay zero).
    """
    moved, unmoved = _move(params, jax.random.PRNGKey(seed), float(scale))
    assert int(unmoved) == 0, f"{int(unmoved)} parameter entries did not move"
    return moved
