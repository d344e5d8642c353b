"""The package's layering, read from the source (ast, nothing imported): issue 16 item 5.

* ``qernel.geometry`` (lattices, supercells, the Hilbert space) is the floor: it imports no other
  qernel subpackage;
* ``ansatz/`` and ``sampler/`` are siblings of ``hamiltonian/``: none of their files imports it;
* no import cycle between qernel's modules anywhere.

Every ``import`` counts, also inside functions (a lazy import hides a cycle from the interpreter,
not from the design) and under ``if TYPE_CHECKING:`` (an annotation is a dependency too). An
import of ``a.b.c`` is an edge to ``a.b.c`` and to the packages ``a.b`` and ``a`` (their
``__init__`` runs first), except to the importing module's own parent packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "qernel"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _imports(tree: ast.AST):
    """Import nodes of a module, wherever they are (top level, functions, ``if`` blocks)."""
    return (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` (see the module docstring for the rules)."""
    modules = _modules(root)
    top = root.name
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
                continue
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets.add(origin)
            targets |= {f"{origin}.{alias.name}" for alias in node.names if f"{origin}.{alias.name}" in modules}
        edges = set()
        own_parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        for target in targets:
            if target != top and not target.startswith(top + "."):
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and prefix not in own_parents:
                    edges.add(prefix)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _imports_of(graph, subpackage: str, forbidden: str) -> list[str]:
    return sorted(f"{module} -> {target}" for module, targets in graph.items()
                  if module == subpackage or module.startswith(subpackage + ".")
                  for target in targets if target == forbidden or target.startswith(forbidden + "."))


GRAPH = import_graph()


def test_the_graph_sees_the_package():
    assert {"qernel.geometry.hilbert", "qernel.hamiltonian.base", "qernel.sampler.rules"} <= set(GRAPH)
    assert "qernel.geometry.hilbert" in GRAPH["qernel.sampler.rules"]
    assert "qernel.geometry" in GRAPH["qernel.sampler.rules"]  # the package's __init__ runs first


def test_ansatz_and_sampler_do_not_import_hamiltonian():
    for subpackage in ("qernel.ansatz", "qernel.sampler"):
        assert _imports_of(GRAPH, subpackage, "qernel.hamiltonian") == []


def test_geometry_is_the_floor():
    for other in ("qernel.hamiltonian", "qernel.ansatz", "qernel.sampler", "qernel.training", "qernel.observables",
                  "qernel.run", "qernel.config"):
        assert _imports_of(GRAPH, "qernel.geometry", other) == []


def test_no_import_cycle():
    assert cycles(GRAPH) == []


def test_the_checks_can_fail(tmp_path):
    """Guard: a lazy import cycle and a forbidden import in a toy package are both reported."""
    root = tmp_path / "toy"
    (root / "ansatz").mkdir(parents=True)
    (root / "hamiltonian").mkdir()
    (root / "__init__.py").write_text("")
    (root / "ansatz" / "__init__.py").write_text("from .model import f\n")
    (root / "ansatz" / "model.py").write_text("def f():\n    from ..hamiltonian.base import H\n")
    (root / "hamiltonian" / "__init__.py").write_text("")
    (root / "hamiltonian" / "base.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..ansatz import f\n"
        "def g():\n    from .ops import Op\n")
    (root / "hamiltonian" / "ops.py").write_text("from . import base\n")
    graph = import_graph(root)
    assert _imports_of(graph, "toy.ansatz", "toy.hamiltonian") == [
        "toy.ansatz.model -> toy.hamiltonian", "toy.ansatz.model -> toy.hamiltonian.base"]
    assert cycles(graph) == [["toy.ansatz", "toy.ansatz.model", "toy.hamiltonian.base", "toy.hamiltonian.ops"]]
