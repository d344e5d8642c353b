"""The documentation: every public name is in the API reference; the docs build with -W (slow).

The API pages (``docs/api/*.rst`` and the pages ``docs/_ext/qernel_docs.py`` generates at build
time) document modules with ``automodule`` (which follows each module's ``__all__``) and, per
subpackage, ``qernel-submodules`` (each module's public names that the subpackage does not
re-export). These tests check, without running Sphinx, that every name of
``qernel.__all__`` and of every documented module's ``__all__`` lands on some page, and that every
public module of qernel has a page. The slow tests run the real builds.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

import qernel

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api"

# The docs extra (Sphinx & co.) is needed; CI installs it (pip install -e ".[test,docs]"). Without it
# the whole module is reported as skipped instead of breaking the collection of the test suite.
pytest.importorskip("sphinx", reason='documentation tests need the docs extra: pip install -e ".[docs]"')
sys.path.insert(0, str(DOCS / "_ext"))
import qernel_docs  # noqa: E402  (docs/_ext/qernel_docs.py, the local Sphinx extension)


def _api_sources() -> str:
    """The reST of the API reference: the hand-written pages and those generated at build time."""
    written = [path.read_text() for path in sorted(API.glob("*.rst"))]
    return "\n".join(written + list(qernel_docs.api_pages().values()))


def _documented_modules() -> tuple[set[str], set[str]]:
    """(modules with ``automodule`` + ``:members:``, packages with ``qernel-submodules``)."""
    text = _api_sources()
    with_members = set()
    for match in re.finditer(r"^\.\. automodule:: (\S+)\n((?:[ \t]+:.*\n)*)", text, re.M):
        if re.search(r":members:", match.group(2)):
            with_members.add(match.group(1))
    submodule_packages = set(re.findall(r"^\.\. qernel-submodules:: (\S+)", text, re.M))
    return with_members, submodule_packages


def _locations(obj, name: str) -> list[str]:
    """API-reference locations (``module.name``) where ``obj`` is documented under ``name``."""
    with_members, submodule_packages = _documented_modules()
    found = []
    for target in re.findall(r"^\.\. auto(?:function|class|data):: (\S+)", _api_sources(), re.M):
        # objects documented one by one on a hand-written page (qernel.pin_to_one_cpu)
        if target.rsplit(".", 1)[-1] == name and qernel_docs.import_object(target) is obj:
            found.append(target)
    for module_name in with_members:
        module = importlib.import_module(module_name)
        if name in getattr(module, "__all__", ()) and getattr(module, name, None) is obj:
            found.append(f"{module_name}.{name}")
    for package_name in submodule_packages:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_") or qernel_docs.is_moved(f"{package_name}.{info.name}"):
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            if name in getattr(module, "__all__", ()) and getattr(module, name, None) is obj \
                    and not qernel_docs._is_reexported(package, name, obj):  # as the directive does
                found.append(f"{module.__name__}.{name}")
    return found


def _undocumented(namespace: ModuleType, names) -> list[str]:
    """Names of ``namespace`` that no API page documents (modules: need their own page)."""
    with_members, _ = _documented_modules()
    missing = []
    for name in names:
        obj = getattr(namespace, name)
        if isinstance(obj, ModuleType):
            if obj.__name__ not in with_members:
                missing.append(name)
        elif not _locations(obj, name):
            missing.append(name)
    return missing


def _public_modules() -> list[str]:
    return [f"qernel.{info.name}" for info in pkgutil.iter_modules(qernel.__path__) if not info.name.startswith("_")]


def test_every_name_of_qernel_all_is_in_the_api_reference():
    assert hasattr(qernel, "__all__"), "qernel/__init__.py must define __all__ (the top-level public names)"
    assert qernel.__all__, "qernel.__all__ is empty"
    unknown = [name for name in qernel.__all__ if not hasattr(qernel, name)]
    assert not unknown, f"qernel.__all__ names attributes that qernel lacks: {unknown}"
    missing = _undocumented(qernel, qernel.__all__)
    assert not missing, f"in qernel.__all__ but documented on no page of docs/api/: {missing}"


def test_every_public_module_has_an_api_page():
    with_members, _ = _documented_modules()
    missing = [name for name in _public_modules() if name not in with_members]
    assert not missing, f"public modules without an automodule :members: page in docs/api/: {missing}"


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_name_of_a_documented_module_is_documented(module_name):
    module = importlib.import_module(module_name)
    names = list(getattr(module, "__all__", ()))
    absent = [name for name in names if not hasattr(module, name)]
    assert not absent, f"{module_name}.__all__ names missing attributes: {absent}"
    assert not _undocumented(module, names)


def test_the_coverage_check_can_fail(monkeypatch):
    """Guard: a public name that no page documents is reported."""
    fake = ModuleType("qernel_fake")
    fake.__all__ = ["make_qernel", "not_documented_anywhere"]
    from qernel.ansatz import make_qernel

    fake.make_qernel = make_qernel
    fake.not_documented_anywhere = lambda: None
    assert _undocumented(fake, fake.__all__) == ["not_documented_anywhere"]
    assert _locations(make_qernel, "make_qernel") == ["qernel.ansatz.make_qernel"]


# -- the docstring sanitiser of docs/_ext/qernel_docs.py ------------------------------------------


def test_absolute_values_are_not_substitutions():
    lines = ["Energy ``|x|`` and |r_i - r_j| and :math:`|q|`."]
    assert qernel_docs.sanitise_docstring_lines(lines) == ["Energy ``|x|`` and \\|r_i - r_j\\| and :math:`|q|`."]


def test_indented_formula_after_a_plain_paragraph_becomes_a_literal_block():
    lines = ["The model:", "", "    H = |r| + V", "        continued", "", "Text |a|."]
    assert qernel_docs.sanitise_docstring_lines(lines) == [
        "The model:", "", "::", "", "    H = |r| + V", "        continued", "", "Text \\|a\\|.",
    ]


def test_literal_blocks_doctests_lists_and_fields_are_left_alone():
    lines = [
        "Layout::", "", "    x = |r|", "",
        ">>> abs(-1) | 0", "1", "",
        "* item", "  continued |a|", "",
        "  second paragraph of the item", "",
        ":param x: text", "",
        "    more about x",
    ]
    out = qernel_docs.sanitise_docstring_lines(lines)
    assert out[:7] == lines[:7]
    assert out[8] == "  continued \\|a\\|"
    assert out[10] == "  second paragraph of the item"
    assert out[-1] == "    more about x" and "::" not in out[11:]


# -- the builds (slow: the tutorials train small models) ------------------------------------------


def _sphinx(builder: str, out: Path, execute: bool) -> subprocess.CompletedProcess:
    env = dict(os.environ, QERNEL_DOCS_EXECUTE="1" if execute else "0", QERNEL_DOCS_INTERSPHINX="0",
               MPLBACKEND="Agg")
    command = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", builder, str(DOCS), str(out)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
def test_html_build_with_warnings_as_errors_and_executed_tutorials(tmp_path):
    start = time.perf_counter()
    result = _sphinx("html", tmp_path, execute=True)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stderr[-5000:]}"
    print(f"html build with tutorials: {elapsed:.0f} s")
    # the tutorials' outputs in the HTML are real outputs
    for page in sorted((DOCS / "tutorials").glob("tutorial_*.py")):
        html = (tmp_path / "auto_tutorials" / f"{page.stem}.html").read_text()
        assert "sphx-glr-script-out" in html, f"{page.name}: no captured output in the HTML"
    tutorial = (tmp_path / "auto_tutorials" / "tutorial_01_noninteracting.html").read_text()
    assert "Monte Carlo energy:" in tutorial
    # every top-level name is an object of the inventory
    from sphinx.util.inventory import InventoryFile

    with open(tmp_path / "objects.inv", "rb") as handle:
        inventory = InventoryFile.load(handle, "", lambda base, uri: uri)
    documented = {name for entries in inventory.data.values() for name in entries} if hasattr(inventory, "data") \
        else {name for entries in inventory.values() for name in entries}
    missing = [name for name in getattr(qernel, "__all__", ())
               if not isinstance(getattr(qernel, name), ModuleType)
               and not set(_locations(getattr(qernel, name), name)) & documented]
    assert not missing, f"not in objects.inv: {missing}"


@pytest.mark.slow
def test_doctests_of_the_documentation_pages_pass(tmp_path):
    result = _sphinx("doctest", tmp_path, execute=False)
    assert result.returncode == 0, f"sphinx-build -b doctest failed:\n{result.stdout[-5000:]}\n{result.stderr[-3000:]}"


def test_shared_attribute_fields_are_split():
    lines = [":ivar a, b: text", "    more", ":ivar c: other"]
    assert qernel_docs.sanitise_docstring_lines(lines) == [
        ":ivar a: text", "    more", ":ivar b: text", "    more", ":ivar c: other",
    ]
