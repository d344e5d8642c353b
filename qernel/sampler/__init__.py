"""Samplers whose Markov chains each carry their own Hamiltonian parameter values.

Built on NetKet: :func:`make_sampler` returns a ``netket.sampler.MetropolisSampler`` with a
qernel rule (:mod:`.rules`), so ``nk.vqs.MCState`` uses it unchanged; :mod:`.parameter_space`
decides which parameter values the chains carry; :mod:`.sampler` holds the helpers that adapt
step sizes per parameter group and replace the carried values.
"""

from .parameter_space import ParameterGrid, ParameterList, ParameterSpace, UniformRange, no_parameters
from .rules import ElectronMoveRule, ElectronRuleState, GaussianElectronRule, SingleElectronRule
from .sampler import (
    acceptance_since_adaptation,
    adapt_step_sizes,
    adapted_sampler_state,
    chain_group_ids,
    chain_parameters,
    group_values,
    make_sampler,
    per_group_acceptance,
    redraw_parameters,
    sample_group_ids,
    sampler_state_with_parameters,
    set_chain_parameters,
    set_step_sizes,
    step_sizes,
    thermalise,
)

__all__ = [
    "ParameterSpace",
    "ParameterList",
    "ParameterGrid",
    "UniformRange",
    "no_parameters",
    "ElectronRuleState",
    "ElectronMoveRule",
    "GaussianElectronRule",
    "SingleElectronRule",
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
