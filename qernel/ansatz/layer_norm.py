"""LayerNorm written with mean/mean-of-squares only.

``hk.LayerNorm`` calls ``jnp.var``, which folx's forward Laplacian cannot trace (it fails on the
``_var`` sub-jaxpr); this version computes the same function from elementary operations.
Parameters ``scale`` (ones) and ``offset`` (zeros) as in Haiku.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp

__all__ = ["LayerNorm"]


class LayerNorm(hk.Module):
    """``(h - mean) / sqrt(var + eps) * scale + offset`` over the last axis of ``h`` (..., D)."""

    def __init__(self, eps: float = 1e-5, name: str | None = None) -> None:
        super().__init__(name=name)
        self.eps = eps

    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        width = h.shape[-1]
        scale = hk.get_parameter("scale", (width,), h.dtype, init=jnp.ones)
        offset = hk.get_parameter("offset", (width,), h.dtype, init=jnp.zeros)
        centered = h - jnp.mean(h, axis=-1, keepdims=True)
        variance = jnp.mean(centered * centered, axis=-1, keepdims=True)
        return centered * jax.lax.rsqrt(variance + self.eps) * scale + offset
