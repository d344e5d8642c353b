"""Foundation energy gradient and natural gradient (SR / MinSR), centered within parameter groups.

Notation: ``O_s = d log psi(x_s) / d theta`` (theta real), ``w_s = 1 / (G n_g(s))`` the sample
weights (every group counts equally), ``dE_s = E_loc(x_s) - E_g(s)`` the local energies centered in
their own group. Then (DESIGN.md section 3)

    grad E = sum_g (1/G) grad E_g = 2 Re sum_s w_s conj(O_s - <O>_g(s)) dE_s,

and the natural gradient solves the least-squares problem ``Obar delta ~= dE`` with the centered,
weighted Jacobian ``Obar_s = sqrt(w_s) (O_s - <O>_g(s))``, split in real and imaginary parts
(real parameters):

    SR:    delta = (J^T J + lambda I)^-1 J^T e
    MinSR: delta = J^T (J J^T + lambda I)^-1 e        (identical; cheaper when Ns < Np)

with ``J = [Re Obar; Im Obar]`` and ``e = [Re sqrt(w) dE; Im sqrt(w) dE]``. SPRING (Goldshlager,
Abrahamsen and Lin, J. Comput. Phys. 2024, arXiv 2401.10190; NetKet's ``VMC_SR(momentum=mu)``)
adds momentum: it solves ``min |J delta - e|^2 + lambda |delta - mu delta_prev|^2``,

    SPRING: delta = mu delta_prev + J^T (J J^T + lambda I)^-1 (e - mu J delta_prev)

which is MinSR for ``mu = 0`` and equals ``(J^T J + lambda I)^-1 (J^T e + lambda mu delta_prev)``. ``J^T e`` equals half
the energy gradient, so ``delta`` is a descent direction to be fed to an optax optimizer in place
of the gradient. Centring ``O`` over the whole batch instead (NetKet's stock ``VMC_SR``) adds the
bias ``sum_g w_g (E_g - E)(<O>_g - <O>)`` when groups have different energies.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._deprecation import deprecated_alias
from .groups import center_within_groups, clip_within_groups, group_sample_weights

__all__ = ["centered_jacobian", "centered_local_energies", "foundation_gradient", "natural_gradient"]


def centered_local_energies(local_energies, group_ids, n_groups: int, clip_width: float | None = 5.0):
    """Clip per group (gradient only) and center within groups.

    Returns:
        (dE, weights): both (Ns,); ``dE`` has zero weighted mean within every group.
    """
    clipped = clip_within_groups(local_energies, group_ids, n_groups, clip_width)
    # weights in the energies' precision: float64 weights would promote a float32 run's gradient
    weights = group_sample_weights(group_ids, n_groups).astype(jnp.real(clipped).dtype)
    return center_within_groups(clipped, group_ids, n_groups), weights


def foundation_gradient(
    logpsi: Callable, params, samples, centered_energies, weights, chunk_size: int | None = None
):
    """Energy gradient ``2 Re sum_s w_s conj(O_s) dE_s`` (pytree like ``params``).

    Centring ``O`` is implicit: ``dE`` sums to zero within each group, so subtracting the group
    mean of ``O`` does not change the sum.

    Args:
        logpsi: ``logpsi(params, samples) -> (Ns,)``.
        params: real parameter pytree.
        samples: (Ns, D) samples.
        centered_energies, weights: from :func:`centered_local_energies`.
        chunk_size: back-propagate this many samples at a time (NetKet's ``vjp_chunked``;
            per device when the samples are sharded); None: the whole batch at once.
    """
    coefficients = jax.lax.stop_gradient(weights * centered_energies)

    def per_sample(p, x, c):
        return 2.0 * jnp.real(jnp.conj(logpsi(p, x)) * c)

    if chunk_size is not None:
        from netket.jax import vjp_chunked

        vjp = vjp_chunked(per_sample, params, samples, coefficients, chunk_argnums=(1, 2),
                          chunk_size=chunk_size, nondiff_argnums=(1, 2))
        return vjp(jnp.ones(samples.shape[0], dtype=jnp.result_type(*jax.tree_util.tree_leaves(params))))[0]

    return jax.grad(lambda p: jnp.sum(per_sample(p, samples, coefficients)))(params)


def centered_jacobian(
    logpsi: Callable,
    params,
    samples: jax.Array,
    group_ids: jax.Array,
    n_groups: int,
    weights: jax.Array,
    chunk_size: int | None = None,
) -> tuple[list[jax.Array], Callable]:
    """Per-sample Jacobian ``Obar_s = sqrt(w_s) (O_s - <O>_g(s))``, centered within parameter groups.

    The matrix MinSR/SR solve with (module docstring). Per-sample gradients by ``vmap(grad)``
    over single samples (cost O(Ns) backward passes of one sample each; ``jacrev`` of the
    batched function would cost Ns passes over the whole batch).

    Args:
        logpsi: ``logpsi(params, samples) -> (Ns,)``, real or complex.
        params: real parameter pytree with Np numbers in all.
        samples: (Ns, D) samples.
        group_ids: (Ns,) integer parameter-group index of each sample, in ``[0, n_groups)``.
        n_groups: number of groups G.
        weights: (Ns,) sample weights ``w_s`` (:func:`centered_local_energies`).
        chunk_size: per-sample gradients this many samples at a time; None: all at once.

    Returns:
        ``(blocks, unravel)``: ``blocks`` is ``[Re Obar]`` for a real ``logpsi`` and
        ``[Re Obar, Im Obar]`` for a complex one, each (Ns, Np); ``unravel`` maps a flat (Np,)
        vector back to a pytree like ``params``.
    """
    # Why not netket.jax.jacobian(..., mode="real"/"complex", dense=True) followed by the group
    # centering: it gives bit-identical blocks (checked on the demo model: 512 samples, 13106
    # parameters, complex log psi) but its "complex" mode returns one (Ns, 2, Np) array that must be
    # split into the Re/Im blocks, and the Jacobian took 1.68 s (min of 6; median 1.93 s) against
    # 1.26 s (median 1.66 s) here, pinned to one shared CPU core: it would slow the step.
    from netket.jax import vmap_chunked

    flat, unravel = ravel_pytree(params)

    def single(fp, x):
        return logpsi(unravel(fp), x[None, :])[0]

    values = jax.eval_shape(single, flat, samples[0])
    parts = [lambda fp, x: jnp.real(single(fp, x))]
    if jnp.issubdtype(values.dtype, jnp.complexfloating):
        parts.append(lambda fp, x: jnp.imag(single(fp, x)))
    scale = jnp.sqrt(weights)[:, None]
    blocks = []
    for part in parts:
        per_sample = vmap_chunked(jax.grad(part), in_axes=(None, 0), chunk_size=chunk_size)(flat, samples)
        blocks.append(center_within_groups(per_sample, group_ids, n_groups) * scale)
    return blocks, unravel


def natural_gradient(
    logpsi: Callable,
    params,
    samples,
    centered_energies,
    weights,
    group_ids,
    n_groups: int,
    diag_shift: float = 1e-3,
    mode: str = "minsr",
    chunk_size: int | None = None,
    momentum: float = 0.0,
    previous=None,
    solve_dtype=None,
):
    """Natural-gradient direction with per-group centering (see module docstring).

    Args:
        mode: ``"minsr"`` (solve in sample space, 2Ns x 2Ns), ``"sr"`` (parameter space, Np x Np)
            or ``"spring"`` (MinSR with momentum).
        diag_shift: Tikhonov regulariser lambda added to the diagonal.
        chunk_size: evaluate per-sample gradients in chunks of this many samples (memory bound).
        momentum: SPRING momentum mu in [0, 1) (``"spring"`` only; ``"sr"`` accepts it too and
            gives the same direction).
        previous: the previous direction delta_prev (pytree like ``params``; None: zero).
        solve_dtype: precision of the regularised solve (the Jacobian and its Gram matrix stay in
            the parameters' precision); None: the Jacobian's. ``jnp.float64`` with float32
            parameters costs O((2Ns)^3) in float64, negligible next to the O(Ns^2 Np) Gram matrix.

    Returns:
        pytree like ``params``: the update direction (to be used as the optax gradient).
    """
    if mode not in ("minsr", "sr", "spring"):
        raise ValueError(f"mode must be 'minsr', 'sr' or 'spring', got {mode!r}")
    blocks, unravel = centered_jacobian(logpsi, params, samples, group_ids, n_groups, weights, chunk_size)
    scaled = jnp.sqrt(weights) * centered_energies
    rhs_blocks = [jnp.real(scaled)] + ([jnp.imag(scaled)] if len(blocks) == 2 else [])
    J = jnp.concatenate(blocks, axis=0)
    e = jnp.concatenate(rhs_blocks, axis=0).astype(J.dtype)
    prev = None if previous is None else ravel_pytree(previous)[0].astype(J.dtype)
    if prev is not None:
        e = e - momentum * (J @ prev)  # SPRING: fit only what the damped previous step does not
    solve = J.dtype if solve_dtype is None else solve_dtype
    if mode in ("minsr", "spring"):
        T = (J @ J.T).astype(solve)
        a = jax.scipy.linalg.solve(T + diag_shift * jnp.eye(T.shape[0], dtype=T.dtype), e.astype(solve), assume_a="pos")
        delta = J.T @ a.astype(J.dtype)
    else:
        S = (J.T @ J).astype(solve)
        rhs = (J.T @ e).astype(solve)
        delta = jax.scipy.linalg.solve(S + diag_shift * jnp.eye(S.shape[0], dtype=S.dtype), rhs, assume_a="pos")
        delta = delta.astype(J.dtype)
    if prev is not None:
        delta = delta + momentum * prev
    return unravel(delta)


# British spellings of qernel <= 0.1 (one spelling now: center), kept for one release
centred_local_energies = deprecated_alias(centered_local_energies, "centred_local_energies", "qernel.training.gradient")
centred_jacobian = deprecated_alias(centered_jacobian, "centred_jacobian", "qernel.training.gradient")
