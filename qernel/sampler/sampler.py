"""Build NetKet Metropolis samplers for electrons carrying Hamiltonian parameters, and steer them.

:func:`make_sampler` returns a ``netket.sampler.MetropolisSampler`` (the subclass
:class:`ElectronMetropolisSampler`, which compiles one sweep for chains of every length) with a
qernel rule, so ``nk.vqs.MCState`` uses it unchanged. The helpers below act on an ``MCState`` (``vstate``) that
uses such a sampler:

* :func:`per_group_acceptance` — acceptance of each parameter group in the last ``sample()``;
* :func:`adapt_step_sizes` — multiplicative per-group update of the per-chain Gaussian widths
  toward a target acceptance, from the acceptance since the previous adaptation;
* :func:`set_chain_parameters`, :func:`redraw_parameters` — replace the carried parameter columns
  of all chains (optionally followed by :func:`thermalise`);
* :func:`chain_parameters`, :func:`chain_group_ids`, :func:`group_values`, :func:`step_sizes`.

Each ``vstate`` helper has a pure counterpart acting on ``(sampler, sampler_state)`` for drivers
that manage the state themselves (:func:`adapted_sampler_state`,
:func:`sampler_state_with_parameters`, :func:`acceptance_since_adaptation`).

NetKet facts these rely on (checked in NetKet 3.23 ``netket/sampler/metropolis.py``):
``MetropolisSamplerState.n_accepted_proc`` is an (n_chains,) per-chain counter and
``n_steps_proc`` a scalar counting moves summed over chains (``sweep_size * n_chains`` per
sample); both are zeroed by ``sampler.reset``, which ``MCState.sample()`` calls first (so they
cover the discarded and the kept samples of the last ``sample()``). ``reset`` passes the old
state to ``rule.reset``, which is where the qernel rule banks the counters.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np

from ..geometry.hilbert import ElectronHilbert
from ..types import Array, ArrayLike, DType, PRNGKey, VariationalState
from .parameter_space import ParameterSpace, no_parameters
from .rules import ElectronMoveRule, GaussianElectronRule, SingleElectronRule

__all__ = [
    "make_sampler",
    "per_group_acceptance",
    "acceptance_since_adaptation",
    "adapt_step_sizes",
    "adapted_sampler_state",
    "set_chain_parameters",
    "sampler_state_with_parameters",
    "redraw_parameters",
    "thermalise",
    "chain_parameters",
    "chain_group_ids",
    "sample_group_ids",
    "group_values",
    "step_sizes",
    "set_step_sizes",
]

_RULES = {"gaussian": GaussianElectronRule, "single": SingleElectronRule}


def make_sampler(
    hilbert: ElectronHilbert,
    parameter_space: ParameterSpace | None = None,
    *,
    n_chains: int,
    sweep_size: int,
    rule: str = "gaussian",
    initial_sigma: float | None = None,
    init_width: float = 1.0,
    dtype: DType | None = None,
    chunk_size: int | None = None,
    machine_pow: int = 2,
    reset_chains: bool = False,
) -> nk.sampler.MetropolisSampler:
    """A NetKet ``MetropolisSampler`` whose chains each carry their own Hamiltonian parameters.

    Args:
        hilbert: the electron Hilbert space (its ``parameter_names`` must match the space).
        parameter_space: which parameter rows the chains carry; ``None`` only if the Hilbert
            space carries no parameters.
        n_chains: total number of Markov chains, a multiple of ``parameter_space.n_groups``.
        sweep_size: Metropolis steps between two returned samples (NetKet's default, 2N + P,
            is not used: choose it, e.g. a few for ``'gaussian'``, ~N for ``'single'``).
        rule: ``'gaussian'`` (all electrons move at once) or ``'single'`` (one random electron).
        initial_sigma: initial Gaussian step width, internal length units (> 0); default
            ``0.2 * sqrt(area / N)`` (periodic) or ``0.2 * init_width`` (open). Adapt it with
            :func:`adapt_step_sizes`.
        init_width: open boundaries only: std of the Gaussian blob of initial positions.
        dtype: floating dtype of the samples (default: JAX's default float, float64 when
            NetKet has enabled x64).
        chunk_size: NetKet chunk size for evaluating the model while sampling.
        machine_pow: sample ``|psi|^machine_pow``.
        reset_chains: re-draw positions (uniform / blob) at every ``sample()`` (NetKet option).
    """
    if not isinstance(hilbert, ElectronHilbert):
        raise TypeError(f"hilbert must be a qernel ElectronHilbert, got {type(hilbert).__name__}")
    if parameter_space is None:
        parameter_space = no_parameters()
    parameter_space.check_hilbert(hilbert)
    parameter_space.check_n_chains(n_chains)
    if int(sweep_size) != sweep_size or sweep_size < 1:
        raise ValueError(f"sweep_size must be a positive integer, got {sweep_size}")
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {sorted(_RULES)}, got {rule!r}")
    if initial_sigma is None:
        if hilbert.supercell is None:
            initial_sigma = 0.2 * init_width
        else:
            initial_sigma = 0.2 * math.sqrt(hilbert.supercell.area / hilbert.n_electrons)
    dtype = jax.dtypes.canonicalize_dtype(float if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a real floating dtype, got {dtype}")
    move_rule = _RULES[rule](parameter_space, initial_sigma=initial_sigma, init_width=init_width)
    return ElectronMetropolisSampler(
        hilbert,
        move_rule,
        n_chains=int(n_chains),
        sweep_size=int(sweep_size),
        dtype=dtype,
        chunk_size=chunk_size,
        machine_pow=machine_pow,
        reset_chains=reset_chains,
    )


@jax.jit
def _stack_chains(samples, log_probabilities):
    """(n_chains, L, D) samples and (n_chains, L) log-probabilities from L per-sweep arrays."""
    return jnp.stack(samples, axis=1), jnp.stack(log_probabilities, axis=1)


@partial(jax.jit, static_argnums=1)
def _metropolis_sweep(sampler, machine, parameters, state):
    """One sample of every chain (``sampler.sweep_size`` Metropolis steps): NetKet's ``_sample_next``."""
    return sampler._sample_next(machine, parameters, state)


class ElectronMetropolisSampler(nk.sampler.MetropolisSampler):
    """NetKet's ``MetropolisSampler`` whose chains of every length share one compiled sweep.

    NetKet's ``_sample_chain`` scans ``_sample_next`` (one sweep) over ``chain_length`` samples, a
    static argument: every distinct length (the discarded and the kept samples of
    ``MCState.sample``, the blocks of :func:`thermalise`) compiles the sweep, i.e. the model's
    forward pass, once more (about 5 s of one CPU core each for a 10^5-parameter model,
    ``benchmarks/compile_time.py``). Here the jitted sweep is called ``chain_length`` times from
    Python: one compilation for all lengths, the same moves with the same random keys (the state,
    key included, is threaded from sweep to sweep exactly as in NetKet's scan), and a Python
    dispatch per sample, negligible next to a sweep.
    """

    def _sample_chain(self, machine, parameters, state, chain_length, return_log_probabilities: bool = False):
        samples, log_probabilities = [], []
        for _ in range(int(chain_length)):
            state, (sigma, log_prob) = _metropolis_sweep(self, machine, parameters, state)
            samples.append(sigma)
            log_probabilities.append(log_prob)
        samples, log_probabilities = _stack_chains(samples, log_probabilities)
        if return_log_probabilities:
            return (samples, log_probabilities), state
        return samples, state


# -- access ---------------------------------------------------------------------------------


def _rule(sampler: nk.sampler.Sampler) -> ElectronMoveRule:
    rule = getattr(sampler, "rule", None)
    if not isinstance(rule, ElectronMoveRule):
        raise TypeError(
            f"expected a sampler built by qernel.sampler.make_sampler (rule ElectronMoveRule), got "
            f"{type(sampler).__name__} with rule {type(rule).__name__}"
        )
    return rule


def chain_parameters(vstate: VariationalState) -> Array:
    """(n_chains, P) parameter row each chain carries (user units)."""
    _rule(vstate.sampler)
    return vstate.sampler_state.rule_state.values


def chain_group_ids(vstate: VariationalState) -> Array:
    """(n_chains,) group index of each chain. Samples ``vstate.samples`` have shape
    (n_chains, chain_length, 2N + P), so sample ``[c, t]`` belongs to group ``chain_group_ids[c]``."""
    _rule(vstate.sampler)
    return vstate.sampler_state.rule_state.group_ids


def sample_group_ids(vstate: VariationalState) -> Array:
    """(n_chains, chain_length) group index of every sample in ``vstate.samples``.

    Prefer this (or :func:`chain_group_ids`) over ``parameter_space.group_ids(hilbert.split(samples)[1])``
    when the batch may be chunked: for random spaces the latter ranks rows within what it is given.
    """
    samples = vstate.samples
    groups = chain_group_ids(vstate)
    return jnp.broadcast_to(groups[:, None], samples.shape[:2])


def group_values(vstate: VariationalState) -> Array:
    """(n_groups, P) parameter row of each group (row of the group's first chain; NaN if empty)."""
    space = _rule(vstate.sampler).parameter_space
    rs = vstate.sampler_state.rule_state
    member = rs.group_ids[None, :] == jnp.arange(space.n_groups)[:, None]
    first = jnp.argmax(member, axis=1)
    return jnp.where(member.any(1)[:, None], rs.values[first], jnp.nan)


def step_sizes(vstate: VariationalState) -> Array:
    """(n_chains,) current Gaussian step width of each chain (internal length units)."""
    _rule(vstate.sampler)
    return vstate.sampler_state.rule_state.sigma


def set_step_sizes(vstate: VariationalState, sigma: ArrayLike) -> None:
    """Set the Gaussian step widths (internal length units, finite, > 0).

    ``sigma`` is a scalar (all chains), shape (n_chains,) (per chain) or (n_groups,) (per
    group; used when n_groups != n_chains). Use it to restore widths or seed them per group.
    """
    sampler = vstate.sampler
    space = _rule(sampler).parameter_space
    rs = vstate.sampler_state.rule_state
    sigma = np.asarray(sigma, dtype=float)
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ValueError(f"step sizes sigma must be finite and > 0, got {sigma.tolist()}")
    if sigma.ndim == 0:
        new = jnp.full_like(rs.sigma, float(sigma))
    elif sigma.shape == rs.sigma.shape:
        new = jnp.asarray(sigma, rs.sigma.dtype)
    elif sigma.shape == (space.n_groups,):
        new = jnp.asarray(sigma, rs.sigma.dtype)[rs.group_ids]
    else:
        raise ValueError(f"sigma must be a scalar, shape {rs.sigma.shape} (chains) or "
                         f"({space.n_groups},) (groups), got {sigma.shape}")
    vstate.sampler_state = vstate.sampler_state.replace(rule_state=rs.replace(sigma=new))


# -- acceptance and adaptation ----------------------------------------------------------------


def _group_acceptance(accepted, steps_per_chain, groups, n_groups):
    accepted_g = jax.ops.segment_sum(accepted.astype(float), groups, num_segments=n_groups)
    chains_g = jax.ops.segment_sum(jnp.ones_like(accepted, dtype=float), groups, num_segments=n_groups)
    tried = chains_g * steps_per_chain
    return jnp.where(tried > 0, accepted_g / jnp.where(tried > 0, tried, 1.0), jnp.nan)


def per_group_acceptance(vstate: VariationalState) -> Array:
    """(n_groups,) acceptance of each group since the last ``sampler.reset`` (i.e. over the
    discarded and kept steps of the last ``vstate.sample()``); NaN for a group with no steps."""
    sampler, state = vstate.sampler, vstate.sampler_state
    space = _rule(sampler).parameter_space
    steps = state.n_steps_proc / sampler.n_batches
    return _group_acceptance(state.n_accepted_proc, steps, state.rule_state.group_ids, space.n_groups)


def acceptance_since_adaptation(sampler: nk.sampler.MetropolisSampler, state: nk.sampler.MetropolisSamplerState) -> Array:
    """(n_groups,) acceptance of each group since the last step-size adaptation (NaN if none)."""
    space = _rule(sampler).parameter_space
    rs = state.rule_state
    accepted = rs.accepted_offset + state.n_accepted_proc
    steps = (rs.steps_offset + state.n_steps_proc) / sampler.n_batches
    return _group_acceptance(accepted, steps, rs.group_ids, space.n_groups)


def _check_adapt_args(target_acceptance, rate, max_factor, sigma_min, sigma_max):
    if not 0 < target_acceptance < 1:
        raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance}")
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be finite and > 0, got {rate}")
    if not max_factor > 1:
        raise ValueError(f"max_factor must be > 1, got {max_factor}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")


def adapted_sampler_state(
    sampler: nk.sampler.MetropolisSampler,
    state: nk.sampler.MetropolisSamplerState,
    target_acceptance: float = 0.5,
    *,
    rate: float = 1.0,
    max_factor: float = 2.0,
    sigma_min: float = 1e-6,
    sigma_max: float | None = None,
) -> tuple[nk.sampler.MetropolisSamplerState, Array]:
    """Pure version of :func:`adapt_step_sizes`: returns ``(new_state, acceptance)``.

    Per group g with acceptance ``a_g`` since the last adaptation, every chain's width is
    multiplied by ``clip(exp(rate * (a_g - target)), 1 / max_factor, max_factor)`` and then
    clipped to ``[sigma_min, sigma_max]``; groups without steps are left unchanged. The
    acceptance counters since adaptation restart at zero (NetKet's own counters are untouched,
    so ``state.acceptance`` still reports the last sample). ``sigma_max`` defaults to the length
    of the longest supercell vector (a wider Gaussian only wraps around) or infinity (open).
    """
    _rule(sampler)
    if sigma_max is None:
        cell = sampler.hilbert.supercell
        sigma_max = math.inf if cell is None else float(np.max(np.linalg.norm(cell.vectors, axis=-1)))
    _check_adapt_args(target_acceptance, rate, max_factor, sigma_min, sigma_max)
    acceptance = acceptance_since_adaptation(sampler, state)
    rs = state.rule_state
    factor = jnp.clip(jnp.exp(rate * (acceptance - target_acceptance)), 1.0 / max_factor, max_factor)
    factor = jnp.where(jnp.isnan(acceptance), 1.0, factor)
    sigma = jnp.clip(rs.sigma * factor[rs.group_ids].astype(rs.sigma.dtype), sigma_min, sigma_max)
    new_rs = rs.replace(
        sigma=sigma.astype(rs.sigma.dtype),
        accepted_offset=-state.n_accepted_proc,  # so that offset + counter restarts from 0
        steps_offset=-state.n_steps_proc,
    )
    return state.replace(rule_state=new_rs), acceptance


def adapt_step_sizes(
    vstate: VariationalState,
    target_acceptance: float = 0.5,
    *,
    rate: float = 1.0,
    max_factor: float = 2.0,
    sigma_min: float = 1e-6,
    sigma_max: float | None = None,
) -> Array:
    """Adapt each group's Gaussian step width toward ``target_acceptance``; returns the
    (n_groups,) acceptance since the previous adaptation that drove the update.

    Call it after ``vstate.sample()`` (e.g. once per training step); see
    :func:`adapted_sampler_state` for the update rule and arguments.
    """
    new_state, acceptance = adapted_sampler_state(
        vstate.sampler, vstate.sampler_state, target_acceptance,
        rate=rate, max_factor=max_factor, sigma_min=sigma_min, sigma_max=sigma_max,
    )
    vstate.sampler_state = new_state
    return acceptance


# -- parameter columns ------------------------------------------------------------------------


def sampler_state_with_parameters(
    sampler: nk.sampler.MetropolisSampler,
    state: nk.sampler.MetropolisSamplerState,
    values: ArrayLike,
    group_ids: Array | None = None,
) -> nk.sampler.MetropolisSamplerState:
    """Pure version of :func:`set_chain_parameters` (no validation, no thermalisation).

    Replaces the parameter columns of ``state.σ`` and the rule state's ``values``/``group_ids``;
    ``log_prob`` is stale until the next ``sampler.reset`` (which ``MCState.sample()`` calls).
    """
    space = _rule(sampler).parameter_space
    rs = state.rule_state
    values = jnp.asarray(values, dtype=state.σ.dtype).reshape(rs.values.shape)
    if group_ids is None:
        group_ids = space.group_ids(values)
    positions, _ = sampler.hilbert.split(state.σ)
    sigma_new = sampler.hilbert.join(positions, values)
    return state.replace(σ=sigma_new, rule_state=rs.replace(values=values, group_ids=group_ids.astype(jnp.int32)))


def thermalise(vstate: VariationalState, n_sweeps: int) -> None:
    """Run ``n_sweeps`` samples (each ``sweep_size`` Metropolis steps) and discard them.

    Uses ``vstate.sample`` (which resets the sampler and recomputes ``log_prob``), then drops the
    cached samples with ``vstate.reset()`` so the next ``vstate.samples`` is fresh.
    """
    if int(n_sweeps) != n_sweeps or n_sweeps < 0:
        raise ValueError(f"n_sweeps must be a non-negative integer, got {n_sweeps}")
    if n_sweeps > 0:
        vstate.sample(chain_length=1, n_discard_per_chain=int(n_sweeps) - 1)
    vstate.reset()


def set_chain_parameters(vstate: VariationalState, values: ArrayLike, *, n_sweeps: int = 0) -> None:
    """Give every chain a new parameter row, then optionally thermalise.

    Args:
        vstate: an ``MCState`` using a sampler from :func:`make_sampler`.
        values: (n_chains, P) rows in user units, each a point of the sampler's parameter space
            (grid point / inside the range, at most ``n_groups`` distinct rows); a single row
            (P,) is given to every chain. Group indices follow ``parameter_space.group_ids``.
        n_sweeps: thermalisation sweeps to run afterwards (0: none; the electron positions then
            still come from the old parameters).

    Per-chain step widths are kept (for random spaces group g keeps the g-th smallest value, so
    its width stays about right). Cached samples are dropped (``vstate.reset()``).
    """
    sampler = vstate.sampler
    space = _rule(sampler).parameter_space
    n_chains = vstate.sampler_state.rule_state.values.shape[0]
    array = np.asarray(values, dtype=float)
    if array.shape == (space.n_parameters,):
        array = np.broadcast_to(array, (n_chains, space.n_parameters))
    if array.shape != (n_chains, space.n_parameters):
        raise ValueError(f"values must have shape ({n_chains}, {space.n_parameters}) or "
                         f"({space.n_parameters},), got {array.shape}")
    space.check_values(array)
    vstate.sampler_state = sampler_state_with_parameters(sampler, vstate.sampler_state, array)
    thermalise(vstate, n_sweeps)


def redraw_parameters(vstate: VariationalState, key: PRNGKey, *, n_sweeps: int = 0) -> None:
    """Draw new group values from the (random) parameter space and give them to the chains.

    For finite spaces (grid / list) the assignment is deterministic, so this changes nothing but
    still thermalises. See :func:`set_chain_parameters` for ``n_sweeps``.
    """
    sampler = vstate.sampler
    space = _rule(sampler).parameter_space
    rs = vstate.sampler_state.rule_state
    values, groups = space.assign(rs.values.shape[0], key, dtype=rs.values.dtype)
    vstate.sampler_state = sampler_state_with_parameters(sampler, vstate.sampler_state, values, groups)
    thermalise(vstate, n_sweeps)
