"""Observables per Hamiltonian-parameter group, with autocorrelation-aware Monte Carlo errors.

Pure functions of samples ``(n_chains, chain_length, 2N + P)`` plus the Hamiltonian:

* :func:`energy_decomposition` (from local estimators) -- kinetic, one-body, interaction, total;
* :func:`density_map` -- the charge density on an ``n x n`` fractional grid of the supercell;
* :func:`density_fourier`, :func:`crystal_order_parameter` -- ``<rho(G)>`` and ``|<rho(g)>|``
  averaged over the moiré first shell (the order parameter of the pinned crystal);
* :func:`structure_factor` -- ``S(q)`` and its connected part on the supercell reciprocal lattice;
* :func:`pair_correlation` -- ``g(r)`` (total and spin-resolved) with minimum-image distances;
* :func:`blocking` -- Flyvbjerg-Petersen error bars along each chain (also in every energy estimate);
* :func:`trap_virial` -- ``2T - 2U + W`` (zero in trap eigenstates); :func:`spin_squared` -- ``<S^2>``.
* :func:`k_point_order_parameter`, :func:`k_point_structure_factor` -- ``|<rho(K)>|`` and ``S(K)`` at
  the moiré K points (order of the filling-2/3 honeycomb crystal);
* :func:`finite_difference` -- slopes along a scan (e.g. ``dE_int/dV``) with propagated errors.

Each returns ``{group key: result}`` (key = the group's parameter values, see
:mod:`qernel.observables.groups`); results have ``to_dict()`` (JSON-ready floats and lists).
``measure_*`` wrappers and :func:`measure` take an ``nk.vqs.MCState`` instead of samples.
"""

from .density import DensityMap, density_map, measure_density_map
from .energy import (
    ENERGY_COMPONENTS,
    EnergyDecomposition,
    energy_decomposition,
    local_energy_components,
    measure_energy,
    potential_energy_components,
)
from .blocking import BlockingEstimate, blocking
from .estimates import Estimate, estimate
from .fourier import (
    DensityFourier,
    OrderParameter,
    crystal_order_parameter,
    default_order_parameter_vectors,
    density_fourier,
    density_fourier_samples,
    first_shell,
    measure_density_fourier,
    measure_order_parameter,
)
from .groups import ParameterGroups, groups_from_samples, groups_from_state, records
from .measure import OBSERVABLES, measure, to_json
from .spin import local_spin_squared, spin_squared
from .pair_correlation import PairCorrelation, measure_pair_correlation, pair_correlation
from .structure_factor import (
    StructureFactor,
    default_q_max,
    measure_structure_factor,
    reciprocal_points,
    structure_factor,
)
from .virial import trap_virial
from .finite_difference import FiniteDifference, finite_difference
from .wigner_crystal import (
    brillouin_zone_corners,
    is_commensurate,
    k_point_order_parameter,
    k_point_structure_factor,
    moire_k_points,
    require_commensurate,
)

__all__ = [
    "Estimate",
    "estimate",
    "BlockingEstimate",
    "blocking",
    "trap_virial",
    "local_spin_squared",
    "spin_squared",
    "ParameterGroups",
    "groups_from_samples",
    "groups_from_state",
    "records",
    "ENERGY_COMPONENTS",
    "EnergyDecomposition",
    "potential_energy_components",
    "local_energy_components",
    "energy_decomposition",
    "measure_energy",
    "DensityMap",
    "density_map",
    "measure_density_map",
    "DensityFourier",
    "OrderParameter",
    "density_fourier_samples",
    "density_fourier",
    "crystal_order_parameter",
    "first_shell",
    "default_order_parameter_vectors",
    "measure_density_fourier",
    "measure_order_parameter",
    "StructureFactor",
    "reciprocal_points",
    "default_q_max",
    "structure_factor",
    "measure_structure_factor",
    "PairCorrelation",
    "pair_correlation",
    "measure_pair_correlation",
    "OBSERVABLES",
    "measure",
    "to_json",
    "FiniteDifference",
    "finite_difference",
    "brillouin_zone_corners",
    "is_commensurate",
    "require_commensurate",
    "moire_k_points",
    "k_point_order_parameter",
    "k_point_structure_factor",
]
