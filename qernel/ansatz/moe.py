"""Feed-forward layers: dense FFN and a mixture of experts (MoE) with a learned router.

Routing modes (DESIGN.md section 4: psi must stay smooth in the electron coordinates):

* ``"parameters"`` (default): the router reads the *normalised Hamiltonian parameters* of each
  walker, ``p_hat`` (B, P), not the electron features. All electrons of a walker use the same
  ``top_k`` of ``num_experts`` experts with the same gates, which are constant in r, so psi is
  exactly as smooth in r as a dense network. With the default ``dispatch="gather"`` only the
  selected experts are evaluated, so the expert FLOPs are ``top_k / num_experts`` of evaluating
  all of them. Experts can specialise on parameter regimes (liquid vs crystal).
* ``"tokens_soft"``: a per-electron router on the hidden features with dense softmax gates over
  all experts. Gates are C-infinity in r, so the local energy stays correct, but every expert is
  evaluated (no compute saving); requires ``top_k == num_experts``.

Gating of the selected experts (``gating``):

* ``"continuous"`` (default): ``g_i = (exp(l_i) - exp(l_(k+1))) / sum_{j in top-(k+1)} exp(l_j)``
  for the ``k`` largest logits ``l_i`` (``l_(k+1)`` is the (k+1)-th largest). When the router is
  confident (``l_(k+1)`` far below the chosen logits) this is the usual softmax renormalised over
  the chosen k; where two logits cross, the gate of the expert leaving the top-k goes to zero
  continuously, so psi is continuous in the router input (here: the Hamiltonian parameters).
  The gates sum to ``1 - (k + 1) exp(l_(k+1)) / Z`` (< 1 only near routing boundaries); for
  ``k == num_experts`` it is the full softmax. (Gates that sum to exactly one cannot be
  continuous for k = 1: the single gate would have to switch from one expert to another.)
* ``"renormalized"``: the standard softmax over the chosen k (Shazeer et al. 2017; Mixtral). It
  sums to one exactly but jumps where the top-k set changes; use only when the router input is
  constant along everything one differentiates or interpolates.

Dispatch of the parameter-routed experts (``dispatch``; same function, different cost):

* ``"gather"`` (default): gather the k selected experts' weights per walker and apply them;
  FLOPs are ``k / E`` of evaluating every expert, executed as per-walker batched matmuls
  (efficient when a walker has many electrons or on accelerators);
* ``"dense"``: evaluate every expert for every walker in two large matmuls and weight them by
  the (mostly zero) gates; ``E / k`` times the FLOPs, but one big GEMM, which can be faster
  for small systems on CPU (see ``benchmarks/ansatz_cost.py``).

The router statistics are returned as an ``aux`` dict (see :func:`router_statistics`).
"""

from __future__ import annotations

from collections.abc import Callable

import haiku as hk
import jax
import jax.numpy as jnp

from qernel._deprecation import positional_deprecated

from .fused import gelu

__all__ = [
    "FeedForward",
    "MixtureOfExperts",
    "top_k_gates",
    "router_statistics",
    "load_balancing_loss",
    "ROUTING_MODES",
    "GATING_MODES",
    "DISPATCH_MODES",
]

ROUTING_MODES = ("parameters", "tokens_soft")
GATING_MODES = ("continuous", "renormalized")
DISPATCH_MODES = ("gather", "dense")


def top_k_gates(logits: jnp.ndarray, k: int, gating: str = "continuous"):
    """Select the ``k`` largest router logits and their gates.

    Args:
        logits: (..., E) router logits.
        k: number of selected experts, 1 <= k <= E.
        gating: ``"continuous"`` or ``"renormalized"`` (module docstring).

    Returns:
        ``(gates, indices)``, both (..., k): gates of the selected experts (descending logit
        order) and their expert indices.
    """
    n_experts = logits.shape[-1]
    if not 1 <= k <= n_experts:
        raise ValueError(f"top_k must lie in [1, num_experts={n_experts}], got {k}")
    if gating not in GATING_MODES:
        raise ValueError(f"gating must be one of {GATING_MODES}, got {gating!r}")
    n_keep = min(k + 1, n_experts) if gating == "continuous" else k
    # the selection is discrete: take it from constant logits (keeps integer outputs out of
    # autodiff and folx), then read the chosen logits differentiably
    _, indices = jax.lax.top_k(jax.lax.stop_gradient(logits), n_keep)
    values = jnp.take_along_axis(logits, indices, axis=-1)
    shifted = jnp.exp(values - values[..., :1])  # largest first, so shifted[..., 0] == 1
    z = jnp.sum(shifted, axis=-1, keepdims=True)
    if gating == "continuous" and n_keep > k:
        gates = (shifted[..., :k] - shifted[..., k:]) / z
    else:
        gates = shifted[..., :k] / z
    return gates, indices[..., :k]


def _expert_init(fan_in: int):
    return hk.initializers.TruncatedNormal(stddev=1.0 / fan_in**0.5)


def _router_logits(x: jnp.ndarray, num_experts: int) -> jnp.ndarray:
    """Router logits (..., E) from router input (..., R); call inside the MoE module."""
    if x.shape[-1] == 0:  # nothing to route on: learned constant logits
        bias = hk.get_parameter("router_bias", (num_experts,), x.dtype, init=hk.initializers.RandomNormal())
        return jnp.broadcast_to(bias, (*x.shape[:-1], num_experts))
    # random bias breaks the exact tie of all logits at x = 0
    return hk.Linear(num_experts, b_init=hk.initializers.RandomNormal(), name="router")(x)


class FeedForward(hk.Module):
    """Dense FFN ``h (..., D) -> W2 act(W1 h + b1) + b2`` with hidden width ``hidden``."""

    def __init__(self, hidden: int, activation: Callable = gelu, name: str | None = None) -> None:
        super().__init__(name=name)
        if hidden < 1:
            raise ValueError(f"FFN hidden width must be >= 1, got {hidden}")
        self.hidden = int(hidden)
        self.activation = activation

    def __call__(self, h: jnp.ndarray) -> jnp.ndarray:
        width = h.shape[-1]
        y = self.activation(hk.Linear(self.hidden, w_init=_expert_init(width), name="linear_1")(h))
        return hk.Linear(width, w_init=_expert_init(self.hidden), name="linear_2")(y)


class MixtureOfExperts(hk.Module):
    """``E`` experts (each a :class:`FeedForward` of width ``hidden``), a router and top-k gates.

    Parameters: ``w1 (E, D, F)``, ``b1 (E, F)``, ``w2 (E, F, D)``, ``b2 (E, D)`` and, for E > 1,
    the router (``router`` linear layer, or ``router_bias`` (E,) when the router input has no
    features). E = 1 is a dense FFN without router.

    Call ``moe(h, router_input)`` with ``h`` (B, N, D) and ``router_input`` (B, R) (the
    normalised parameters, used in ``"parameters"`` mode). Returns ``(out (B, N, D), aux)`` with
    aux entries (shape (B, E) per walker or (B, N, E) per token):
    ``probs`` (softmax of all router logits), ``gates`` (gate per expert, 0 if not selected),
    ``selected`` (1.0 where the expert was selected).

    ``MixtureOfExperts(num_experts, top_k, hidden, *, routing=..., gating=..., activation=...,
    dispatch=..., name=...)``: the arguments after ``hidden`` are keyword-only (by position:
    deprecated, with a warning).
    """

    @positional_deprecated("routing", "gating", "activation", "dispatch", "name")
    def __init__(
        self,
        num_experts: int,
        top_k: int,
        hidden: int,
        *,
        routing: str = "parameters",
        gating: str = "continuous",
        activation: Callable = gelu,
        dispatch: str = "gather",
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if dispatch not in DISPATCH_MODES:
            raise ValueError(f"dispatch must be one of {DISPATCH_MODES}, got {dispatch!r}")
        self.dispatch = dispatch
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}")
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must lie in [1, num_experts={num_experts}], got {top_k}")
        if routing not in ROUTING_MODES:
            raise ValueError(f"routing must be one of {ROUTING_MODES}, got {routing!r}")
        if gating not in GATING_MODES:
            raise ValueError(f"gating must be one of {GATING_MODES}, got {gating!r}")
        if routing == "tokens_soft" and top_k != num_experts:
            raise ValueError(
                f"routing='tokens_soft' evaluates all experts with softmax gates; set top_k = num_experts "
                f"({num_experts}), got top_k={top_k}"
            )
        if hidden < 1:
            raise ValueError(f"expert hidden width must be >= 1, got {hidden}")
        self.num_experts = int(num_experts)
        self.top_k = int(top_k)
        self.hidden = int(hidden)
        self.routing = routing
        self.gating = gating
        self.activation = activation

    def _expert_params(self, width: int, dtype):
        e, f = self.num_experts, self.hidden
        w1 = hk.get_parameter("w1", (e, width, f), dtype, init=_expert_init(width))
        b1 = hk.get_parameter("b1", (e, f), dtype, init=jnp.zeros)
        w2 = hk.get_parameter("w2", (e, f, width), dtype, init=_expert_init(f))
        b2 = hk.get_parameter("b2", (e, width), dtype, init=jnp.zeros)
        return w1, b1, w2, b2

    def __call__(self, h: jnp.ndarray, router_input: jnp.ndarray | None = None):
        batch, n_tokens, width = h.shape
        w1, b1, w2, b2 = self._expert_params(width, h.dtype)
        if self.num_experts == 1:  # dense FFN: no router, gate 1
            out = self.activation(h @ w1[0] + b1[0]) @ w2[0] + b2[0]
            ones = jnp.ones((batch, 1), h.dtype)
            return out, {"probs": ones, "gates": ones, "selected": ones}
        if self.routing == "tokens_soft":
            logits = _router_logits(h, self.num_experts)  # (B, N, E)
            gates = jax.nn.softmax(logits, axis=-1)
            out = self._all_experts(h, gates, w1, b1, w2, b2)
            aux = {"probs": gates, "gates": gates, "selected": jnp.ones_like(gates)}
            return out, aux

        if router_input is None:
            router_input = jnp.zeros((batch, 0), h.dtype)
        logits = _router_logits(router_input.astype(h.dtype), self.num_experts)  # (B, E)
        gates, idx = top_k_gates(logits, self.top_k, self.gating)  # (B, k)
        one_hot = jax.nn.one_hot(idx, self.num_experts, dtype=h.dtype)  # (B, k, E)
        dense_gates = jnp.einsum("bk,bke->be", gates, one_hot)
        if self.dispatch == "gather":
            # gather only the selected experts of each walker: FLOPs ~ k / E of all experts
            y = self.activation(jnp.einsum("bnd,bkdf->bknf", h, w1[idx]) + b1[idx][:, :, None, :])
            y = jnp.einsum("bknf,bkfd->bknd", y, w2[idx]) + b2[idx][:, :, None, :]
            out = jnp.einsum("bknd,bk->bnd", y, gates)
        else:
            out = self._all_experts(h, dense_gates[:, None, :], w1, b1, w2, b2)
        aux = {
            "probs": jax.nn.softmax(logits, axis=-1),
            "gates": dense_gates,
            "selected": jnp.sum(one_hot, axis=-2),
        }
        return out, aux

    def _all_experts(self, h, gates, w1, b1, w2, b2):
        """``sum_e gates_e expert_e(h)`` evaluating every expert: two large matmuls (K = E F)."""
        y = self.activation(jnp.einsum("bnd,edf->bnef", h, w1) + b1)  # (B, N, E, F)
        return jnp.einsum("bnef,efd->bnd", y * gates[..., None], w2) + gates @ b2


def router_statistics(aux: dict) -> dict:
    """Per-layer router statistics reduced over walkers (and tokens).

    Args:
        aux: the ``aux`` dict returned by ``make_qernel(..., with_aux=True)`` (layer name ->
            MoE aux with (..., E) arrays), or a single MoE aux dict.

    Returns:
        layer name -> dict with (E,) arrays: ``load`` (fraction of routing slots that went to
        each expert; sums to 1), ``importance`` (mean gate), ``probability`` (mean router
        softmax probability).
    """
    if "probs" in aux:
        aux = {"moe": aux}
    stats = {}
    for layer, entry in aux.items():
        e = entry["probs"].shape[-1]
        sel = entry["selected"].reshape(-1, e)
        stats[layer] = {
            "load": jnp.sum(sel, axis=0) / jnp.maximum(jnp.sum(sel), 1.0),
            "importance": jnp.mean(entry["gates"].reshape(-1, e), axis=0),
            "probability": jnp.mean(entry["probs"].reshape(-1, e), axis=0),
        }
    return stats


def load_balancing_loss(aux: dict) -> jnp.ndarray:
    """Switch-Transformer auxiliary loss ``E sum_e load_e * probability_e`` averaged over layers.

    Equals 1 for perfectly uniform routing and grows when experts are unevenly used (Fedus,
    Zoph, Shazeer, JMLR 23 (2022), eq. 4). Differentiable through ``probability``.
    """
    stats = router_statistics(aux)
    losses = [s["load"].shape[0] * jnp.sum(jax.lax.stop_gradient(s["load"]) * s["probability"]) for s in stats.values()]
    return jnp.mean(jnp.stack(losses))
