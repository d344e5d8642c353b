"""Fused ansatz operations with their own forward-Laplacian (folx) rules.

folx's forward Laplacian (used by :mod:`qernel.hamiltonian.operators` for the kinetic energy)
propagates ``(value, Jacobian, Laplacian)`` through every JAX primitive. The Jacobian carries
one row per electron coordinate (2N rows), so a chain of small primitives (the 8 of a GELU, the
6 of a softmax, the ~20 of a Jastrow pair term) materialises 2N-row arrays at every step; that,
not arithmetic, dominates the cost. The operations here are ``jax.jit`` functions with unique
names; folx looks a jitted function's name up in its registry (``folx.register_function``) and
calls the rule registered here instead of tracing the primitives inside. Each rule computes the
same derivatives in closed form with a few large contractions:

* :func:`gelu` (feed-forward activation): folx's elementwise rule applied once to the whole
  function, ``J' = f' J``, ``lap' = f' lap + f'' sum_rows J^2``.
* :func:`attention_core` (``softmax(q k^T / sqrt(K)) v``): product rule for both contractions
  (the logit Jacobian ``[Jq, q] . [k, Jk]`` in one contraction, the cross term
  ``2 sum_rows Jq . Jk`` in another) and the closed-form softmax derivatives.
* :class:`PairSum` (``sum_{i<j} u(r_i - r_j)``, the Jastrow): per-pair gradient and 2x2 Hessian
  of ``u`` by forward-mode AD, chained with the input Jacobian; O(N^2 + N^2 x 2N) instead of
  O(N^2 x 2N x basis size) per intermediate.

Outside folx (forward pass, ``jax.grad``, NetKet's Hessian-based operator) these are ordinary
jitted functions that XLA inlines: the wavefunction and its parameters are unchanged. With
sparse folx Jacobians (``sparsity_threshold > 0``) the attention and pair rules densify their
inputs (their outputs are dense anyway). ``tests/test_operators.py`` checks the rules against a
``jax.hessian`` trace.
"""

from __future__ import annotations

from collections.abc import Callable

import folx
import jax
import jax.numpy as jnp
import numpy as np
from folx.api import FwdJacobian, FwdLaplArray

__all__ = ["gelu", "attention_core", "PairSum"]


def _named_jit(name: str, plain: Callable) -> Callable:
    """``jax.jit`` of ``plain`` under ``name`` (the key folx looks up for a jitted call)."""

    def named(*args):
        return plain(*args)

    named.__name__ = named.__qualname__ = name
    return jax.jit(named)


def _densify(args):
    """Arguments with dense Jacobians of one common row count (sparse ones materialised, padded)."""
    jacobians = [a.jacobian.dense_array if isinstance(a, FwdLaplArray) else None for a in args]
    rows = max(j.shape[0] for j in jacobians if j is not None)
    out = []
    for a, j in zip(args, jacobians):
        if j is not None:
            j = jnp.pad(j, [(0, rows - j.shape[0])] + [(0, 0)] * (j.ndim - 1))
            a = FwdLaplArray(a.x, FwdJacobian(j), a.laplacian)
        out.append(a)
    return tuple(out)


def _register_dense(name: str, plain: Callable, dense_rule: Callable) -> Callable:
    """Jit ``plain`` under ``name`` with the folx rule ``dense_rule``.

    ``dense_rule(*args)`` receives :class:`FwdLaplArray` (dense Jacobians with a common row
    count) or plain arrays and returns a :class:`FwdLaplArray`.
    """
    folx.register_function(name, lambda args, kwargs, sparsity_threshold: dense_rule(*_densify(args)))
    return _named_jit(name, plain)


def _parts(a):
    """``(value, Jacobian (rows, ...) or None, Laplacian or None)`` of an argument."""
    if isinstance(a, FwdLaplArray):
        return a.x, a.jacobian.data, a.laplacian
    return jnp.asarray(a), None, None


# -- GELU ---------------------------------------------------------------------------------------


def _gelu(x):
    return jax.nn.gelu(x)


# folx's elementwise rule (it keeps sparse Jacobians sparse), applied to the whole function
folx.register_function("qernel_fused_gelu", folx.wrap_forward_laplacian(_gelu, in_axes=()))
gelu = _named_jit("qernel_fused_gelu", _gelu)
gelu.__doc__ = "``jax.nn.gelu`` (tanh approximation) with a fused elementwise folx rule."


# -- attention ----------------------------------------------------------------------------------

_LOGITS = "...tgjk,...sgk->...gjts"
_MIX = "...gjts,...sgk->...tgjk"


def _attention_core(q, k, v):
    logits = jnp.einsum(_LOGITS, q, k) / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
    return jnp.einsum(_MIX, jax.nn.softmax(logits, axis=-1), v)


def _bilinear(spec: str, a, b):
    """``(value, Jacobian, Laplacian)`` of ``einsum(spec, a, b)`` by the product rule."""
    ax, aj, al = _parts(a)
    bx, bj, bl = _parts(b)
    (left, right), output = spec.split("->")[0].split(","), spec.split("->")[1]
    jac, lap = 0.0, 0.0
    if aj is not None:
        jac = jac + jnp.einsum(f"l{left},{right}->l{output}", aj, bx)
        lap = lap + jnp.einsum(spec, al, bx)
    if bj is not None:
        jac = jac + jnp.einsum(f"{left},l{right}->l{output}", ax, bj)
        lap = lap + jnp.einsum(spec, ax, bl)
    if aj is not None and bj is not None:  # cross term: rows and features contracted at once
        lap = lap + 2.0 * jnp.einsum(f"l{left},l{right}->{output}", aj, bj)
    return jnp.einsum(spec, ax, bx), jac, lap


def _logits(q, k, scale):
    """``(value, Jacobian, Laplacian)`` of ``scale * einsum(_LOGITS, q, k)``.

    With both operands input-dependent the Jacobian ``Jq . k + q . Jk`` is one contraction over
    ``2K`` features (``[Jq, q] . [k, Jk]``), so the large (rows, ..., T, S) array is written once.
    """
    if not (isinstance(q, FwdLaplArray) and isinstance(k, FwdLaplArray)):
        value, jac, lap = _bilinear(_LOGITS, q, k)
        return value * scale, jac * scale, lap * scale
    (qx, qj, ql), (kx, kj, kl) = _parts(q), _parts(k)
    left = jnp.concatenate([qj * scale, jnp.broadcast_to(qx * scale, qj.shape)], axis=-1)
    right = jnp.concatenate([jnp.broadcast_to(kx, kj.shape), kj], axis=-1)
    jac = jnp.einsum("l...tgjk,l...sgk->l...gjts", left, right)
    cross = jnp.einsum("l...tgjk,l...sgk->...gjts", qj, kj)
    lap = jnp.einsum(_LOGITS, ql, kx) + jnp.einsum(_LOGITS, qx, kl) + 2.0 * cross
    return jnp.einsum(_LOGITS, qx, kx) * scale, jac, lap * scale


def _softmax_last(x, jac, lap):
    """``(w, Jw, lap w)`` of ``w = softmax(x, axis=-1)`` in closed form.

    For one Jacobian row ``d`` with ``m = <w, d>``: ``dw = w (d - m)`` and
    ``d2w = w [(d - m)^2 - <w, d^2> + m^2 + lap - <w, lap>]``. Summed over rows, with
    ``S = sum_rows d^2``: ``lap w = w [lap - <w, lap> + S - <w, S> - 2 sum_rows m d + 2 sum_rows m^2]``.
    """
    w = jax.nn.softmax(x, axis=-1)
    mean = jnp.einsum("l...s,...s->l...", jac, w)  # (rows, ...)
    squares = jnp.sum(jac * jac, axis=0)
    second = (
        squares
        - jnp.sum(w * squares, axis=-1, keepdims=True)
        - 2.0 * jnp.einsum("l...s,l...->...s", jac, mean)
        + 2.0 * jnp.sum(mean * mean, axis=0)[..., None]
    )
    lap_w = w * (lap - jnp.sum(w * lap, axis=-1, keepdims=True) + second)
    return w, w * (jac - mean[..., None]), lap_w


#: logit-Jacobian entries per chunk of Jacobian rows in the attention rule (bounds its memory);
#: below it all rows are processed at once (cheaper in time and memory for small N)
ATTENTION_CHUNK_ENTRIES = 2**21


def _attention_rule(q, k, v):
    qx = _parts(q)[0]
    scale = 1.0 / jnp.sqrt(jnp.asarray(qx.shape[-1], qx.dtype))
    if isinstance(q, FwdLaplArray) or isinstance(k, FwdLaplArray):
        rows = next(a.jacobian.data.shape[0] for a in (q, k) if isinstance(a, FwdLaplArray))
        kx = _parts(k)[0]  # logits (..., G, J, T, S): every Jacobian row has this many entries
        logits = np.prod(jnp.broadcast_shapes(qx.shape[:-4], kx.shape[:-3])) * np.prod(qx.shape[-4:-1]) * kx.shape[-3]
        if rows * logits > ATTENTION_CHUNK_ENTRIES:
            return _chunked_attention(q, k, v, scale)
        weights = FwdLaplArray(*_wrap_jacobian(_softmax_last(*_logits(q, k, scale))))  # all rows at once
        return FwdLaplArray(*_wrap_jacobian(_bilinear(_MIX, weights, v)))
    weights = jax.nn.softmax(jnp.einsum(_LOGITS, qx, k) * scale, axis=-1)  # only v depends on the input
    return FwdLaplArray(*_wrap_jacobian(_bilinear(_MIX, weights, v)))


def _chunked_attention(q, k, v, scale):
    """The rule of :func:`_softmax_last` and :func:`_bilinear` with the Jacobian rows in chunks.

    Every Jacobian row of the logits, the weights and the output depends on the same row of
    ``q, k, v`` only; the Laplacian needs sums over rows, accumulated chunk by chunk. So the
    (rows, ..., T, S) arrays exist for ``ATTENTION_CHUNK_ENTRIES`` entries at a time.
    """
    parts = [_parts(a) for a in (q, k, v)]
    rows = next(j.shape[0] for _, j, _ in parts if j is not None)
    (qx, qj, ql), (kx, kj, kl), (vx, vj, vl) = [
        (x, jnp.zeros((rows, *x.shape), x.dtype) if j is None else j, jnp.zeros_like(x) if l is None else l)
        for x, j, l in parts
    ]
    w = jax.nn.softmax(jnp.einsum(_LOGITS, qx, kx) * scale, axis=-1)  # (..., G, J, T, S)
    lap_logits = scale * (
        jnp.einsum(_LOGITS, ql, kx) + jnp.einsum(_LOGITS, qx, kl)
        + 2.0 * jnp.einsum("l...tgjk,l...sgk->...gjts", qj, kj)
    )
    size = max(1, min(rows, ATTENTION_CHUNK_ENTRIES // max(1, int(np.prod(w.shape)))))
    n_chunks = -(-rows // size)

    def split(t):
        t = jnp.pad(t, [(0, n_chunks * size - rows)] + [(0, 0)] * (t.ndim - 1))
        return t.reshape(n_chunks, size, *t.shape[1:])

    def chunk(acc, tangents):
        qj_c, kj_c, vj_c = tangents
        d = scale * (jnp.einsum("l...tgjk,...sgk->l...gjts", qj_c, kx) + jnp.einsum("...tgjk,l...sgk->l...gjts", qx, kj_c))
        m = jnp.einsum("l...s,...s->l...", d, w)
        jw = w * (d - m[..., None])
        out_jac = jnp.einsum("l...gjts,...sgk->l...tgjk", jw, vx) + jnp.einsum("...gjts,l...sgk->l...tgjk", w, vj_c)
        sq, dm, mm, cross = acc
        acc = (
            sq + jnp.sum(d * d, axis=0),
            dm + jnp.einsum("l...s,l...->...s", d, m),
            mm + jnp.sum(m * m, axis=0),
            cross + jnp.einsum("l...gjts,l...sgk->...tgjk", jw, vj_c),
        )
        return acc, out_jac

    out = jnp.einsum(_MIX, w, vx)
    init = (jnp.zeros_like(w), jnp.zeros_like(w), jnp.zeros_like(w[..., 0]), jnp.zeros_like(out))
    (sq, dm, mm, cross), out_jac = jax.lax.scan(chunk, init, (split(qj), split(kj), split(vj)))
    second = sq - jnp.sum(w * sq, axis=-1, keepdims=True) - 2.0 * dm + 2.0 * mm[..., None]
    lap_w = w * (lap_logits - jnp.sum(w * lap_logits, axis=-1, keepdims=True) + second)
    lap = jnp.einsum(_MIX, lap_w, vx) + jnp.einsum(_MIX, w, vl) + 2.0 * cross
    jac = out_jac.reshape(n_chunks * size, *out_jac.shape[2:])[:rows]
    return FwdLaplArray(out, FwdJacobian(jac), lap)


def _wrap_jacobian(triple):
    value, jac, lap = triple
    return value, FwdJacobian(jac), lap


attention_core = _register_dense("qernel_fused_attention_core", _attention_core, _attention_rule)
attention_core.__doc__ = """Attention core ``softmax(q k^T / sqrt(K)) v`` of grouped-query attention.

Args:
    q: (..., T, G, H/G, K) queries (G key/value groups with H/G query heads each).
    k, v: (..., S, G, K) keys and values.

Returns:
    (..., T, G, H/G, K); the softmax runs over the S key tokens.
"""


# -- pair sums ----------------------------------------------------------------------------------


class PairSum:
    """``f(positions, *params) = sum_{i<j} u(r_i - r_j, *params)`` with a closed-form folx rule.

    Args:
        pair_function: ``u(d, *params)``: displacements ``d`` (..., P, 2) of the P pairs
            ``i < j`` in the order of ``np.triu_indices(N, 1)`` (``d_p = r_i - r_j``) ->
            (..., P). Entry p may depend on ``d[..., p, :]`` only (it may differ between pairs,
            e.g. by spin).
        n_electrons: N >= 2.
        name: unique name of the jitted function (the folx registry key).

    Call with ``positions`` (..., N, 2) and the parameters; returns (...,). Build each instance
    once (e.g. behind ``functools.lru_cache``): it registers its rule with folx.
    """

    def __init__(self, pair_function: Callable, n_electrons: int, name: str) -> None:
        if n_electrons < 2:
            raise ValueError(f"PairSum needs n_electrons >= 2, got {n_electrons}")
        self.pair_function = pair_function
        self.i, self.j = np.triu_indices(n_electrons, k=1)
        incidence = np.zeros((len(self.i), n_electrons))
        incidence[np.arange(len(self.i)), self.i] = 1.0
        incidence[np.arange(len(self.i)), self.j] = -1.0
        self.incidence = incidence  # (P, N): d_p = sum_n incidence[p, n] r_n
        self._fn = _register_dense(name, self._plain, self._rule)

    def _displacements(self, positions):
        return positions[..., self.i, :] - positions[..., self.j, :]

    def _plain(self, positions, *params):
        return jnp.sum(self.pair_function(self._displacements(positions), *params), axis=-1)

    def _rule(self, positions, *params):
        if not isinstance(positions, FwdLaplArray):  # input-dependent parameters only
            return folx.forward_laplacian(self._plain, disable_jit=True)(positions, *params)
        x, jac, lap = _parts(positions)
        d = self._displacements(x)
        unit = jnp.eye(2, dtype=x.dtype)

        def u(d):
            return self.pair_function(d, *params)

        def along(f, a):  # derivative of f along coordinate a of every pair's displacement
            return lambda d: jax.jvp(f, (d,), (jnp.broadcast_to(unit[a], d.shape),))[1]

        ux, uy = along(u, 0), along(u, 1)
        grad = jnp.stack([ux(d), uy(d)], axis=-1)  # (..., P, 2)
        hxx, hxy, hyy = along(ux, 0)(d), along(ux, 1)(d), along(uy, 1)(d)
        force = jnp.einsum("pn,...pa->...na", jnp.asarray(self.incidence, x.dtype), grad)  # dJ/dr_n
        pair_jac = self._displacements(jac)  # (rows, ..., P, 2): Jacobian rows of d_p
        quadratic = (
            hxx * jnp.sum(pair_jac[..., 0] ** 2, axis=0)
            + 2.0 * hxy * jnp.sum(pair_jac[..., 0] * pair_jac[..., 1], axis=0)
            + hyy * jnp.sum(pair_jac[..., 1] ** 2, axis=0)
        )
        return FwdLaplArray(
            jnp.sum(u(d), axis=-1),
            FwdJacobian(jnp.einsum("l...na,...na->l...", jac, force)),
            jnp.sum(force * lap, axis=(-1, -2)) + jnp.sum(quadratic, axis=-1),
        )

    def __call__(self, positions, *params):
        return self._fn(positions, *params)
