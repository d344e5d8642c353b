"""The curated top level of ``qernel`` (issue 16 item 2).

``qernel.__all__`` is a short list of the names a script needs; every other name that the top
level offered before still resolves, with a DeprecationWarning naming its new place; no top-level
name shadows a NetKet class of the same name with another meaning.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

import qernel
from qernel._moved import MOVED, REMOVAL_VERSION

#: NetKet namespaces a NetKet user has in mind when reading ``qernel.X``
NETKET_NAMESPACES = (
    "netket", "netket.operator", "netket.hilbert", "netket.sampler", "netket.sampler.rules", "netket.vqs",
    "netket.driver", "netket.graph", "netket.models", "netket.nn", "netket.optimizer", "netket.logging",
    "netket.stats", "netket.jax", "netket.experimental", "netket.experimental.hilbert",
    "netket.experimental.geometry", "netket.experimental.operator", "netket.experimental.driver",
)


def test_the_top_level_is_curated():
    assert 20 <= len(qernel.__all__) <= 30, len(qernel.__all__)
    assert len(set(qernel.__all__)) == len(qernel.__all__)
    assert "pin_to_one_cpu" in qernel.__all__ and "FoundationVMC" in qernel.__all__


def test_every_curated_name_resolves_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for name in qernel.__all__:
            value = getattr(qernel, name)
            module = getattr(value, "__module__", None)
            if module is not None:  # functions and classes come from a qernel module
                assert module.startswith("qernel."), (name, module)


def test_curated_and_moved_names_are_disjoint_and_moved_ones_exist_where_the_warning_says():
    assert not set(MOVED) & set(qernel.__all__)
    for name, subpackage in MOVED.items():
        assert hasattr(importlib.import_module(f"qernel.{subpackage}"), name), (name, subpackage)


@pytest.mark.parametrize("name", ["safe_norm", "KineticEnergy", "PotentialEnergy", "group_sample_weights",
                                  "bloch_slater_energy"])
def test_a_removed_name_warns_and_still_works(name):
    where = f"qernel.{MOVED[name]}"
    with pytest.warns(DeprecationWarning, match=rf"qernel\.{name} is deprecated .* {REMOVAL_VERSION}: use {where}\.{name}"):
        value = getattr(qernel, name)
    assert value is getattr(importlib.import_module(where), name)


def test_from_import_of_a_removed_name_warns():
    with pytest.warns(DeprecationWarning, match="qernel.safe_norm is deprecated"):
        from qernel import safe_norm  # noqa: F401


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        qernel.not_a_name  # noqa: B018


def _shadowing(names, resolve) -> list[str]:
    """Names that some NetKet namespace defines as a different object than ``resolve(name)``."""
    found = []
    for module_name in NETKET_NAMESPACES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found += [f"{name} (NetKet: {module_name}.{name})" for name in names
                  if hasattr(module, name) and getattr(module, name) is not resolve(name)]
    return found


def test_no_top_level_name_shadows_a_netket_name():
    shadowing = _shadowing(qernel.__all__, lambda name: getattr(qernel, name))
    assert not shadowing, shadowing


def test_the_shadowing_check_can_fail():
    """Guard: the old top-level names KineticEnergy and Lattice are reported."""
    names = ["KineticEnergy", "Lattice", "make_qernel"]
    found = _shadowing(names, lambda name: getattr(importlib.import_module(f"qernel.{MOVED.get(name, 'ansatz')}"), name))
    assert found == ["KineticEnergy (NetKet: netket.operator.KineticEnergy)", "Lattice (NetKet: netket.graph.Lattice)"]


@pytest.mark.parametrize("old, new, name", [
    ("qernel.hamiltonian.lattice", "qernel.geometry.lattice", "Supercell"),
    ("qernel.hamiltonian.hilbert", "qernel.geometry.hilbert", "ElectronHilbert"),
    ("qernel.sampler.hilbert_random", "qernel.geometry.random_state", "electron_random_state"),
])
def test_old_module_paths_warn_and_reexport(old, new, name):
    sys.modules.pop(old, None)  # a first import in this process warns
    with pytest.warns(DeprecationWarning, match=rf"{old} is deprecated and will be removed in qernel {REMOVAL_VERSION}: "
                                                rf"import from {new}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    assert name in module.__all__


def test_geometry_names_of_qernel_hamiltonian_warn_and_still_work():
    import qernel.geometry
    import qernel.hamiltonian

    assert "Supercell" not in qernel.hamiltonian.__all__
    with pytest.warns(DeprecationWarning, match="qernel.hamiltonian.Supercell is deprecated .* use qernel.geometry.Supercell"):
        assert qernel.hamiltonian.Supercell is qernel.geometry.Supercell
