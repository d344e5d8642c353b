"""FiLM conditioning on the Hamiltonian parameters (Perez et al., AAAI 2018, arXiv 1709.07871).

A small MLP embeds the *normalised* parameters ``p_hat = (p - center) / scale`` (shape (B, P))
once per walker; each modulation site (two per transformer block: attention half and
feed-forward half) has its own zero-initialised linear head producing ``(gamma, beta)`` so that

    FiLM(h) = (1 + dgamma(p_hat)) * h + dbeta(p_hat),      h: (B, N, D)

is exactly the identity at initialisation for every parameter value.
"""

from __future__ import annotations

import haiku as hk

import jax.numpy as jnp

__all__ = ["FiLMEmbedding", "FiLM"]


class FiLMEmbedding(hk.Module):
    """Shared trunk ``p_hat (B, P) -> e (B, hidden)``: ``n_layers`` dense layers with tanh.

    With ``P = 0`` (nothing carried) the embedding is a learned constant vector per walker.
    """

    def __init__(self, hidden: int = 32, n_layers: int = 2, name: str | None = None) -> None:
        super().__init__(name=name)
        if hidden < 1 or n_layers < 1:
            raise ValueError(f"FiLM hidden (>= 1) and n_layers (>= 1) invalid: {hidden}, {n_layers}")
        self.hidden = int(hidden)
        self.n_layers = int(n_layers)

    def __call__(self, p_hat: jnp.ndarray) -> jnp.ndarray:
        batch = p_hat.shape[0]
        if p_hat.shape[-1] == 0:
            const = hk.get_parameter("constant", (self.hidden,), p_hat.dtype, init=hk.initializers.RandomNormal())
            return jnp.broadcast_to(jnp.tanh(const), (batch, self.hidden))
        e = p_hat
        for i in range(self.n_layers):
            e = jnp.tanh(hk.Linear(self.hidden, name=f"linear_{i}")(e))
        return e


class FiLM(hk.Module):
    """One FiLM site: ``h (B, N, D), e (B, H) -> (1 + dgamma(e))[:, None] * h + dbeta(e)[:, None]``.

    The head is zero-initialised, so the site is the identity at initialisation.
    """

    def __call__(self, h: jnp.ndarray, embedding: jnp.ndarray) -> jnp.ndarray:
        width = h.shape[-1]
        out = hk.Linear(2 * width, w_init=jnp.zeros, b_init=jnp.zeros, name="head")(embedding)
        dgamma, dbeta = jnp.split(out, 2, axis=-1)
        return (1.0 + dgamma)[:, None, :] * h + dbeta[:, None, :]

