"""Tests of ``qernel reference``: input validation before any compute (Hypothesis) and a tiny end-to-end run."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.cli import main
from qernel.config import MoireSystemConfig, system_config
from qernel.reference.command import MAX_BANDS, ReferenceInputError, validate_reference_inputs

SUPERCELLS = {1: 1, 2: 4, 3: 9, "r3": 3}


def _supercell(key):
    return [[2, 1], [-1, 1]] if key == "r3" else key


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["moire", "moire", "moire", "trap", "electron_gas"]),
    cell=st.sampled_from(sorted(SUPERCELLS, key=str)),
    numerator=st.integers(0, 30),
    denominator=st.integers(1, 9),
    Vs=st.lists(st.floats(-50, 1200, allow_nan=False), min_size=0, max_size=4),
    method=st.sampled_from(["bloch", "hf", "ed", "dmrg"]),
    bands=st.one_of(st.none(), st.integers(-2, 60)),
)
def test_validation_rejects_exactly_the_bad_inputs(kind, cell, numerator, denominator, Vs, method, bands):
    filling = numerator / denominator
    fields = dict(supercell=_supercell(cell), filling=filling) if kind == "moire" else dict(n_electrons=2)
    system = system_config(kind, **fields)
    n_cells = SUPERCELLS[cell]
    n = Fraction(numerator, denominator) * n_cells
    # the independent oracle: which key (if any) must be named
    expected = None
    if method not in ("bloch", "hf", "ed"):
        expected = "--method"
    elif kind != "moire":
        expected = "system.kind"
    elif n.denominator != 1 or n < 1:
        expected = "system.filling"
    elif not Vs:
        expected = "--param V"
    elif any(not 0 <= V <= 1000 for V in Vs):
        expected = "--param V"
    elif method != "ed" and bands is not None:
        expected = "--bands"
    elif method == "ed" and not math.ceil(int(n) / n_cells) <= (1 if bands is None else bands) <= MAX_BANDS:
        expected = "--bands"
    if expected is None:
        checked = validate_reference_inputs(system, method, bands, {"V": Vs})
        assert checked["V"] == Vs and checked["n_electrons"] == int(n)
    else:
        with pytest.raises(ReferenceInputError) as info:
            validate_reference_inputs(system, method, bands, {"V": Vs})
        message = str(info.value)
        assert expected in message and "\n" not in message


def test_only_V_can_be_scanned():
    with pytest.raises(ReferenceInputError, match="only V"):
        validate_reference_inputs(MoireSystemConfig(supercell=2), "hf", None, {"phi": [0.0]})


def _config(tmp_path, **system):
    lines = ["[system]"] + [f"{k} = {json.dumps(v)}" for k, v in system.items()]
    path = tmp_path / "c.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_cli_end_to_end_hf_and_bloch(tmp_path, capsys):
    cfg = _config(tmp_path, kind="moire", supercell=2, filling=1.0, eps=5.0, V=10.0)
    out = tmp_path / "hf.json"
    assert main(["reference", cfg, "--method", "hf", "--param", "V=10,20", "--cutoff", "1.5", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["method"] == "hf" and [r["V_meV"] for r in doc["results"]] == [10.0, 20.0]
    assert all(r["converged"] for r in doc["results"])
    assert "E/N [meV]" in capsys.readouterr().out
    bloch = tmp_path / "bloch.json"
    assert main(["reference", cfg, "--method", "bloch", "--param", "V=10,20", "--cutoff", "1.5", "--json",
                 str(bloch)]) == 0
    for hf, b in zip(doc["results"], json.loads(bloch.read_text())["results"]):
        assert hf["energy_per_electron_meV"] <= b["energy_per_electron_meV"] + 1e-9


def test_cli_bad_input_one_line_error(tmp_path, capsys):
    cfg = _config(tmp_path, kind="moire", supercell=3, filling=0.5)
    assert main(["reference", cfg, "--method", "hf"]) == 2
    err = capsys.readouterr().err.strip()
    assert "system.filling" in err and len(err.splitlines()) == 1
    trap = _config(tmp_path, kind="trap", n_electrons=2)
    assert main(["reference", trap, "--method", "bloch"]) == 2
    assert "system.kind" in capsys.readouterr().err
