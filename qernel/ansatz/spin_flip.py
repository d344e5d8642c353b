"""Spin-flip symmetrisation of an S_z = 0 wavefunction: ``psi_s(R) = psi(R) + parity * psi(F R)``.

``F`` swaps the position blocks of the up and the down electrons (electron ``i <-> i + n`` for
``n_up = n_down = n``; carried Hamiltonian parameters unchanged). Flipping every spin of an
``|S, S_z = 0>`` state is a rotation by pi about x up to the phase ``i^N``, with eigenvalue
``(-1)^S``; re-ordering the flipped electrons into the up-first layout costs ``(-1)^n`` and
``i^N (-1)^n = 1``, so ``F`` has eigenvalue ``(-1)^S`` on the spatial function. ``parity = +1``
keeps the even-S components (removing S = 1, 3, ... contamination of a singlet), ``-1`` the odd.

The wrapped model must return the *signed* ``log psi`` (complex, or a real model built with
``log_abs_only=False``); with ``log|psi|`` alone the sum is undefined and this raises.
"""

from __future__ import annotations

import haiku as hk
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from qernel.geometry.hilbert import ElectronHilbert

__all__ = ["spin_flip_symmetric", "flip_spins", "check_spin_flip", "combine_flipped"]


def flip_spins(x, n_up: int):
    """Swap the up and down position blocks of samples (..., 2N + P), N = 2 n_up."""
    up = x[..., : 2 * n_up]
    down = x[..., 2 * n_up : 4 * n_up]
    return jnp.concatenate([down, up, x[..., 4 * n_up :]], axis=-1)


def check_spin_flip(hilbert: ElectronHilbert, parity: int) -> None:
    """Raise a one-line ``ValueError`` unless ``parity`` is +1 or -1 and ``hilbert`` has S_z = 0."""
    if parity not in (1, -1):
        raise ValueError(f"parity must be +1 or -1, got {parity}")
    if hilbert.n_up != hilbert.n_down:
        polarised = " (spin-polarised)" if min(hilbert.n_up, hilbert.n_down) == 0 else ""
        raise ValueError(
            f"spin-flip symmetry needs n_up == n_down (S_z = 0), got {hilbert.n_up} and {hilbert.n_down}{polarised}"
        )


def combine_flipped(log_a, log_b, parity: int):
    """``log(exp(log_a) + parity exp(log_b))`` of two signed (complex) ``log psi`` arrays (same shape)."""
    if not (jnp.iscomplexobj(log_a) and jnp.iscomplexobj(log_b)):
        raise ValueError(
            "spin_flip_symmetric needs the signed (complex) log psi; build the model with log_abs_only=False"
        )
    stacked = jnp.stack([log_a, log_b], axis=0)
    weights = jnp.array([1.0, float(parity)]).reshape((2,) + (1,) * log_a.ndim)
    return logsumexp(stacked, axis=0, b=weights.astype(stacked.dtype))


def spin_flip_symmetric(model: hk.Transformed, hilbert: ElectronHilbert, parity: int = 1) -> hk.Transformed:
    """``log(psi(R) + parity psi(F R))`` of a Haiku model ``apply(params, rng, x) -> log psi``.

    Args:
        model: the unsymmetrised model (signed complex ``log psi``), same parameters are used.
        hilbert: its electron Hilbert space; needs ``n_up == n_down``.
        parity: +1 (even S, e.g. singlets) or -1 (odd S).

    Returns:
        ``hk.Transformed`` with the same parameters, output complex ``log psi_s``.
    """
    check_spin_flip(hilbert, parity)
    n_up = hilbert.n_up

    def init(rng, x):
        return model.init(rng, x)

    def apply(params, rng, x):
        x = jnp.asarray(x)
        log_a = model.apply(params, rng, x)
        log_b = model.apply(params, rng, flip_spins(x, n_up))
        return combine_flipped(log_a, log_b, parity)

    return hk.Transformed(init=init, apply=apply)
