"""Statistics within parameter groups.

A *group* is the set of samples that share one value of the carried Hamiltonian parameters.
Foundation training must center local energies and log-derivatives within each group, not over
the whole batch (DESIGN.md section 3): the objective is the average over groups of each group's
own energy ``E_g = <psi_g|H_g|psi_g> / <psi_g|psi_g>``.

All functions take flat arrays over samples, shape (Ns,), with integer group ids in
``[0, n_groups)`` of shape (Ns,), are pure ``jax.numpy`` and can be jitted (``n_groups`` static).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "group_counts",
    "group_means",
    "center_within_groups",
    "group_sample_weights",
    "clip_within_groups",
]


def group_counts(group_ids, n_groups: int):
    """Number of samples in each group, shape (G,) (float)."""
    return jax.ops.segment_sum(jnp.ones(group_ids.shape, dtype=float), group_ids, num_segments=n_groups)


def group_means(values, group_ids, n_groups: int):
    """Mean of ``values`` (Ns, ...) within each group, shape (G, ...). Empty groups give 0."""
    sums = jax.ops.segment_sum(values, group_ids, num_segments=n_groups)
    counts = group_counts(group_ids, n_groups)
    counts = counts.reshape((n_groups,) + (1,) * (values.ndim - 1))
    return sums / jnp.maximum(counts, 1.0).astype(sums.dtype)


def center_within_groups(values, group_ids, n_groups: int):
    """``values - mean of its own group``, shape like ``values`` (Ns, ...)."""
    return values - group_means(values, group_ids, n_groups)[group_ids]


def group_sample_weights(group_ids, n_groups: int):
    """Per-sample weights (Ns,) ``1 / (G_nonempty * n_g)``: every non-empty group counts equally,
    weights sum to 1."""
    counts = group_counts(group_ids, n_groups)
    n_nonempty = jnp.sum(counts > 0)
    return 1.0 / (n_nonempty * counts[group_ids])


def clip_within_groups(local_energies, group_ids, n_groups: int, width: float | None = 5.0):
    """Clip the real part of local energies to ``median_g +- width * mean|E - median_g|`` per group.

    The robust clipping of FermiNet (Pfau et al., PRR 2, 033429 (2020)), applied per group so
    that the clipping window follows each parameter value's own energy scale. ``width=None`` or
    ``<= 0`` disables it. Used only for the gradient, never for reported energies.
    """
    if width is None or width <= 0:
        return local_energies
    real = jnp.real(local_energies)
    mask = group_ids[None, :] == jnp.arange(n_groups)[:, None]  # (G, Ns)
    masked = jnp.where(mask, real[None, :], jnp.nan)
    median = jnp.nanmedian(masked, axis=1)  # (G,)
    spread = jnp.nanmean(jnp.abs(masked - median[:, None]), axis=1)
    low = (median - width * spread)[group_ids]
    high = (median + width * spread)[group_ids]
    clipped = jnp.clip(real, low, high)
    if jnp.iscomplexobj(local_energies):
        return clipped + 1j * jnp.imag(local_energies)
    return clipped
