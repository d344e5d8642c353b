"""Issue 16 item 7: one config class per [system] / [ansatz] kind, foreign keys rejected naming the
kind, a user-extensible kind registry, and every shipped or stored configuration still loads."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import tomllib
from pathlib import Path

import pytest

from qernel import config as qconfig
from qernel.config import (
    ConfigError,
    MoireSystemConfig,
    TrapSystemConfig,
    config_from_dict,
    load_config,
    register_system,
    system_config,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "examples" / "configs").glob("*.toml"))
TRAP = {"system": {"kind": "trap", "n_electrons": 2}, "parameters": {"type": "none"}}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_example_config_loads_and_round_trips(path):
    config = load_config(path)
    assert config.system_kind == tomllib.loads(path.read_text())["system"].get("kind", "moire")
    assert config_from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_benchmark_configs_load():
    """The configurations the benchmark scripts build as dicts (the others read examples/configs)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("_optimisation", ROOT / "benchmarks" / "optimisation.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    for system in module.SYSTEMS:
        for variant in module.VARIANTS:
            assert config_from_dict(module.make_config(system, variant, 0)).system_kind == "moire"


def _stored_configs():
    """Every full run configuration stored in the committed result files (written by older qernel)."""
    found = []

    def walk(value, where):
        if isinstance(value, dict):
            if {"system", "ansatz", "sampler"} <= set(value):
                found.append(pytest.param(value, id=where))
                return
            for key, item in value.items():
                walk(item, where)
        elif isinstance(value, list):
            for item in value:
                walk(item, where)

    for path in sorted([*ROOT.glob("examples/*/*.json"), *ROOT.glob("benchmarks/results/*.json")]):
        walk(json.loads(path.read_text()), path.name)
    return found


@pytest.mark.parametrize("stored", _stored_configs())
def test_stored_configs_load_as_checkpoint_configs(stored):
    config = config_from_dict(stored, checkpoint=True)
    assert config_from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_old_checkpoint_config_loads_and_strict_loading_names_the_foreign_keys():
    """The shipped model's checkpoint holds the old single [system] table (trap and gas keys too)."""
    from qernel.pretrained import pretrained_checkpoint
    from qernel.run import config_changes
    from qernel.training.checkpoint import load_checkpoint

    stored = load_checkpoint(pretrained_checkpoint("nu23_3x3"))["config"]
    assert {"omega", "r_s", "cell"} <= set(stored["system"])
    config = config_from_dict(stored, checkpoint=True)
    assert isinstance(config.system, MoireSystemConfig) and config.system.n_electrons == 6
    assert config_changes(stored, config) == []  # a resume of such a checkpoint sees no change
    with pytest.raises(ConfigError) as info:
        config_from_dict(stored)
    assert str(info.value).startswith("[system] kind = \"moire\" does not take 'omega', 'r_s', 'cell';")


@pytest.mark.parametrize(
    "system, message",
    [
        ({"kind": "moire", "omega": 1.0, "r_s": 2.0}, "[system] kind = \"moire\" does not take 'omega', 'r_s';"),
        ({"kind": "trap", "n_electrons": 2, "supercell": 3}, "[system] kind = \"trap\" does not take 'supercell';"),
        ({"kind": "electron_gas", "n_electrons": 2, "V": 3.0}, "[system] kind = \"electron_gas\" does not take 'V';"),
        ({"kind": "moire", "omgea": 1.0}, "system.omgea: unknown key for [system] kind = \"moire\"; allowed:"),
        ({"kind": "dot"}, "system.kind: must be one of ['electron_gas', 'moire', 'trap'], got 'dot'"),
    ],
)
def test_foreign_system_keys_are_rejected_naming_them_and_the_kind(system, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"system": system, "parameters": {"type": "none"}})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_foreign_ansatz_keys_are_rejected_naming_them_and_the_kind():
    with pytest.raises(ConfigError) as info:
        config_from_dict({**TRAP, "ansatz": {"kind": "slater_jastrow", "num_experts": 64, "width": 8}})
    assert str(info.value).startswith("[ansatz] kind = \"slater_jastrow\" does not take 'num_experts', 'width';")
    sj = config_from_dict({**TRAP, "ansatz": {"kind": "slater_jastrow", "n_basis": 3, "jastrow_smooth": 2}})
    assert sj.ansatz.settings().n_basis == 3
    with pytest.raises(ConfigError, match="ansatz.n_basis: must be an integer"):
        config_from_dict({**TRAP, "ansatz": {"kind": "slater_jastrow", "n_basis": 2.5}})


def test_system_config_classes_hold_only_their_kinds_keys():
    moire = {f.name for f in dataclasses.fields(MoireSystemConfig)}
    trap = {f.name for f in dataclasses.fields(TrapSystemConfig)}
    assert not {"omega", "r_s", "cell"} & moire and not {"V", "supercell", "r_s"} & trap
    assert isinstance(system_config("trap", n_electrons=3), TrapSystemConfig)
    with pytest.warns(DeprecationWarning):
        assert qconfig.SystemConfig(supercell=2) == MoireSystemConfig(supercell=2)


def test_carried_parameter_in_system_is_its_default_value(tmp_path):
    """[system] V beside a carried V is the documented default value (examples/configs do this);
    one outside the carried range is refused."""
    base = (ROOT / "examples" / "configs" / "moire_foundation.toml").read_text()
    assert "V = 15.0" in base
    path = tmp_path / "c.toml"
    path.write_text(base)
    assert load_config(path).system.V == 15.0
    path.write_text(base.replace("V = 15.0", "V = 40.0"))
    with pytest.raises(ConfigError, match="system.V: 40.0 lies outside the values the chains carry"):
        load_config(path)


# -- the registry ----------------------------------------------------------------------------------

@dataclasses.dataclass
class _SquareWellConfig:
    n_electrons: int = 2
    omega: float = 1.0

    def validate(self):
        if self.n_electrons < 1:
            raise ConfigError(f"system.n_electrons: must be >= 1, got {self.n_electrons}")


def _build_square_well(config, conditioned_on):
    from qernel.hamiltonian import HarmonicTrap

    return HarmonicTrap(config.n_electrons, config.omega, conditioned_on=conditioned_on)


@pytest.fixture
def user_kind():
    register_system("user_trap", _SquareWellConfig, _build_square_well)
    yield "user_trap"
    qconfig._SYSTEM_KINDS.pop("user_trap")


def test_a_registered_system_kind_is_usable_from_a_config(user_kind):
    from qernel.run import build_hamiltonian, build_model, build_parameter_space

    data = {"system": {"kind": user_kind, "n_electrons": 3, "omega": 0.5},
            "parameters": {"type": "grid", "values": {"omega": [0.5, 1.0]}},
            "ansatz": {"kind": "slater_jastrow"}}
    config = config_from_dict(data)
    assert config.system_kind == user_kind and config.to_dict()["system"]["kind"] == user_kind
    ham = build_hamiltonian(config)
    assert ham.n_electrons == 3 and ham.conditioned_on == ("omega",)
    build_model(config, ham, build_parameter_space(config, ham))
    with pytest.raises(ConfigError, match="system.n_electrons: must be >= 1"):
        config_from_dict({**data, "system": {"kind": user_kind, "n_electrons": 0}})
    with pytest.raises(ConfigError, match=f"\\[system\\] kind = \"{user_kind}\" does not take 'supercell'"):
        config_from_dict({**data, "system": {"kind": user_kind, "supercell": 2}})


def test_registry_refuses_duplicates_and_non_dataclasses(user_kind):
    with pytest.raises(ValueError, match="'user_trap' is already registered"):
        register_system(user_kind, _SquareWellConfig, _build_square_well)
    with pytest.raises(TypeError, match="must be a dataclass"):
        register_system("other", dict, _build_square_well)
    register_system(user_kind, _SquareWellConfig, _build_square_well, replace=True)


def test_a_builder_ignoring_the_carried_parameters_is_caught(user_kind):
    from qernel.run import build_hamiltonian

    register_system(user_kind, _SquareWellConfig, lambda c, names: _build_square_well(c, ()), replace=True)
    config = config_from_dict({"system": {"kind": user_kind}, "parameters": {"type": "grid", "values": {"omega": [1.0]}}})
    with pytest.raises(ConfigError, match="returned a Hamiltonian conditioned on \\[\\], expected \\['omega'\\]"):
        build_hamiltonian(config)
