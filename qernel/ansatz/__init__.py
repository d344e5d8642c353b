"""The QERNEL neural wavefunction and its baselines as Haiku models (DESIGN.md section 4).

Public entry points:

* :class:`QERNELConfig`, :func:`make_qernel` -> ``hk.Transformed`` for ``nk.vqs.MCState``;
* baselines :func:`make_slater_jastrow` (module :class:`SlaterJastrow`, config
  :class:`SlaterJastrowConfig`), :func:`make_plain_transformer`;
* :func:`count_parameters`, :func:`router_statistics`, :func:`load_balancing_loss`;
* building blocks (features, FiLM, grouped-query attention, mixture of experts, transformer
  block, orbitals/envelopes/determinants, Jastrow) for custom models.
"""

from .attention import GroupedQueryAttention
from .block import TransformerBlock
from .features import open_features, periodic_distance, periodic_features, safe_norm, spin_features
from .film import FiLM, FiLMEmbedding
from .jastrow import Jastrow, cusp_slopes
from .layer_norm import LayerNorm
from .moe import (
    FeedForward,
    MixtureOfExperts,
    load_balancing_loss,
    router_statistics,
    top_k_gates,
)
from .orbitals import (
    GaussianEnvelope,
    Orbitals,
    PlaneWaveEnvelope,
    plane_wave_columns,
    log_psi_from_orbitals,
    plane_wave_kpoints,
    real_plane_wave_basis,
    reciprocal_lattice_vectors,
    sum_determinants,
)
from .qernel import QERNEL, PlainTransformerConfig, QERNELConfig, count_parameters, make_plain_transformer, make_qernel, normalisation_arrays
from .slater_jastrow import SlaterJastrow, SlaterJastrowConfig, bloch_coefficients, make_slater_jastrow, oscillator_exponents, slater_basis
from .spin_flip import flip_spins, spin_flip_symmetric

__all__ = [
    "QERNEL",
    "QERNELConfig",
    "make_qernel",
    "make_plain_transformer",
    "PlainTransformerConfig",
    "make_slater_jastrow",
    "SlaterJastrow",
    "SlaterJastrowConfig",
    "spin_flip_symmetric",
    "flip_spins",
    "count_parameters",
    "router_statistics",
    "load_balancing_loss",
    "normalisation_arrays",
    "GroupedQueryAttention",
    "TransformerBlock",
    "FiLM",
    "FiLMEmbedding",
    "FeedForward",
    "MixtureOfExperts",
    "top_k_gates",
    "LayerNorm",
    "Orbitals",
    "PlaneWaveEnvelope",
    "plane_wave_columns",
    "GaussianEnvelope",
    "sum_determinants",
    "log_psi_from_orbitals",
    "plane_wave_kpoints",
    "real_plane_wave_basis",
    "reciprocal_lattice_vectors",
    "Jastrow",
    "cusp_slopes",
    "periodic_features",
    "open_features",
    "spin_features",
    "periodic_distance",
    "safe_norm",
    "oscillator_exponents",
    "slater_basis",
    "bloch_coefficients",
]
