"""Orbital matrix + ``slogdet`` fused into one op with a closed-form folx forward-Laplacian rule.

The generalized orbital matrix of :mod:`qernel.ansatz.orbitals` is
``A[k, i, j] = (h_i . W_g(i) + b_g(i))[k, j] * e_{k j}(r_i)`` (row ``i`` of row group ``g(i)``,
the spin blocks of a full determinant; ``e`` an envelope that depends on ``r_i`` only). Traced
primitive by primitive, folx materialises the (2N, K, n, n) Jacobian of every intermediate (the
real and imaginary linear maps, their sum, the envelope, the product, then ``A^-1 dA``): at
N = 150 these arrays dominate the local energy's memory. The rule here starts from the small
Jacobians of ``h`` (2N, n, D) and ``r`` (2N, n, 2) and uses

    d_c log det A = tr(A^-1 dA_c),
    lap log det A = tr(A^-1 lap A) - sum_c tr(A^-1 dA_c A^-1 dA_c),
    dA_c = (dh_c W) * e + (h W + b) * sum_a dr_c[a] de/dr[a],
    lap A = (lap h W) * e + (h W + b) * (sum_a lap r[a] de/dr[a] + sum_ab S_ab d2e/dr[a]dr[b])
            + 2 sum_a (sum_c dr_c[a] dh_c) W * de/dr[a],        S_ab = sum_c dr_c[a] dr_c[b],

with the envelope derivatives per row by forward-mode AD. The Jacobian rows ``c`` are processed
in chunks (``jax.lax.map``) so that ``dA_c`` and ``A^-1 dA_c`` exist for a bounded number of rows
at a time. Outside folx the op is an ordinary jitted ``slogdet`` of the same matrix.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import folx
import jax
import jax.numpy as jnp
import numpy as np
from folx.api import FwdJacobian, FwdLaplArray

from .fused import _densify, _parts

__all__ = ["OrbitalSlogdet", "plane_wave_envelope", "gaussian_envelope", "orbital_slogdet"]

#: complex entries of ``dA_c`` (and of ``A^-1 dA_c``) per chunk of Jacobian rows
CHUNK_ENTRIES = 2**20
_names = itertools.count()


def plane_wave_envelope(k: np.ndarray, phase: np.ndarray, complex_output: bool) -> Callable:
    """``e(r) = exp(i (k_j . r))`` or ``cos(k_j . r - phase_j)``: (B, n, 2) -> (B, 1, n, n_col)."""

    def envelope(positions):
        arg = positions @ jnp.asarray(k.T, positions.dtype) - jnp.asarray(phase, positions.dtype)
        return (jnp.exp(1j * arg) if complex_output else jnp.cos(arg))[..., None, :, :]

    return envelope


def gaussian_envelope(length_scale: float) -> Callable:
    """``e(r, alpha) = exp(-alpha_kij |r_i|^2 / l^2)``: (B, n, 2), alpha (K, n, n_col) -> (B, K, n, n_col)."""

    def envelope(positions, alpha):
        r2 = jnp.sum(positions**2, axis=-1) / length_scale**2
        return jnp.exp(-alpha * r2[..., None, :, None])

    return envelope


class OrbitalSlogdet:
    """``slogdet`` of the orbital matrix ``(h W_g + b_g) * envelope(r)`` with a fused folx rule.

    Args:
        envelope: ``envelope(positions (B, n, 2), *params) -> (B, K or 1, n, n_col)`` whose row
            ``i`` depends on ``r_i`` only; ``None`` for no envelope.
        row_counts: rows of each row group (the spin blocks of a full determinant), summing to n.
        n_determinants: K.
        name: unique name of the jitted function (the folx registry key).

    Call with ``h`` (B, n, D), ``positions`` (B, n, 2), ``w`` (G, D, K n_col), ``b`` (G, K n_col)
    (real or complex) and the envelope parameters; returns ``(sign, log|det|)``, each (B, K).
    """

    def __init__(self, envelope: Callable | None, row_counts: tuple[int, ...], n_determinants: int, name: str):
        if not row_counts or min(row_counts) < 1:
            raise ValueError(f"row_counts must be positive integers, got {row_counts}")
        self.envelope = envelope
        self.row_counts = tuple(int(n) for n in row_counts)
        self.n_determinants = int(n_determinants)
        folx.register_function(name, lambda args, kwargs, sparsity_threshold: self._rule(*_densify(args)))
        self._fn = _named(name, self._plain)

    def _linear(self, h, w, b=None):
        """(..., n, D) -> (..., K, n, n_col): row group g through ``w[g]`` (and ``b[g]``)."""
        parts, start = [], 0
        for g, count in enumerate(self.row_counts):
            y = h[..., start : start + count, :] @ w[g]
            parts.append(y if b is None else y + b[g])
            start += count
        y = jnp.concatenate(parts, axis=-2)
        y = y.reshape(*y.shape[:-1], self.n_determinants, -1)
        return jnp.moveaxis(y, -2, -3)

    def _matrix(self, h, positions, w, b, *env_params):
        a = self._linear(h, w, b)
        return a if self.envelope is None else a * self.envelope(positions, *env_params)

    def _plain(self, h, positions, w, b, *env_params):
        sign, logabs = jnp.linalg.slogdet(self._matrix(h, positions, w, b, *env_params))
        return sign, logabs

    def _rule(self, h, positions, w, b, *env_params):
        constant = (w, b, *env_params)
        if not isinstance(h, FwdLaplArray) or any(isinstance(p, FwdLaplArray) for p in constant):
            return folx.forward_laplacian(self._plain, disable_jit=True)(h, positions, w, b, *env_params)
        hx, hj, hl = _parts(h)
        rx, rj, rl = _parts(positions)
        if rj is None:  # envelope independent of the input: zero position tangents
            rj, rl = jnp.zeros((hj.shape[0], *rx.shape), rx.dtype), jnp.zeros_like(rx)
        p = self._linear(hx, w, b)  # (B, K, n, m)
        lap_a = self._linear(hl, w)
        if self.envelope is None:
            e, grads, hessians = 1.0, (), {}
        else:
            env = lambda r: self.envelope(r, *env_params)  # noqa: E731
            unit = jnp.eye(2, dtype=rx.dtype)

            def along(f, a):  # derivative along coordinate a of every row's position
                return lambda r: jax.jvp(f, (r,), (jnp.broadcast_to(unit[a], r.shape),))[1]

            e = env(rx)
            grads = tuple(along(env, a)(rx) for a in range(2))
            hessians = {(a, c): along(along(env, a), c)(rx) for a in range(2) for c in range(a, 2)}
            lap_a = lap_a * e
            envelope_lap = sum(rl[..., a][..., None, :, None] * grads[a] for a in range(2))
            for (a, c), hess in hessians.items():
                s = jnp.sum(rj[..., a] * rj[..., c], axis=0)  # (B, n)
                envelope_lap = envelope_lap + (1.0 if a == c else 2.0) * s[..., None, :, None] * hess
            lap_a = lap_a + p * envelope_lap
            for a in range(2):
                mixed = jnp.einsum("l...i,l...id->...id", rj[..., a], hj)  # (B, n, D)
                lap_a = lap_a + 2.0 * self._linear(mixed, w) * grads[a]
        matrix = p * e
        inverse = jnp.linalg.inv(matrix)
        sign, logabs = jnp.linalg.slogdet(matrix)
        laplacian = jnp.einsum("...ji,...ij->...", inverse, lap_a)

        def chunk(tangents):
            hj_c, rj_c = tangents  # (c, B, n, D), (c, B, n, 2)
            da = self._linear(hj_c, w) * e
            for a in range(len(grads)):
                da = da + p * (rj_c[..., a][..., None, :, None] * grads[a])
            m = jnp.einsum("...ij,c...jk->c...ik", inverse, da)
            return jnp.einsum("c...ii->c...", m), jnp.einsum("c...ij,c...ji->...", m, m)

        rows = hj.shape[0]
        size = max(1, min(rows, CHUNK_ENTRIES // max(1, int(np.prod(matrix.shape)))))
        n_chunks = -(-rows // size)
        pad = n_chunks * size - rows

        def split(t):
            t = jnp.pad(t, [(0, pad)] + [(0, 0)] * (t.ndim - 1))
            return t.reshape(n_chunks, size, *t.shape[1:])

        jac, second = jax.lax.map(chunk, (split(hj), split(rj)))
        jacobian = jac.reshape(n_chunks * size, *jac.shape[2:])[:rows]
        laplacian = laplacian - jnp.sum(second, axis=0)
        if jnp.iscomplexobj(matrix):  # sign = exp(i phase), phase = Im log det A
            phase, phase_lap = jacobian.imag, laplacian.imag
            sign = FwdLaplArray(
                sign,
                FwdJacobian.from_dense(1.0j * sign * phase),
                sign * (1.0j * phase_lap - jnp.sum(phase * phase, axis=0)),
            )
            jacobian, laplacian = jacobian.real, laplacian.real
        return sign, FwdLaplArray(logabs, FwdJacobian.from_dense(jacobian), laplacian)

    def __call__(self, h, positions, w, b, *env_params):
        return self._fn(h, positions, w, b, *env_params)


def _named(name: str, plain: Callable) -> Callable:
    def named(*args):
        return plain(*args)

    named.__name__ = named.__qualname__ = name
    return jax.jit(named)


@functools.lru_cache(maxsize=None)
def _cached(key) -> OrbitalSlogdet:
    kind, row_counts, n_determinants, extra = key
    if kind == "plane_wave":
        k, phase, complex_output = extra
        envelope = plane_wave_envelope(np.array(k).reshape(-1, 2), np.array(phase), complex_output)
    elif kind == "gaussian":
        envelope = gaussian_envelope(extra)
    else:
        envelope = None
    return OrbitalSlogdet(envelope, row_counts, n_determinants, f"qernel_fused_slogdet_{next(_names)}")


def orbital_slogdet(kind: str, row_counts, n_determinants: int, extra=None) -> OrbitalSlogdet:
    """The (cached) :class:`OrbitalSlogdet` for an envelope ``kind`` (``"plane_wave"``, ``"gaussian"``,
    ``"none"``); ``extra``: ``(k, phase, complex_output)`` (plane waves, as tuples) or the length scale."""
    return _cached((kind, tuple(row_counts), int(n_determinants), extra))
