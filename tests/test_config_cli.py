"""Shipped example configs, config validation, the ``qernel`` CLI (train / resume / evaluate) and the
example driver scripts, all on tiny models (fast)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import runpy
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel import config as qconfig
from qernel.cli import main
from qernel.config import ConfigError, config_from_dict, load_config
from qernel.run import build_hamiltonian, build_parameter_space

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIGS = sorted((EXAMPLES / "configs").glob("*.toml"))


# -- shipped configs ------------------------------------------------------------------------------
def test_all_issue_configs_are_shipped():
    names = {p.name for p in CONFIGS}
    assert {"moire_foundation.toml", "quantum_dot.toml", "quantum_dot_foundation.toml", "electron_gas.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_loads_and_is_consistent(path):
    """Every shipped config validates, builds its Hamiltonian and parameter space, and its chain
    counts fit the parameter groups (what ``build_run`` checks before any compute)."""
    config = load_config(path)
    hamiltonian = build_hamiltonian(config)
    space = build_parameter_space(config, hamiltonian)
    assert config.sampler.n_chains % space.n_groups == 0
    assert config.sampler.n_samples % config.sampler.n_chains == 0
    assert config.run.output_dir.startswith("runs/")


def test_example_configs_describe_the_systems_of_the_issue():
    moire = load_config(EXAMPLES / "configs" / "moire_foundation.toml")
    ham = build_hamiltonian(moire)
    assert (ham.supercell.n_cells, ham.n_electrons, ham.conditioned_on) == (9, 9, ("V",))
    assert len(moire.parameters.values["V"]) > 1
    dot = build_hamiltonian(load_config(EXAMPLES / "configs" / "quantum_dot.toml"))
    assert (dot.n_up, dot.n_down, dot.parameters["omega"]) == (3, 3, 1.0)
    dot2 = load_config(EXAMPLES / "configs" / "quantum_dot_foundation.toml")
    omegas = dot2.parameters.values["omega"]
    assert build_hamiltonian(dot2).n_electrons == 2 and min(omegas) == 0.5 and max(omegas) == 1.0
    gas = build_hamiltonian(load_config(EXAMPLES / "configs" / "electron_gas.toml"))
    assert gas.supercell.area == pytest.approx(gas.n_electrons * math.pi * gas.parameters["r_s"] ** 2)


# -- rejection of invalid configs -----------------------------------------------------------------
def _base() -> dict:
    return tomllib.loads((EXAMPLES / "configs" / "quantum_dot_foundation.toml").read_text())


@pytest.mark.parametrize(
    "section, key, value, fragment",
    [
        ("sampler", "n_chain", 8, "sampler.n_chain: unknown key"),  # typo of n_chains
        ("run", "checkpoint_evry", 5, "run.checkpoint_evry: unknown key"),
        ("ansatz", "widht", 8, "ansatz.widht: unknown key"),
        ("optimizer", "learning_rate", "fast", "optimizer.learning_rate: must be a number"),
        ("sampler", "n_chains", 8.5, "sampler.n_chains: must be an integer"),
        ("system", "n_electrons", True, "system.n_electrons: must be an integer"),
        ("parameters", "values", [0.5, 1.0], "parameters.values: must be a table"),
        ("sampler", "target_acceptance", 1.5, "sampler.target_acceptance: must lie in (0, 1)"),
        ("optimizer", "learning_rate", -0.1, "optimizer.learning_rate: must be > 0"),
        ("optimizer", "preconditioner", "kfac", "optimizer.preconditioner: must be 'minsr', 'sr', 'spring' or 'none'"),
        ("run", "dtype", "float16", "run.dtype: must be 'float32' or 'float64'"),
        ("sampler", "n_samples", 8, "sampler.n_samples: must be >= n_chains"),
    ],
)
def test_invalid_config_is_rejected_naming_the_key(section, key, value, fragment):
    data = _base()
    data[section][key] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert fragment in str(info.value)


def test_out_of_range_parameter_value_and_unknown_section_are_rejected():
    data = _base()
    data["parameters"]["values"]["omega"] = [-1.0, 1.0]  # a trap frequency must be > 0
    config = config_from_dict(data)
    with pytest.raises(ConfigError, match=r"parameters: parameter omega must lie in"):
        build_parameter_space(config, build_hamiltonian(config))
    data = _base()
    data["optimiser"] = {"n_steps": 3}
    with pytest.raises(ConfigError, match="unknown section"):
        config_from_dict(data)


@pytest.mark.parametrize("supercell", [True, "3x3", 0, 2.5, [[1, 2], [2, 4]], [[1, 0]], [[1, 0], [0, "x"]]])
def test_invalid_moire_supercell_is_rejected_naming_the_key(supercell):
    data = tomllib.loads((EXAMPLES / "configs" / "moire_foundation.toml").read_text())
    data["system"]["supercell"] = supercell
    with pytest.raises(ConfigError, match=r"system.supercell: must be a positive integer n .* or a 2x2 integer"):
        config_from_dict(data)


@pytest.mark.parametrize("supercell", [3, [[2, 1], [-1, 1]]])
def test_valid_moire_supercells_are_accepted(supercell):
    data = tomllib.loads((EXAMPLES / "configs" / "moire_foundation.toml").read_text())
    data["system"]["supercell"] = supercell
    assert config_from_dict(data).system.supercell == supercell


# every typed field (``system``: the fields of the base config's kind, a trap; ``Any`` fields such as the
# moiré ``supercell`` are checked in the kind's ``validate``)
_FIELDS = [
    (section, f.name, f.type)
    for section, cls in {**qconfig._SECTIONS, "system": qconfig.TrapSystemConfig}.items()
    if cls is not qconfig.AnsatzConfig
    for f in dataclasses.fields(cls)
    if "Any" not in str(f.type)
]


@settings(max_examples=25, deadline=None)
@given(field=st.sampled_from(_FIELDS), junk=st.sampled_from([{"a": 1}, [1, "x"], "not-a-number", True]))
def test_any_wrongly_typed_field_is_named(field, junk):
    """Property: a value of the wrong kind in any field is rejected with ``section.key`` in the message."""
    section, key, annotation = field
    text = str(annotation)
    if isinstance(junk, str) and "str" in text:
        return  # a string is a valid value for str fields
    if isinstance(junk, dict) and "dict" in text:
        return
    if isinstance(junk, list) and "list" in text:
        return
    if isinstance(junk, bool) and "bool" in text:
        return
    data = _base()
    data.setdefault(section, {})[key] = junk
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert f"{section}.{key}" in str(info.value)


# -- the CLI on a tiny model ----------------------------------------------------------------------
TINY = {
    "system": {"kind": "trap", "n_electrons": 2, "omega": 0.75},
    "parameters": {"type": "grid", "values": {"omega": [0.5, 1.0]}},
    # the CLI plumbing is model-agnostic: the Slater-Jastrow baseline compiles 3x faster than QERNEL
    # (QERNEL runs through the same commands in the example-script tests and tests/test_validation.py)
    "ansatz": {"kind": "slater_jastrow", "jastrow_smooth": 2, "complex_output": False, "log_abs_only": True},
    "sampler": {"n_chains": 8, "n_samples": 64, "n_discard_per_chain": 1, "n_thermalise": 10, "sweep_size": 2},
    "optimizer": {"n_steps": 2, "learning_rate": 0.05, "preconditioner": "minsr", "diag_shift": 1e-2},
    "run": {"seed": 0, "checkpoint_every": 1},
}


def _toml(data: dict) -> str:
    """Minimal TOML writer for the two-level dicts used here."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "\n".join(f"[{s}]\n" + "\n".join(f"{k} = {value(v)}" for k, v in body.items()) + "\n"
                     for s, body in data.items())


def _write_config(directory: Path, name: str, **changes) -> Path:
    data = copy.deepcopy(TINY)
    data["run"]["output_dir"] = str(directory / "run")
    for section, values in changes.items():
        data[section].update(values)
    path = directory / name
    path.write_text(_toml(data))
    return path


def _log(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "run" / "log.jsonl").read_text().splitlines() if line]


def test_cli_train_evaluate_resume(tmp_path, capsys):
    """One run through the CLI life cycle (one test, so that pytest-xdist trains only once):
    ``qernel train`` for 2 steps writes checkpoint and log; training again without ``--resume``
    is refused; ``qernel evaluate`` prints energies at parameter values never trained on and
    rejects unknown parameters; ``--resume`` continues the same run to 3 steps, and once more
    rewrites nothing."""
    path = _write_config(tmp_path, "tiny.toml")
    assert main(["train", str(path), "--no-progress"]) == 0
    checkpoint = tmp_path / "run" / "checkpoint.npz"
    assert checkpoint.is_file()
    log = _log(tmp_path)
    assert [r["step"] for r in log] == [0, 1]
    assert {tuple(g["parameters"].items()) for g in log[0]["groups"]} == {(("omega", 0.5),), (("omega", 1.0),)}
    assert all(math.isfinite(g["energy"]) and g["error"] >= 0 for r in log for g in r["groups"])
    capsys.readouterr()

    # a second `train` must not silently overwrite the run
    assert main(["train", str(path), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err

    # evaluate at omega values that are not in the training grid [0.5, 1.0]
    out = tmp_path / "energies.json"
    assert main(["evaluate", str(checkpoint), "--param", "omega=0.6,0.8", "--n-samples", "64", "--json", str(out),
                 "--unit", "meV"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "omega=0.6" in printed and "omega=0.8" in printed
    assert "E [Ha]" in printed  # the trap's unit, from the Hamiltonian
    assert "--unit is deprecated and ignored: energies are in Ha" in captured.err
    records = json.loads(out.read_text())
    assert {r["unit"] for r in records} == {"Ha"}
    assert [r["parameters"]["omega"] for r in records] == [0.6, 0.8]
    # a loose physical sanity bound: above the non-interacting ground state 2 * omega (Ha)
    assert all(math.isfinite(r["energy"]) and r["energy"] > 2 * r["parameters"]["omega"] for r in records)
    assert main(["evaluate", str(checkpoint), "--param", "V=5"]) == 2
    assert "unknown parameter" in capsys.readouterr().err

    # packaged as a pretrained model: listed with its provenance, evaluated by name to the same numbers
    shelf = tmp_path / "shelf"
    assert main(["export-pretrained", str(checkpoint), "tiny_trap", "--config-file", "tiny.toml",
                 "--description", "tiny test model", "--directory", str(shelf)]) == 0
    os.environ["QERNEL_PRETRAINED_DIR"] = str(shelf)
    try:
        capsys.readouterr()
        assert main(["evaluate", "--list-pretrained"]) == 0
        listed = capsys.readouterr().out
        assert "tiny_trap: tiny test model" in listed and "2 steps" in listed, listed
        again = tmp_path / "energies_pretrained.json"
        assert main(["evaluate", "--pretrained", "tiny_trap", "--param", "omega=0.6,0.8", "--n-samples", "64",
                     "--json", str(again)]) == 0
        assert json.loads(again.read_text()) == records
        assert main(["evaluate", "--pretrained", "nonexistent"]) == 2
        assert "available: tiny_trap" in capsys.readouterr().err
    finally:
        del os.environ["QERNEL_PRETRAINED_DIR"]

    # resume to a longer run: the log continues, the checkpoint advances
    longer = _write_config(tmp_path, "tiny3.toml", optimizer={"n_steps": 3})
    assert main(["train", str(longer), "--resume", "--no-progress"]) == 0
    assert [r["step"] for r in _log(tmp_path)] == [0, 1, 2]
    from qernel.training.checkpoint import load_checkpoint

    assert load_checkpoint(checkpoint)["step"] == 3

    # resuming the finished run again takes no step and rewrites nothing (the previous checkpoint
    # stays a different step; the demo relies on this too)
    files = [checkpoint, tmp_path / "run" / "checkpoint.prev.npz", tmp_path / "run" / "log.jsonl"]
    before = [(f.stat().st_mtime_ns, f.read_bytes()) for f in files]
    assert main(["train", str(longer), "--resume", "--no-progress"]) == 0
    assert [(f.stat().st_mtime_ns, f.read_bytes()) for f in files] == before
    assert load_checkpoint(files[1])["step"] == 2


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    path = _write_config(tmp_path, "fresh.toml")
    assert main(["train", str(path), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint not found" in err and str(tmp_path / "run" / "checkpoint.npz") in err


def test_invalid_config_via_cli_exits_2_naming_the_key(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(_toml(TINY).replace("n_chains = 8", "n_chain = 8"))
    assert main(["train", str(path)]) == 2
    assert "sampler.n_chain" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.toml")]) == 2
    assert "not found" in capsys.readouterr().err


# -- the example driver scripts -------------------------------------------------------------------
def _script(name: str):
    sys.path.insert(0, str(EXAMPLES))
    try:
        return runpy.run_path(str(EXAMPLES / name), run_name="qernel_example")
    finally:
        sys.path.remove(str(EXAMPLES))


def test_custom_hamiltonian_example_runs(tmp_path):
    module = _script("custom_hamiltonian.py")
    ham = module["AnharmonicDot"](2, omega=1.0, g=0.0, conditioned_on=("g",))
    positions = np.array([[0.3, -0.2], [-0.5, 0.4]])
    expected = 0.5 * np.sum(positions**2) + 0.1 * np.sum(np.sum(positions**2, axis=-1) ** 2)
    assert float(ham.one_body_energy(positions, np.array([0.1]))) == pytest.approx(expected)
    stats = module["main"](["--steps", "2", "--samples", "96", "--chains", "12", "--output-dir", str(tmp_path)])
    assert [s["parameters"]["g"] for s in stats] == [0.0, 0.1, 0.5]
    assert all(math.isfinite(s["energy"]) for s in stats)
    assert (tmp_path / "checkpoint.npz").is_file()


@pytest.mark.slow  # ~4 min on a loaded 2-core machine; the CLI tests above cover the same machinery
def test_moire_foundation_example_runs(tmp_path):
    """The composed moiré pipeline on a 1x1 cell (N = 1) to stay fast; evaluation includes V never trained on."""
    module = _script("moire_foundation.py")
    stats = module["main"](["--steps", "2", "--supercell", "1", "--samples", "128", "--chains-per-value", "4",
                            "--width", "8", "--layers", "1", "--eval-samples", "192", "--output-dir", str(tmp_path)])
    assert [s["parameters"]["V"] for s in stats] == [2.0, 5.0, 8.0, 15.0, 20.0, 25.0]
    assert all(math.isfinite(s["energy"]) for s in stats)
    assert (tmp_path / "log.jsonl").is_file()


def test_validation_scripts_parse_their_configs():
    """The validation scripts build valid configs (the slow runs are in tests/test_validation.py)."""
    trap = _script("validate_trap.py")
    data = trap["config_dict"](trap["N2_CONFIG"], optimizer={"n_steps": 1})
    assert config_from_dict(data).optimizer.n_steps == 1
    data = trap["config_dict"]("quantum_dot.toml", run={"output_dir": "x"})
    assert config_from_dict(data).system.n_electrons == 6
    moire = _script("validate_moire.py")
    assert config_from_dict(moire["_demo"](3, "x")).optimizer.n_steps == 3


# -- bad physical input ----------------------------------------------------------------------------
def test_negative_moire_depth_is_rejected_naming_phi_plus_180():
    from qernel.hamiltonian import MoireHamiltonian

    with pytest.raises(ValueError, match=r"V must be >= 0 meV, got -5.0: .* V = 5 with phi = 225 deg"):
        MoireHamiltonian(V=-5.0, phi=45.0, m_star=0.35, a_M=8.031, eps=5.0)
    data = tomllib.loads((EXAMPLES / "configs" / "moire_foundation.toml").read_text())
    data["parameters"]["values"]["V"] = [-5.0, 5.0]
    config = config_from_dict(data)
    with pytest.raises(ConfigError, match=r"parameters: parameter V must be >= 0 meV.*phi \+ 180 deg"):
        build_parameter_space(config, build_hamiltonian(config))


def test_fixed_value_of_a_carried_parameter_outside_its_range_is_rejected(tmp_path):
    text = (EXAMPLES / "configs" / "moire_foundation.toml").read_text()
    assert "\nV = 15.0" in text  # inside the carried grid 2..25: the reference value, accepted
    load_config(EXAMPLES / "configs" / "moire_foundation.toml")
    path = tmp_path / "fixed.toml"
    path.write_text(text.replace("\nV = 15.0", "\nV = 40.0"))
    with pytest.raises(ConfigError, match=r"system.V: 40.0 lies outside the values the chains carry \(2.0 .. 25.0"):
        load_config(path)


# -- CLI polish ------------------------------------------------------------------------------------
def test_help_and_version_do_not_import_jax():
    """``qernel --help`` is fast: neither JAX nor NetKet is imported before a command needs them."""
    import subprocess

    code = ("import sys\nfrom qernel.cli import main\n"
            "for argv in (['--help'], ['--version'], ['train', '--help'], ['evaluate', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('HEAVY', sorted(m for m in ('jax', 'netket', 'haiku', 'optax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "HEAVY []" in out and "qernel 0.1.0" in out


def test_every_cli_option_has_help_text():
    from qernel.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.dest != "help":
                assert action.help, f"qernel {name} {action.option_strings or action.dest} has no help text"
