"""Names that ``import qernel`` no longer offers at the top level, and where they live now.

Until qernel 0.1 every public name of the subpackages was re-exported as ``qernel.X`` (about 180
names, internal helpers and two names that shadow NetKet's ``KineticEnergy``/``PotentialEnergy``
included). The top level is now the curated list of :data:`qernel.__all__`; each name below stays
reachable as ``qernel.X`` with a :class:`DeprecationWarning` naming its subpackage until
:data:`REMOVAL_VERSION`.
"""

from __future__ import annotations

#: the qernel version in which ``qernel.X`` for the names of :data:`MOVED` stops working
REMOVAL_VERSION = "0.3.0"

#: ``{name: subpackage}``: ``qernel.<name>`` is deprecated, use ``qernel.<subpackage>.<name>``
MOVED: dict[str, str] = {
    # qernel.hamiltonian
    "BlochOrbitals": "hamiltonian", "BlochStates": "hamiltonian", "NonInteractingGroundState": "hamiltonian",
    "high_symmetry_points": "hamiltonian", "moire_bands": "hamiltonian", "moire_bloch_states": "hamiltonian",
    "noninteracting_ground_state": "hamiltonian", "slater_log_amplitude": "hamiltonian",
    "spin_sector": "hamiltonian", "EwaldSum": "hamiltonian", "ewald_energy": "hamiltonian",
    "join_sample": "geometry", "split_sample": "geometry", "Lattice": "geometry",
    "moire_g_vectors": "hamiltonian", "moire_potential": "hamiltonian", "KineticEnergy": "hamiltonian",
    "PotentialEnergy": "hamiltonian", "local_kinetic_energy": "hamiltonian",
    # qernel.ansatz
    "QERNEL": "ansatz", "make_plain_transformer": "ansatz", "spin_flip_symmetric": "ansatz", "flip_spins": "ansatz",
    "count_parameters": "ansatz", "router_statistics": "ansatz", "load_balancing_loss": "ansatz",
    "normalisation_arrays": "ansatz", "GroupedQueryAttention": "ansatz", "TransformerBlock": "ansatz",
    "FiLM": "ansatz", "FiLMEmbedding": "ansatz", "FeedForward": "ansatz", "MixtureOfExperts": "ansatz",
    "top_k_gates": "ansatz", "LayerNorm": "ansatz", "Orbitals": "ansatz", "PlaneWaveEnvelope": "ansatz",
    "plane_wave_columns": "ansatz", "GaussianEnvelope": "ansatz", "sum_determinants": "ansatz",
    "log_psi_from_orbitals": "ansatz", "plane_wave_kpoints": "ansatz", "real_plane_wave_basis": "ansatz",
    "reciprocal_lattice_vectors": "ansatz", "Jastrow": "ansatz", "cusp_slopes": "ansatz",
    "periodic_features": "ansatz", "open_features": "ansatz", "spin_features": "ansatz",
    "periodic_distance": "ansatz", "safe_norm": "ansatz", "oscillator_exponents": "ansatz", "slater_basis": "ansatz",
    "bloch_coefficients": "ansatz",
    # qernel.sampler
    "no_parameters": "sampler", "ElectronRuleState": "sampler", "ElectronMoveRule": "sampler",
    "GaussianElectronRule": "sampler", "SingleElectronRule": "sampler", "per_group_acceptance": "sampler",
    "acceptance_since_adaptation": "sampler", "adapt_step_sizes": "sampler", "adapted_sampler_state": "sampler",
    "set_chain_parameters": "sampler", "sampler_state_with_parameters": "sampler", "redraw_parameters": "sampler",
    "thermalise": "sampler", "chain_parameters": "sampler", "chain_group_ids": "sampler",
    "sample_group_ids": "sampler", "group_values": "sampler", "step_sizes": "sampler", "set_step_sizes": "sampler",
    # qernel.training
    "CheckpointError": "training", "load_checkpoint": "training", "save_checkpoint": "training",
    "GroupStats": "training", "NonFiniteError": "training", "read_log": "training", "centred_jacobian": "training",
    "centred_local_energies": "training", "foundation_gradient": "training", "natural_gradient": "training",
    "center_within_groups": "training", "clip_within_groups": "training", "group_counts": "training",
    "group_means": "training", "group_sample_weights": "training",
    # qernel.observables
    "Estimate": "observables", "estimate": "observables", "BlockingEstimate": "observables",
    "blocking": "observables", "trap_virial": "observables", "local_spin_squared": "observables",
    "spin_squared": "observables", "ParameterGroups": "observables", "groups_from_samples": "observables",
    "groups_from_state": "observables", "records": "observables", "ENERGY_COMPONENTS": "observables",
    "EnergyDecomposition": "observables", "potential_energy_components": "observables",
    "local_energy_components": "observables", "DensityMap": "observables", "density_map": "observables",
    "measure_density_map": "observables", "DensityFourier": "observables", "OrderParameter": "observables",
    "density_fourier_samples": "observables", "density_fourier": "observables",
    "crystal_order_parameter": "observables", "first_shell": "observables",
    "default_order_parameter_vectors": "observables", "measure_density_fourier": "observables",
    "measure_order_parameter": "observables", "StructureFactor": "observables", "reciprocal_points": "observables",
    "default_q_max": "observables", "structure_factor": "observables", "measure_structure_factor": "observables",
    "PairCorrelation": "observables", "pair_correlation": "observables", "measure_pair_correlation": "observables",
    "OBSERVABLES": "observables", "to_json": "observables", "FiniteDifference": "observables",
    "finite_difference": "observables", "brillouin_zone_corners": "observables", "is_commensurate": "observables",
    "require_commensurate": "observables", "moire_k_points": "observables", "k_point_order_parameter": "observables",
    "k_point_structure_factor": "observables",
    # qernel.config
    "ConfigError": "config", "SystemConfig": "config", "ParametersConfig": "config", "AnsatzConfig": "config",
    "SamplerConfig": "config", "OptimizerConfig": "config", "RunSettings": "config", "PretrainConfig": "config",
    "config_from_dict": "config", "SECTION_DEFAULTS": "config",
    # qernel.run
    "Run": "run", "build_hamiltonian": "run", "build_parameter_space": "run", "build_model": "run", "train": "run",
    "config_changes": "run", "RESUME_MAY_CHANGE": "run", "pretrain_orbitals": "run", "evaluate_checkpoint": "run",
    "state_at_values": "run",
    # qernel.reference
    "bloch_slater_energy": "reference",
}
