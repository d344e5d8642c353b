"""Run configuration: TOML files validated before any compute.

A configuration has the sections ``system``, ``parameters``, ``ansatz``, ``sampler``,
``optimizer`` and ``run``, and optionally ``pretrain`` (see ``examples/configs/``). Every key is checked: an unknown key, a
wrong type or an out-of-range value raises :class:`ConfigError` naming ``section.key``.

``[system]`` and ``[ansatz]`` have a ``kind``; each kind has its own config dataclass, so a key
of another kind (a trap's ``omega`` in a moiré system) is rejected with the kind named. The kinds
live in a registry, ``kind -> (config class, builder)``, that user code extends with
:func:`register_system` and :func:`register_ansatz` (docs/howto/config_kinds.md).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, get_args, get_origin, get_type_hints

__all__ = [
    "ConfigError",
    "Kind",
    "register_system",
    "register_ansatz",
    "system_kinds",
    "ansatz_kinds",
    "system_kind",
    "system_config",
    "MoireSystemConfig",
    "TrapSystemConfig",
    "ElectronGasSystemConfig",
    "SystemConfig",
    "ParametersConfig",
    "AnsatzConfig",
    "SamplerConfig",
    "OptimizerConfig",
    "RunSettings",
    "PretrainConfig",
    "RunConfig",
    "load_config",
    "config_from_dict",
    "SECTION_DEFAULTS",
]


class ConfigError(ValueError):
    """An invalid configuration (message names the offending ``section.key``)."""


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _quoted(keys) -> str:
    return ", ".join(repr(k) for k in keys)


def _reject_foreign(section: str, kind: str, foreign: list[str], allowed: list[str], registry: dict) -> None:
    """Raise the one-line :class:`ConfigError` for keys the ``kind`` of ``[section]`` does not take:
    ``section.key: unknown key ...`` for a key no kind takes (a typo), else ``[section] kind = "..."
    does not take ...`` naming the keys and the kind."""
    if not foreign:
        return
    others = {f.name for other, entry in registry.items() if other != kind
              for f in dataclasses.fields(entry.config_class)}
    if len(foreign) == 1 and foreign[0] not in others:
        raise ConfigError(f"{section}.{foreign[0]}: unknown key for [{section}] kind = \"{kind}\"; allowed: {allowed}")
    raise ConfigError(f"[{section}] kind = \"{kind}\" does not take {_quoted(foreign)}; allowed: {allowed}")


# -- the kind registry ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """A registered ``[system]`` or ``[ansatz]`` kind.

    Attributes:
        config_class: a dataclass; its fields are the keys the section takes (besides ``kind``),
            type-checked from their annotations; an optional ``validate(self)`` method raises
            :class:`ConfigError` (or ``ValueError``) for bad values.
        builder: system: ``builder(config, conditioned_on) -> Hamiltonian``, with
            ``conditioned_on`` the tuple of carried parameter names; ansatz: ``builder(config,
            hamiltonian, parameter_space) -> hk.Transformed``.
    """

    config_class: type
    builder: Callable[..., Any]


_SYSTEM_KINDS: dict[str, Kind] = {}
_ANSATZ_KINDS: dict[str, Kind] = {}


def _register(registry: dict[str, Kind], what: str, kind: str, config_class: type, builder, replace: bool) -> None:
    if not (isinstance(kind, str) and kind.isidentifier()):
        raise ValueError(f"register_{what}: kind must be an identifier-like string, got {kind!r}")
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise TypeError(f"register_{what}: config_class must be a dataclass, got {config_class!r}")
    if "kind" in {f.name for f in dataclasses.fields(config_class)}:
        raise ValueError(f"register_{what}: {config_class.__name__} must not have a 'kind' field (the registry "
                         "holds the kind)")
    if not callable(builder):
        raise TypeError(f"register_{what}: builder must be callable, got {builder!r}")
    if kind in registry and not replace:
        raise ValueError(f"register_{what}: kind {kind!r} is already registered; pass replace=True to replace it")
    registry[kind] = Kind(config_class, builder)


def register_system(kind: str, config_class: type, builder: Callable[..., Any], *, replace: bool = False) -> None:
    """Make ``[system] kind = "<kind>"`` available to configuration files, the CLI and
    :func:`qernel.run.build_run`.

    Args:
        kind: the name used in TOML.
        config_class: dataclass of the section's keys (not ``kind``); see :class:`Kind`.
        builder: ``builder(config, conditioned_on: tuple[str, ...]) -> ContinuumHamiltonian``;
            the Hamiltonian must be conditioned on exactly ``conditioned_on``.
        replace: allow replacing an existing kind.

    Raises:
        ValueError: ``kind`` exists and ``replace`` is False; TypeError: not a dataclass / not callable.
    """
    _register(_SYSTEM_KINDS, "system", kind, config_class, builder, replace)


def register_ansatz(kind: str, config_class: type, builder: Callable[..., Any], *, replace: bool = False) -> None:
    """Make ``[ansatz] kind = "<kind>"`` available; ``builder(config, hamiltonian, parameter_space)``
    returns the ``hk.Transformed`` model. Otherwise as :func:`register_system`."""
    _register_builtin_ansatz_kinds()
    _register(_ANSATZ_KINDS, "ansatz", kind, config_class, builder, replace)


def system_kinds() -> dict[str, Kind]:
    """The registered ``[system]`` kinds (a copy)."""
    return dict(_SYSTEM_KINDS)


def ansatz_kinds() -> dict[str, Kind]:
    """The registered ``[ansatz]`` kinds (a copy)."""
    _register_builtin_ansatz_kinds()
    return dict(_ANSATZ_KINDS)


def system_kind(system: Any) -> str:
    """The registered kind of a ``[system]`` config object (looked up by its class)."""
    for kind, entry in _SYSTEM_KINDS.items():
        if type(system) is entry.config_class:
            return kind
    raise ConfigError(f"system: {type(system).__name__} is not the config class of a registered system kind")


def system_config(kind: str, **fields: Any):
    """The ``[system]`` config object of a registered ``kind`` built from keyword fields (checked
    as in a TOML file: a key the kind does not take raises :class:`ConfigError`)."""
    return _system_from_table({"kind": kind, **fields})


@dataclass
class MoireSystemConfig:
    """``[system] kind = "moire"``: :class:`~qernel.hamiltonian.MoireHamiltonian`.

    Keys: V (meV, >= 0; a negative depth is ``|V|`` with ``phi + 180`` deg), phi (deg), m_star
    (m_e), a_M (nm), eps, supercell (int n: n x n cells, or a 2x2 integer matrix), filling,
    n_electrons, n_up, polarized (default true), conditioned_on (default: the carried
    parameters), interaction (1 = physical Coulomb, 0 = non-interacting).

    A key that ``[parameters]`` also carries (e.g. ``V`` beside ``values = { V = [...] }``) is
    the *default value* of that parameter, used where a value is not carried (e.g. ``qernel
    reference`` without ``--param``); the chains carry the ``[parameters]`` values. In a TOML
    file it must lie within the carried range (a value outside it is rejected as a likely
    mistake: a fixed value the chains would silently override).
    """

    kind: ClassVar[str] = "moire"
    V: float = 15.0
    phi: float = 45.0
    m_star: float = 0.35
    a_M: float = 8.031
    eps: float = 5.0
    supercell: Any = 1
    filling: float | None = None
    n_electrons: int | None = None
    n_up: int | None = None
    polarized: bool | None = None
    conditioned_on: list[str] | None = None
    interaction: float = 1.0

    def validate(self) -> None:
        _require(_is_supercell(self.supercell), "system.supercell",
                 "must be a positive integer n (n x n moiré cells) or a 2x2 integer matrix with nonzero "
                 f"determinant, e.g. [[2, 1], [-1, 1]]; got {self.supercell!r}")


@dataclass
class TrapSystemConfig:
    """``[system] kind = "trap"``: :class:`~qernel.hamiltonian.HarmonicTrap` (Hartree atomic units).

    Keys: n_electrons (required), omega (Ha; also sets the envelope length ``1/sqrt(omega)``),
    interaction (Coulomb strength lambda), n_up, polarized, conditioned_on. A carried ``omega``
    or ``interaction`` given here is its default value, as for :class:`MoireSystemConfig`.
    """

    kind: ClassVar[str] = "trap"
    n_electrons: int | None = None
    omega: float = 1.0
    interaction: float = 1.0
    n_up: int | None = None
    polarized: bool | None = None
    conditioned_on: list[str] | None = None

    def validate(self) -> None:
        _require(self.n_electrons is not None, "system.n_electrons", "is required for kind='trap'")


@dataclass
class ElectronGasSystemConfig:
    """``[system] kind = "electron_gas"``: :class:`~qernel.hamiltonian.ElectronGas` (carries no
    parameters). Keys: n_electrons (required), r_s (bohr), cell (``"square"`` or
    ``"triangular"``), n_up, polarized."""

    kind: ClassVar[str] = "electron_gas"
    n_electrons: int | None = None
    r_s: float = 1.0
    cell: str = "square"
    n_up: int | None = None
    polarized: bool | None = None

    def validate(self) -> None:
        _require(self.n_electrons is not None, "system.n_electrons", "is required for kind='electron_gas'")


def SystemConfig(kind: str = "moire", **fields: Any):
    """Deprecated: the ``[system]`` config of a registered ``kind`` (use the kind's class, e.g.
    :class:`MoireSystemConfig`, or :func:`system_config`)."""
    warnings.warn("qernel.config.SystemConfig is deprecated: use the per-kind classes (MoireSystemConfig, "
                  "TrapSystemConfig, ...) or qernel.config.system_config(kind, **fields)", DeprecationWarning,
                  stacklevel=2)
    return system_config(kind, **fields)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_supercell(value: Any) -> bool:
    """A positive int, or a 2x2 nested list of ints with nonzero determinant."""
    if _is_int(value):
        return value >= 1
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(row, (list, tuple)) and len(row) == 2 and all(map(_is_int, row)) for row in value)):
        return False
    (a, b), (c, d) = value
    return a * d - b * c != 0


@dataclass
class ParametersConfig:
    """Which parameter values the chains carry: ``type`` = ``"grid"`` (``values``: name -> list),
    ``"uniform"`` (``low``/``high``: name -> float, ``n_groups``, ``redraw_every`` steps) or
    ``"none"``. ``center``/``scale`` override the network's normalisation."""

    type: str = "grid"
    values: dict[str, list[float]] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    n_groups: int = 4
    redraw_every: int = 0
    thermalise_sweeps: int = 20
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        _require(self.type in ("grid", "uniform", "none"), "parameters.type",
                 f"must be 'grid', 'uniform' or 'none', got {self.type!r}")
        _require(self.n_groups >= 1, "parameters.n_groups", f"must be >= 1, got {self.n_groups}")
        _require(self.redraw_every >= 0, "parameters.redraw_every", f"must be >= 0, got {self.redraw_every}")
        _require(self.thermalise_sweeps >= 0, "parameters.thermalise_sweeps",
                 f"must be >= 0, got {self.thermalise_sweeps}")
        if self.type == "grid":
            _require(len(self.values) > 0, "parameters.values", "a grid needs at least one parameter with values")
            for name, vals in self.values.items():
                _require(len(vals) > 0 and all(math.isfinite(v) for v in vals), f"parameters.values.{name}",
                         f"must be a non-empty list of finite numbers, got {vals}")
        if self.type == "uniform":
            _require(set(self.low) == set(self.high) and self.low, "parameters.low/high",
                     "must name the same parameters")
            for name in self.low:
                _require(self.low[name] < self.high[name], f"parameters.low.{name}",
                         f"must be < high ({self.high[name]}), got {self.low[name]}")


@dataclass
class AnsatzConfig:
    """``[ansatz]``: ``kind`` (a registered ansatz kind: ``"qernel"``, ``"plain_transformer"``,
    ``"slater_jastrow"`` or one added with :func:`register_ansatz`) and its ``options``, the fields
    of the kind's config class (:class:`~qernel.ansatz.QERNELConfig` for ``qernel``,
    :class:`~qernel.ansatz.PlainTransformerConfig` for ``plain_transformer`` (no FiLM, MoE or GQA
    keys), :class:`~qernel.ansatz.SlaterJastrowConfig` for ``slater_jastrow``).
    A key the kind's class does not have is rejected. Left-out ``dtype``: ``[run] dtype``;
    left-out ``n_harmonics`` of a periodic system: the largest entry of the supercell matrix."""

    kind: str = "qernel"
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        kinds = ansatz_kinds()
        _require(self.kind in kinds, "ansatz.kind", f"must be one of {sorted(kinds)}, got {self.kind!r}")
        config_class = kinds[self.kind].config_class
        hints = get_type_hints(config_class)
        allowed = [f.name for f in dataclasses.fields(config_class)]
        _reject_foreign("ansatz", self.kind, [key for key in self.options if key not in allowed], allowed, kinds)
        for key, value in self.options.items():
            _check_type(value, hints[key], f"ansatz.{key}")
        self.settings()

    def settings(self, **defaults: Any):
        """The options as an instance of the kind's config class; ``defaults`` fill keys not given."""
        config_class = ansatz_kinds()[self.kind].config_class
        names = {f.name for f in dataclasses.fields(config_class)}
        options = {**{k: v for k, v in defaults.items() if k in names}, **self.options}
        try:
            return config_class(**options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"ansatz: {error}") from error


@dataclass
class SamplerConfig:
    n_chains: int = 64
    n_samples: int = 1024
    sweep_size: int | None = None
    n_discard_per_chain: int = 10
    n_thermalise: int = 50
    rule: str = "gaussian"
    target_acceptance: float = 0.5
    chunk_size: int | None = None

    def validate(self) -> None:
        _require(self.n_chains >= 1, "sampler.n_chains", f"must be >= 1, got {self.n_chains}")
        _require(self.n_samples >= self.n_chains, "sampler.n_samples",
                 f"must be >= n_chains ({self.n_chains}), got {self.n_samples}")
        _require(self.sweep_size is None or self.sweep_size >= 1, "sampler.sweep_size",
                 f"must be >= 1, got {self.sweep_size}")
        _require(self.n_discard_per_chain >= 0, "sampler.n_discard_per_chain", f"must be >= 0, got {self.n_discard_per_chain}")
        _require(self.n_thermalise >= 0, "sampler.n_thermalise", f"must be >= 0, got {self.n_thermalise}")
        _require(self.rule in ("gaussian", "single"), "sampler.rule", f"must be 'gaussian' or 'single', got {self.rule!r}")
        _require(0 < self.target_acceptance < 1, "sampler.target_acceptance",
                 f"must lie in (0, 1), got {self.target_acceptance}")
        _require(self.chunk_size is None or self.chunk_size >= 1, "sampler.chunk_size", f"must be >= 1, got {self.chunk_size}")


@dataclass
class OptimizerConfig:
    n_steps: int = 200
    kind: str = "sgd"
    learning_rate: float = 0.1
    learning_rate_decay: float = 0.0
    preconditioner: str = "minsr"
    diag_shift: float = 1e-2
    clip_width: float = 5.0
    max_update_norm: float | None = 1.0
    momentum: float = 0.8
    warmup_steps: int = 0

    def validate(self) -> None:
        _require(self.n_steps >= 0, "optimizer.n_steps", f"must be >= 0, got {self.n_steps}")
        _require(self.kind in ("sgd", "adam"), "optimizer.kind", f"must be 'sgd' or 'adam', got {self.kind!r}")
        _require(self.learning_rate > 0, "optimizer.learning_rate", f"must be > 0, got {self.learning_rate}")
        _require(self.learning_rate_decay >= 0, "optimizer.learning_rate_decay",
                 f"must be >= 0 (lr / (1 + decay * step)), got {self.learning_rate_decay}")
        _require(self.preconditioner in ("minsr", "sr", "spring", "none"), "optimizer.preconditioner",
                 f"must be 'minsr', 'sr', 'spring' or 'none', got {self.preconditioner!r}")
        _require(0 <= self.momentum < 1, "optimizer.momentum", f"must lie in [0, 1) (SPRING), got {self.momentum}")
        _require(self.warmup_steps >= 0, "optimizer.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _require(self.diag_shift > 0, "optimizer.diag_shift", f"must be > 0, got {self.diag_shift}")
        _require(self.clip_width > 0, "optimizer.clip_width", f"must be > 0, got {self.clip_width}")
        _require(self.max_update_norm is None or self.max_update_norm > 0, "optimizer.max_update_norm",
                 f"must be > 0, got {self.max_update_norm}")


@dataclass
class PretrainConfig:
    """Orbital pretraining before VMC (:mod:`qernel.training.pretrain`): ``steps`` Adam steps
    (0: off) at ``learning_rate / (1 + learning_rate_decay * step)`` fitting the orbitals to the ``reference`` orbitals of every
    parameter group (``"hartree_fock"``, the default: self-consistent Hartree-Fock orbitals, moiré runs
    carrying V only; ``"bloch"``: non-interacting Bloch orbitals). ``reference_file``: a file of
    stored Hartree-Fock states (:mod:`qernel.reference.hartree_fock_store`; path relative to the
    working directory; "" for none): the groups whose V it holds use them instead of a new
    self-consistent run."""

    steps: int = 0
    learning_rate: float = 3e-3
    learning_rate_decay: float = 0.0
    reference: str = "hartree_fock"
    reference_file: str = ""

    def validate(self) -> None:
        _require(self.steps >= 0, "pretrain.steps", f"must be >= 0, got {self.steps}")
        _require(self.learning_rate > 0, "pretrain.learning_rate", f"must be > 0, got {self.learning_rate}")
        _require(self.learning_rate_decay >= 0, "pretrain.learning_rate_decay",
                 f"must be >= 0 (lr / (1 + decay * step)), got {self.learning_rate_decay}")
        _require(self.reference in ("bloch", "hartree_fock"), "pretrain.reference",
                 f"must be 'bloch' or 'hartree_fock', got {self.reference!r}")
        _require(not self.reference_file or self.reference == "hartree_fock", "pretrain.reference_file",
                 f"holds Hartree-Fock states; set pretrain.reference = 'hartree_fock' (got {self.reference!r}) or remove it")


@dataclass
class RunSettings:
    """``[run]``: ``seed``, ``output_dir``, ``checkpoint_every`` and ``dtype``, the training
    precision: ``"float64"`` (default) or ``"float32"`` (parameters, samples and the model in
    single precision, the natural-gradient solve in float64; JAX's global ``jax_enable_x64`` flag
    is left as NetKet set it). When to use which: docs/howto/precision.md."""

    seed: int = 0
    output_dir: str = "runs/qernel"
    checkpoint_every: int = 25
    dtype: str = "float64"

    def validate(self) -> None:
        _require(self.checkpoint_every >= 1, "run.checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")
        _require(self.dtype in ("float32", "float64"), "run.dtype", f"must be 'float32' or 'float64', got {self.dtype!r}")


@dataclass
class RunConfig:
    """A whole run: one dataclass per TOML section (``system``: the config class of its kind)."""

    system: Any = field(default_factory=lambda: MoireSystemConfig())
    parameters: ParametersConfig = field(default_factory=ParametersConfig)
    ansatz: AnsatzConfig = field(default_factory=AnsatzConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    run: RunSettings = field(default_factory=RunSettings)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    @property
    def system_kind(self) -> str:
        """The registered kind of :attr:`system`."""
        return system_kind(self.system)

    def validate(self) -> "RunConfig":
        kind = self.system_kind
        for section in dataclasses.fields(self):
            value = getattr(self, section.name)
            if hasattr(value, "validate"):
                try:
                    value.validate()
                except ConfigError:
                    raise
                except ValueError as error:
                    raise ConfigError(f"{section.name}: {error}") from error
        if self.pretrain.steps > 0:  # checked here: the reference is built only after the model compiled
            _require(kind == "moire", "pretrain.steps",
                     f"orbital pretraining needs reference orbitals, available for moiré systems only (system.kind = "
                     f"{kind!r}); set pretrain.steps = 0")
            carried = set(self.parameters.values) | set(self.parameters.low) if self.parameters.type != "none" else set()
            _require(self.pretrain.reference != "hartree_fock" or carried <= {"V"}, "pretrain.reference",
                     f"'hartree_fock' supports runs that carry V only, this one carries {sorted(carried)}; use 'bloch'")
        return self

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["system"] = {"kind": self.system_kind, **dataclasses.asdict(self.system)}
        data["ansatz"] = {"kind": self.ansatz.kind, **self.ansatz.options}
        return data


_SECTIONS = {
    "system": None,  # the config class of the section's kind (registry)
    "parameters": ParametersConfig,
    "ansatz": AnsatzConfig,
    "sampler": SamplerConfig,
    "optimizer": OptimizerConfig,
    "run": RunSettings,
    "pretrain": PretrainConfig,
}


def _check_type(value, annotation, key: str):
    """Check ``value`` against a (simple) type annotation; ints are accepted for floats."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if annotation is Any:
        return value
    if origin is not None and type(None) in args:  # Optional[...]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check_type(value, inner[0] if len(inner) == 1 else Any, key)
    if annotation is float:
        _require(isinstance(value, (int, float)) and not isinstance(value, bool), key,
                 f"must be a number, got {type(value).__name__} {value!r}")
        _require(math.isfinite(value), key, f"must be finite, got {value}")
        return float(value)
    if annotation is int:
        _require(_is_int(value), key, f"must be an integer, got {type(value).__name__} {value!r}")
        return value
    if annotation is bool:
        _require(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if annotation is str:
        _require(isinstance(value, str), key, f"must be a string, got {type(value).__name__} {value!r}")
        return value
    if origin is list:
        _require(isinstance(value, list), key, f"must be a list, got {type(value).__name__}")
        return [_check_type(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _require(isinstance(value, dict), key, f"must be a table, got {type(value).__name__}")
        return {k: _check_type(v, args[1], f"{key}.{k}") for k, v in value.items()}
    return value


#: What a section *left out* of a configuration stands for: the CPU recipe measured on a 2-core,
#: 24 GB machine (docs/benchmarks.md: orbital pretraining + SPRING; a 2-block, width-32 QERNEL model
#: of ~30k parameters takes about 6 s of one core per step at N = 6 and 1024 samples, against a
#: Jacobian of 19 GB for the paper-sized :class:`~qernel.ansatz.QERNELConfig` defaults). A key left
#: out of a section that *is* given takes the dataclass default instead. ``pretrain`` applies to
#: moiré systems with the QERNEL ansatz only (reference orbitals, generalized orbitals); ``parameters``: no carried parameter,
#: one state at the ``[system]`` values.
SECTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "parameters": {"type": "none"},
    "ansatz": {"kind": "qernel", "n_layers": 2, "width": 32, "num_heads": 4, "num_kv_heads": 2, "num_experts": 4,
               "top_k": 2, "n_determinants": 2, "film_hidden": 32},
    "optimizer": {"n_steps": 200, "learning_rate": 0.3, "learning_rate_decay": 1e-3, "preconditioner": "spring",
                  "momentum": 0.8, "warmup_steps": 10, "diag_shift": 1e-2, "max_update_norm": 0.5},
    "pretrain": {"steps": 1000, "learning_rate": 1e-2, "reference": "hartree_fock"},
}


def _with_section_defaults(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    system = data.get("system", {})
    kind = system.get("kind", "moire") if isinstance(system, dict) else None  # a non-table is reported later
    ansatz = data.get("ansatz", {})
    ansatz_kind = ansatz.get("kind", "qernel") if isinstance(ansatz, dict) else None
    for name, default in SECTION_DEFAULTS.items():
        # pretraining needs reference orbitals (moiré) and a network with generalized orbitals (qernel)
        if name in data or (name == "pretrain" and (kind != "moire" or ansatz_kind != "qernel")):
            continue
        data[name] = dict(default)
    return data


def _system_from_table(raw: dict[str, Any], *, checkpoint: bool = False):
    """The ``[system]`` config object of ``raw`` (a table with ``kind``; default ``"moire"``)."""
    raw = dict(raw)
    kind = _check_type(raw.pop("kind", "moire"), str, "system.kind")
    kinds = _SYSTEM_KINDS
    _require(kind in kinds, "system.kind", f"must be one of {sorted(kinds)}, got {kind!r}")
    config_class = kinds[kind].config_class
    hints = get_type_hints(config_class)
    allowed = [f.name for f in dataclasses.fields(config_class)]
    if checkpoint and kind in _BUILTIN_SYSTEM_KINDS:
        # a checkpoint of qernel <= 0.x stored the single [system] table of every kind: the keys of other
        # kinds were ignored then, so they are dropped here
        raw = {k: v for k, v in raw.items() if k in allowed or k not in _LEGACY_SYSTEM_KEYS}
    _reject_foreign("system", kind, [key for key in raw if key not in allowed], allowed, kinds)
    kwargs = {key: _check_type(value, hints[key], f"system.{key}") for key, value in raw.items()}
    try:
        return config_class(**kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"system: {error}") from error


def config_from_dict(data: dict[str, Any], *, checkpoint: bool = False) -> RunConfig:
    """Build and validate a :class:`RunConfig` from nested dicts (e.g. parsed TOML); a section
    left out stands for its :data:`SECTION_DEFAULTS` (when it has one).

    Args:
        data: section name -> table.
        checkpoint: ``data`` is a configuration stored in a checkpoint (``RunConfig.to_dict()``),
            possibly by an older qernel whose single ``[system]`` table held the keys of every
            kind and whose ``slater_jastrow`` and ``plain_transformer`` ansatz kinds ignored some
            QERNEL keys (all but the baseline's own; FiLM, MoE and GQA for the plain transformer):
            those keys, ignored when the checkpoint was trained, are dropped instead of rejected.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"configuration must be a table of sections, got {type(data).__name__}")
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}; allowed: {sorted(_SECTIONS)}")
    data = _with_section_defaults(data)
    sections = {}
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        _require(isinstance(raw, dict), name, f"must be a table, got {type(raw).__name__}")
        if name == "system":
            sections[name] = _system_from_table(raw, checkpoint=checkpoint)
            continue
        if cls is AnsatzConfig:
            raw = dict(raw)
            kind = _check_type(raw.pop("kind", "qernel"), str, "ansatz.kind")
            if checkpoint and kind in ("slater_jastrow", "plain_transformer"):
                # the QERNEL keys these baselines ignored when the checkpoint was trained
                from .ansatz.qernel import QERNELConfig

                ignored = {f.name for f in dataclasses.fields(QERNELConfig)}
                ignored -= {f.name for f in dataclasses.fields(ansatz_kinds()[kind].config_class)}
                raw = {k: v for k, v in raw.items() if k not in ignored}
            sections[name] = AnsatzConfig(kind=kind, options=raw)
            continue
        hints = get_type_hints(cls)
        kwargs = {}
        for key, value in raw.items():
            american = key.replace("centre", "center")
            _require(american == key or american not in hints, f"{name}.{key}",
                     f"unknown key: qernel spells it {american!r} (one spelling, 'center')")
            _require(key in hints, f"{name}.{key}", f"unknown key; allowed: {sorted(hints)}")
            kwargs[key] = _check_type(value, hints[key], f"{name}.{key}")
        sections[name] = cls(**kwargs)
    return RunConfig(**sections).validate()


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw tables of a TOML configuration file (a missing file or bad TOML: :class:`ConfigError`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from error


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML configuration file."""
    data = read_toml(path)
    config = config_from_dict(data)
    _check_fixed_values_of_carried_parameters(data.get("system", {}), config)
    return config


def _check_fixed_values_of_carried_parameters(system: dict, config: RunConfig) -> None:
    """A ``[system]`` value written for a carried parameter is its reference value: refuse one outside
    the carried range (a sign that the file meant a fixed value the chains would silently override)."""
    p = config.parameters
    spans = ({n: (min(v), max(v)) for n, v in p.values.items()} if p.type == "grid"
             else {n: (p.low[n], p.high[n]) for n in p.low} if p.type == "uniform" else {})
    for name, (low, high) in spans.items():
        if name in system and not low <= system[name] <= high:
            raise ConfigError(
                f"system.{name}: {system[name]} lies outside the values the chains carry ({low} .. {high}, "
                f"[parameters]); for a carried parameter [system] {name} is only the reference value, not a "
                "fixed one: drop it or give one inside that range"
            )


# -- built-in kinds --------------------------------------------------------------------------------

#: the keys of the single ``[system]`` table of qernel <= 0.x (all kinds at once), in old checkpoints
_LEGACY_SYSTEM_KEYS = frozenset({"V", "phi", "m_star", "a_M", "eps", "supercell", "filling", "n_electrons", "n_up",
                                 "polarized", "conditioned_on", "interaction", "omega", "r_s", "cell"})
_BUILTIN_SYSTEM_KINDS = ("moire", "trap", "electron_gas")


def _build_moire(s: MoireSystemConfig, conditioned_on: tuple[str, ...]):
    from .hamiltonian import MoireHamiltonian

    return MoireHamiltonian(
        s.V, s.phi, s.m_star, s.a_M, s.eps, supercell=s.supercell, n_electrons=s.n_electrons,
        filling=s.filling, n_up=s.n_up, polarized=True if s.polarized is None else s.polarized,
        conditioned_on=conditioned_on, interaction=s.interaction,
    )


def _build_trap(s: TrapSystemConfig, conditioned_on: tuple[str, ...]):
    from .hamiltonian import HarmonicTrap

    return HarmonicTrap(s.n_electrons, s.omega, n_up=s.n_up, polarized=bool(s.polarized),
                        interaction=s.interaction, conditioned_on=conditioned_on)


def _build_electron_gas(s: ElectronGasSystemConfig, conditioned_on: tuple[str, ...]):
    from .hamiltonian import ElectronGas

    if conditioned_on:
        raise ConfigError("system: the electron gas carries no parameters; use [parameters] type = 'none'")
    return ElectronGas(s.n_electrons, s.r_s, cell=s.cell, n_up=s.n_up, polarized=bool(s.polarized))


register_system("moire", MoireSystemConfig, _build_moire)
register_system("trap", TrapSystemConfig, _build_trap)
register_system("electron_gas", ElectronGasSystemConfig, _build_electron_gas)


def _build_qernel(config, hamiltonian, space):
    from .ansatz.qernel import make_qernel

    return make_qernel(config, hamiltonian, space)


def _build_plain_transformer(config, hamiltonian, space):
    from .ansatz.qernel import make_plain_transformer

    return make_plain_transformer(config, hamiltonian, space)


def _build_slater_jastrow(config, hamiltonian, space):
    """The Slater-Jastrow baseline (not conditioned on the parameters: one state for all values)."""
    from .ansatz.slater_jastrow import make_slater_jastrow

    return make_slater_jastrow(config, hamiltonian, space)


def _register_builtin_ansatz_kinds() -> None:
    """Registered on first use: the config classes live in :mod:`qernel.ansatz` (imports JAX)."""
    if "qernel" in _ANSATZ_KINDS:
        return
    from .ansatz.qernel import PlainTransformerConfig, QERNELConfig
    from .ansatz.slater_jastrow import SlaterJastrowConfig

    for kind, config_class, builder in (("qernel", QERNELConfig, _build_qernel),
                                        ("plain_transformer", PlainTransformerConfig, _build_plain_transformer),
                                        ("slater_jastrow", SlaterJastrowConfig, _build_slater_jastrow)):
        _ANSATZ_KINDS.setdefault(kind, Kind(config_class, builder))
