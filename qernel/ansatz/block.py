"""Pre-norm transformer block over electron tokens with FiLM in both halves.

    h <- h + Attention(FiLM_att(LayerNorm(h)))
    h <- h + FFN(FiLM_ffn(LayerNorm(h)))          FFN = dense (E = 1) or mixture of experts

Shapes: ``h`` (B, N, D); FiLM embedding (B, H_film) or None; router input (B, P).
"""

from __future__ import annotations

import haiku as hk
import jax.numpy as jnp

from qernel._deprecation import positional_deprecated

from .attention import GroupedQueryAttention
from .film import FiLM
from .layer_norm import LayerNorm
from .moe import MixtureOfExperts

__all__ = ["TransformerBlock"]


class TransformerBlock(hk.Module):
    """One block; returns ``(h, aux)`` with the MoE router aux dict.

    The arguments after ``ffn_hidden`` are keyword-only (by position: deprecated, with a warning).

    Args:
        num_heads, num_kv_heads: query and key/value heads (see :class:`GroupedQueryAttention`).
        ffn_hidden: hidden width of each expert (of the FFN when ``num_experts == 1``).
        num_experts, top_k, routing, gating, dispatch: see :class:`MixtureOfExperts`.
        use_film: apply FiLM after each LayerNorm (needs a FiLM embedding at call time).
    """

    @positional_deprecated("num_experts", "top_k", "routing", "gating", "use_film", "dispatch", "name")
    def __init__(
        self,
        num_heads: int,
        num_kv_heads: int,
        ffn_hidden: int,
        *,
        num_experts: int = 1,
        top_k: int = 1,
        routing: str = "parameters",
        gating: str = "continuous",
        use_film: bool = True,
        dispatch: str = "gather",
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.ffn_hidden = ffn_hidden
        self.num_experts = num_experts
        self.top_k = top_k
        self.routing = routing
        self.gating = gating
        self.use_film = use_film
        self.dispatch = dispatch

    def __call__(self, h: jnp.ndarray, film_embedding: jnp.ndarray | None, router_input: jnp.ndarray):
        width = h.shape[-1]
        if width % self.num_heads:
            raise ValueError(f"width={width} must be divisible by num_heads={self.num_heads}")

        def norm(x, name):
            x = LayerNorm(name=f"norm_{name}")(x)
            if self.use_film:
                x = FiLM(name=f"film_{name}")(x, film_embedding)
            return x

        attention = GroupedQueryAttention(
            self.num_heads, self.num_kv_heads, width // self.num_heads, model_size=width, name="attention"
        )
        h = h + attention(norm(h, "attention"))
        moe = MixtureOfExperts(
            self.num_experts, self.top_k, self.ffn_hidden, routing=self.routing, gating=self.gating,
            dispatch=self.dispatch, name="moe",
        )
        y, aux = moe(norm(h, "ffn"), router_input)
        return h + y, aux
