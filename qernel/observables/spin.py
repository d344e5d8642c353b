"""Total spin ``<S^2>`` of a fixed-S_z continuum wavefunction (VMC exchange estimator).

qernel's wavefunctions give electrons ``0 .. n_up-1`` spin up and the rest spin down, and are
antisymmetric within each spin block. For such a state (Hartree atomic units, hbar = 1)

    S^2 = S_z (S_z + 1) + n_down - sum_{i up, j down} P_ij,

with ``P_ij`` exchanging the *positions* of electrons ``i`` and ``j`` (the spatial image of the
spin-exchange term ``S_i^- S_j^+``; see e.g. Huang, Umrigar, Nightingale, J. Chem. Phys. 107,
3007 (1997), or check N = 2: a symmetric spatial function gives 0, an antisymmetric one 2).
Its local estimator on a sample ``R`` is

    S^2_loc(R) = S_z (S_z + 1) + n_down - sum_{i up, j down} psi(R_ij) / psi(R),

which needs the *sign* of psi: use a model with signed output (``log_abs_only=False``; a real
model then returns ``log|psi| + i pi [psi < 0]``). The S = 0 ground state has ``<S^2> = 0``;
``<S^2> > 0`` measures spin contamination.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..geometry.hilbert import join_sample, split_sample
from .estimates import Estimate, estimate

__all__ = ["local_spin_squared", "spin_squared", "exchange_pairs"]


def exchange_pairs(n_up: int, n_down: int) -> np.ndarray:
    """Permutations (n_up * n_down, N) of electron indices swapping one up with one down electron."""
    n = n_up + n_down
    perms = []
    for i in range(n_up):
        for j in range(n_up, n):
            p = np.arange(n)
            p[i], p[j] = j, i
            perms.append(p)
    return np.array(perms, dtype=int).reshape(-1, n)


def local_spin_squared(logpsi: Callable, samples, n_up: int, n_down: int, *, batch_size: int = 256):
    """``S^2_loc`` per sample.

    Args:
        logpsi: ``x (..., 2N + P) -> log psi (...)``, signed (complex, or real with NaN never);
            e.g. ``lambda x: model.apply(params, x)`` of a ``log_abs_only=False`` model.
        samples: (n_chains, chain_length, 2N + P) or (n_samples, 2N + P).
        n_up, n_down: spin sector of the samples (spin-up electrons first).
        batch_size: samples evaluated at once (each needs n_up * n_down + 1 amplitudes).

    Returns:
        real array with the leading shape of ``samples``.
    """
    samples = jnp.asarray(samples)
    n = n_up + n_down
    if samples.shape[-1] < 2 * n:
        raise ValueError(f"samples must have last dimension >= 2N = {2 * n}, got {samples.shape}")
    lead = samples.shape[:-1]
    flat = samples.reshape(-1, samples.shape[-1])
    perms = exchange_pairs(n_up, n_down)
    s_z = 0.5 * (n_up - n_down)
    constant = s_z * (s_z + 1) + n_down
    if perms.size == 0:
        return jnp.full(lead, s_z * (s_z + 1))

    def one(x):
        positions, carried = split_sample(x, n)
        swapped = jax.vmap(lambda p: join_sample(positions[p], carried))(jnp.asarray(perms))
        log_ratio = logpsi(swapped) - logpsi(x[None])[0]
        ratios = jnp.exp(log_ratio.astype(jnp.result_type(log_ratio, jnp.complex64)))
        return constant - jnp.sum(ratios).real

    values = jax.lax.map(jax.jit(one), flat, batch_size=batch_size)
    return values.reshape(lead)


def spin_squared(logpsi: Callable, samples, n_up: int, n_down: int) -> Estimate:
    """``<S^2>`` with its Monte Carlo error (and blocking error) from samples (n_chains, chain_length, 2N + P)."""
    samples = jnp.asarray(samples)
    if samples.ndim != 3:
        raise ValueError(f"samples must have shape (n_chains, chain_length, 2N + P), got {samples.shape}")
    return estimate(local_spin_squared(logpsi, samples, n_up, n_down), blocking=True)
