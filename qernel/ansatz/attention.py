"""Grouped-query self-attention over electron tokens (Ainslie et al., arXiv 2305.13245).

``num_heads`` query heads share ``num_kv_heads`` key/value heads: query head ``h`` reads
key/value head ``h // (num_heads // num_kv_heads)``. ``num_kv_heads == num_heads`` is standard
multi-head attention (MHA), ``num_kv_heads == 1`` multi-query attention (MQA). There is no
positional encoding and the softmax runs over all tokens, so the layer is permutation-
equivariant over electrons. Parameter layout (submodules ``query``, ``key``, ``value``,
``linear``) matches :class:`haiku.MultiHeadAttention`, so for ``num_kv_heads == num_heads`` the
two take the same parameters.
"""

from __future__ import annotations

import haiku as hk
import jax.numpy as jnp

from qernel._deprecation import positional_deprecated

from .fused import attention_core

__all__ = ["GroupedQueryAttention"]


class GroupedQueryAttention(hk.Module):
    """Self-attention ``h (B, N, D) -> (B, N, D)`` with grouped key/value heads.

    The arguments after ``key_size`` are keyword-only (by position: deprecated, with a warning).

    Args:
        num_heads: query heads H (>= 1).
        num_kv_heads: key/value heads G, a divisor of H.
        key_size: per-head dimension of queries/keys/values.
        model_size: output width D (default: the input width).
        w_init: weight initialiser (default: variance scaling 1, fan-in, truncated normal).
    """

    @positional_deprecated("model_size", "w_init", "name")
    def __init__(
        self,
        num_heads: int,
        num_kv_heads: int,
        key_size: int,
        *,
        model_size: int | None = None,
        w_init: hk.initializers.Initializer | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        if num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(
                f"num_kv_heads must be a divisor of num_heads={num_heads} (1..{num_heads}), got {num_kv_heads}"
            )
        if key_size < 1:
            raise ValueError(f"key_size must be >= 1, got {key_size}")
        self.num_heads = int(num_heads)
        self.num_kv_heads = int(num_kv_heads)
        self.key_size = int(key_size)
        self.model_size = model_size
        self.w_init = w_init or hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")

    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        *batch, n_tokens, width = h.shape
        heads, groups, size = self.num_heads, self.num_kv_heads, self.key_size

        def project(n_heads: int, name: str):
            y = hk.Linear(n_heads * size, w_init=self.w_init, name=name)(h)
            return y.reshape(*batch, n_tokens, n_heads, size)

        q = project(heads, "query")  # (B, N, H, K)
        k = project(groups, "key")  # (B, N, G, K)
        v = project(groups, "value")
        # query head h = g * (H // G) + j reads kv head g
        q = q.reshape(*batch, n_tokens, groups, heads // groups, size)
        out = attention_core(q, k, v)  # softmax(q k^T / sqrt(K)) v, with a fused folx rule
        out = out.reshape(*batch, n_tokens, heads * size)
        return hk.Linear(self.model_size or width, w_init=self.w_init, name="linear")(out)
