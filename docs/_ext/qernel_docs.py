"""Sphinx helpers for qernel's API reference (local extension, loaded by ``docs/conf.py``).

* The API pages are generated at every build (``docs/api/generated/``, not under version
  control): one page per public module of ``qernel`` with ``automodule`` (which follows the
  module's ``__all__``), so new modules and names appear without editing the docs.
* ``.. qernel-exports::`` -- a table of every name in ``qernel.__all__`` linking to the page where
  it is documented (each object is documented once, in its subpackage; ``qernel.X`` is the same
  object as ``qernel.<subpackage>.X``).
* ``.. qernel-submodules:: qernel.hamiltonian`` -- for every public module of a package, its
  docstring and the names of its own ``__all__`` that the package does not re-export (those are
  documented with the package), generated from the code so new names appear automatically.
* Docstrings written as plain text render as intended: ``|x|`` (absolute values) is not read as
  an rST substitution, an indented formula block after a paragraph without ``::`` is shown
  as a literal block instead of a (mis-indented) block quote, and ``Attributes: a, b: text``
  documents both names.
* Cross-references to a re-export or to an object's defining module (``qernel.MoireHamiltonian``,
  ``qernel.hamiltonian.moire.MoireHamiltonian``) resolve to the documented entry
  (``qernel.hamiltonian.MoireHamiltonian``). A reference to a name of ``qernel.__all__`` that is
  documented nowhere is a warning (an error under ``-W``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode, nested_parse_with_titles

logger = logging.getLogger(__name__)

_MISSING = object()


def import_object(dotted: str):
    """The object named by a dotted path (``pkg.module.Class.attr``), or ``_MISSING``.

    Attributes win over submodules of the same name: ``qernel.observables.measure`` is the
    function the package exports, not the module ``measure.py`` that defines it.
    """
    parts = dotted.split(".")
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:
        return _MISSING
    for i, part in enumerate(parts[1:], start=1):
        value = getattr(obj, part, _MISSING)
        if value is _MISSING and isinstance(obj, ModuleType):
            try:
                value = importlib.import_module(".".join(parts[: i + 1]))
            except ImportError:
                return _MISSING
        if value is _MISSING:
            return _MISSING
        obj = value
    return obj


def import_module_quietly(name: str) -> ModuleType:
    """Import ``name`` without the DeprecationWarning of a moved module's old path (see ``qernel/_shim.py``)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(name)


def is_moved(module_name: str) -> bool:
    """Whether ``module_name`` is only the deprecated old path of a moved module (not documented)."""
    return getattr(import_module_quietly(module_name), "__deprecated__", None) is not None


def public_names(module: ModuleType) -> list[str]:
    """``module.__all__`` (empty if the module declares none)."""
    return list(getattr(module, "__all__", ()))


#: order of the API pages (modules not listed follow alphabetically)
API_ORDER = ("geometry", "hamiltonian", "ansatz", "sampler", "training", "observables", "config", "run", "scan",
             "reference", "cli", "units")


def public_modules(package_name: str = "qernel") -> list[tuple[str, bool]]:
    """``(name, is_package)`` of the public modules of a package, in :data:`API_ORDER`."""
    package = importlib.import_module(package_name)
    modules = [(info.name, info.ispkg) for info in pkgutil.iter_modules(package.__path__)
               if not info.name.startswith("_")]
    rank = {name: i for i, name in enumerate(API_ORDER)}
    return sorted(modules, key=lambda m: (rank.get(m[0], len(rank)), m[0]))


def _attribute_doc(module: ModuleType, name: str) -> list[str] | None:
    """The ``#:`` doc-comment of ``name`` in ``module``'s source (None if there is none)."""
    from sphinx.pycode import ModuleAnalyzer

    try:
        docs = ModuleAnalyzer.for_module(module.__name__).find_attr_docs()
    except Exception:  # noqa: BLE001 - no source (extension module, ...)
        return None
    lines = docs.get(("", name))
    return list(lines) if lines else None


def _imported_data(module: ModuleType) -> list[tuple[str, list[str]]]:
    """``(name, doc lines)`` of the data names in ``module.__all__`` that autodoc skips.

    Sphinx documents module-level data only when the module's own source carries a doc-comment
    for it; data re-exported from a submodule (``WSE2_WS2``) would silently vanish. Their doc is
    taken from the submodule that defines them.
    """
    found = []
    for name in public_names(module):
        obj = getattr(module, name, _MISSING)
        if obj is _MISSING or inspect.isclass(obj) or inspect.isroutine(obj) or isinstance(obj, ModuleType):
            continue
        if _attribute_doc(module, name) is not None:
            continue  # automodule documents it
        doc: list[str] = []
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            if is_moved(f"{module.__name__}.{info.name}"):
                continue
            sub = importlib.import_module(f"{module.__name__}.{info.name}")
            if getattr(sub, name, _MISSING) is obj:
                doc = _attribute_doc(sub, name) or []
                if doc:
                    break
        found.append((name, doc))
    return found


def api_pages() -> dict[str, str]:
    """``{path relative to docs/api: reST text}``: one page per public module and the toctree."""
    pages = {}
    for name, is_package in public_modules():
        full = f"qernel.{name}"
        title = f"``{full}``"
        lines = [title, "=" * len(title), "", f".. automodule:: {full}", "   :members:", "   :undoc-members:",
                 "   :show-inheritance:", ""]
        module = importlib.import_module(full)
        for data_name, doc in _imported_data(module):
            # py:data, not autodata: autodoc would fall back to the docstring of the value's type
            value = " ".join(repr(getattr(module, data_name)).split())
            lines += [f".. py:data:: {data_name}", f"   :module: {full}", f"   :value: {value}", ""]
            lines += [f"   {line}" for line in doc] + [""]
        if is_package:
            lines += ["Modules", "-------", "", f".. qernel-submodules:: {full}", ""]
        pages[f"generated/{name}.rst"] = "\n".join(lines)
    toctree = [".. toctree::", "   :maxdepth: 1", "", "   qernel"]
    toctree += [f"   generated/{name}" for name, _ in public_modules()]
    pages["generated/toctree.inc"] = "\n".join(toctree) + "\n"
    return pages


def write_api_pages(app) -> None:
    """``builder-inited``: (re)write ``docs/api/generated/`` (only files whose text changed)."""
    root = Path(app.srcdir) / "api"
    (root / "generated").mkdir(parents=True, exist_ok=True)
    pages = api_pages()
    for relative, text in pages.items():
        path = root / relative
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    for stale in (root / "generated").glob("*.rst"):
        if f"generated/{stale.name}" not in pages:
            stale.unlink()


def _is_reexported(package: ModuleType, name: str, obj) -> bool:
    return name in public_names(package) and getattr(package, name, _MISSING) is obj


def _summary(name: str, obj) -> str:
    """First line of the documentation of ``qernel.<name>`` (reST), or ``""``."""
    if obj is _MISSING:
        return ""
    if inspect.isclass(obj) or inspect.isroutine(obj) or isinstance(obj, ModuleType):
        doc = obj.__doc__ or ""
        if inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("):
            doc = ""  # the signature dataclasses generate when a class has no docstring
    else:  # data: its doc-comment in the module that defines it
        import qernel

        doc = ""
        for info in pkgutil.walk_packages(qernel.__path__, "qernel."):
            if is_moved(info.name):
                continue
            module = importlib.import_module(info.name)
            if getattr(module, name, _MISSING) is obj and (lines := _attribute_doc(module, name)):
                doc = "\n".join(lines)
                break
    first = inspect.cleandoc(doc).strip().split("\n\n")[0]
    return " ".join(first.split())


class QernelExports(SphinxDirective):
    """Table: name in ``qernel.__all__`` -> link to its documentation, one-line summary."""

    has_content = False

    def run(self):
        import qernel

        names = public_names(qernel)
        if not names:
            para = nodes.paragraph(text="qernel declares no top-level re-exports (no qernel.__all__).")
            return [para]
        table = nodes.table(classes=["qernel-exports"])
        group = nodes.tgroup(cols=2)
        table += group
        group += nodes.colspec(colwidth=35)
        group += nodes.colspec(colwidth=65)
        head = nodes.thead()
        group += head
        row = nodes.row()
        for title in ("qernel.<name>", "summary"):
            entry = nodes.entry()
            entry += nodes.paragraph(text=title)
            row += entry
        head += row
        body = nodes.tbody()
        group += body
        for name in names:
            obj = getattr(qernel, name, _MISSING)
            row = nodes.row()
            ref_entry = nodes.entry()
            para = nodes.paragraph()
            xref = addnodes.pending_xref(
                "", refdomain="py", reftype="obj", reftarget=f"qernel.{name}", refexplicit=True,
                refwarn=True, refdoc=self.env.docname,
            )
            xref += nodes.literal(text=name)
            para += xref
            ref_entry += para
            row += ref_entry
            summary = nodes.entry()
            text = _summary(name, obj)
            if text:
                para = nodes.paragraph()
                inline, messages = self.state.inline_text(_escape_pipes(text), self.lineno)
                para += inline
                summary += para
                summary += messages
            row += summary
            body += row
        return [table]


class QernelSubmodules(SphinxDirective):
    """Docstrings and non-re-exported public names of every public module of a package."""

    required_arguments = 1
    has_content = False

    def run(self):
        package_name = self.arguments[0]
        package = importlib.import_module(package_name)
        lines: list[str] = []
        for info in pkgutil.iter_modules(package.__path__):
            module_name = f"{package_name}.{info.name}"
            if info.name.startswith("_") or is_moved(module_name):
                continue  # a moved module is documented at its new path
            module = importlib.import_module(module_name)
            title = f"``{module_name}``"
            lines += [title, "~" * len(title), "", f".. automodule:: {module_name}", "   :no-members:"]
            if getattr(package, info.name, module) is not module:
                # e.g. the function qernel.observables.structure_factor shadows its module's name
                lines.append("   :no-index:")
            lines.append("")
            for name in public_names(module):
                obj = getattr(module, name, _MISSING)
                if obj is _MISSING:
                    logger.warning(f"{module_name}.__all__ names {name!r}, which the module does not define")
                    continue
                if _is_reexported(package, name, obj):
                    continue
                if inspect.isclass(obj):
                    lines += [f".. autoclass:: {module_name}.{name}", "   :members:", "   :undoc-members:",
                              "   :show-inheritance:", ""]
                elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
                    lines += [f".. autofunction:: {module_name}.{name}", ""]
                else:
                    lines += [f".. autodata:: {module_name}.{name}", "   :no-value:", ""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=f"<qernel-submodules {package_name}>"),
                                 container)
        return container.children


def _documented_entry(env, target: str):
    """The Python-domain entry documenting the same object as ``target`` (or None)."""
    obj = import_object(target)
    if obj is _MISSING:
        return None
    py = env.get_domain("py")
    last = target.rsplit(".", 1)[-1]
    for fullname, entry in py.objects.items():
        if fullname == target or fullname.rsplit(".", 1)[-1] != last or not fullname.startswith("qernel"):
            continue
        if import_object(fullname) is obj:
            return fullname, entry
    return None


def resolve_qernel_reference(app, env, node, contnode):
    """``missing-reference`` handler: map re-exports and defining-module paths to the documented entry."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("qernel"):
        modname = node.get("py:module") or ""
        if not modname.startswith("qernel") or target.startswith(("jax", "np", "numpy", "nk", "netket")):
            return None
        target = f"{modname}.{target.lstrip('.~')}"
    found = _documented_entry(env, target)
    if found is None:
        import qernel

        short = target.removeprefix("qernel.")
        if short in public_names(qernel):
            logger.warning(f"qernel.{short} is in qernel.__all__ but is documented on no API page",
                           location=node)
        return None
    fullname, entry = found
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, fullname)


_BULLET = re.compile(r"^\s*([*+-]|\d+[.)]|#[.)]|\(\d+\))\s+")
_BACKQUOTED = re.compile(r"(``.*?``|`[^`]*`)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _content_indent(line: str) -> int:
    """Indent of the text of a paragraph's first line (past a bullet or enumerator)."""
    match = _BULLET.match(line)
    return len(match.group(0)) if match else _indent(line)


def _escape_pipes(line: str) -> str:
    """Escape ``|`` outside backquoted text, so ``|r_i - r_j|`` is not a substitution reference."""
    parts = _BACKQUOTED.split(line)
    return "".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


_SHARED_FIELD = re.compile(r"^(\s*):(ivar|var|cvar) ([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)+):(.*)$")


def _split_shared_fields(lines: list[str]) -> list[str]:
    """``:ivar a, b: text`` (napoleon's output for ``Attributes: a, b: text``) -> one field per name.

    Sphinx would read ``a,`` as the type of a variable ``b``. Continuation lines are copied.
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _SHARED_FIELD.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, kind, names, text = match.groups()
        j = i + 1
        while j < len(lines) and lines[j].strip() and _indent(lines[j]) > len(indent):
            j += 1
        for name in (n.strip() for n in names.split(",")):
            out.append(f"{indent}:{kind} {name}:{text}")
            out += lines[i + 1 : j]
        i = j
    return out


def sanitise_docstring_lines(lines: list[str]) -> list[str]:
    """Plain-text docstring conventions -> valid rST (see the module docstring); pure function."""
    lines = _split_shared_fields(lines)
    out: list[str] = []
    first = last = None  # first and last line of the previous paragraph
    previous_blank = True
    literal_base = None  # inside a literal block: indent of the paragraph that introduced it
    doctest = False
    for line in lines:
        if literal_base is not None:
            if not line.strip() or _indent(line) > literal_base:
                out.append(line)
                continue
            literal_base = None
        if not line.strip():
            out.append(line)
            previous_blank, doctest = True, False
            continue
        if previous_blank and first is not None and _indent(line) > _indent(first):
            introduced = last.rstrip().endswith("::")
            directive_or_field = first.lstrip().startswith(("..", ":", ">>>"))
            if introduced or (not directive_or_field and _indent(line) > _content_indent(first)):
                if not introduced:
                    out += [" " * _indent(first) + "::", ""]
                literal_base = _indent(first)
                out.append(line)
                continue
        if line.lstrip().startswith(">>>"):
            doctest = True
        out.append(line if doctest else _escape_pipes(line))
        if previous_blank:
            first = line
        last = line
        previous_blank = False
    return out


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = sanitise_docstring_lines(lines)


def setup(app):
    app.connect("builder-inited", write_api_pages)
    app.add_directive("qernel-exports", QernelExports)
    app.add_directive("qernel-submodules", QernelSubmodules)
    app.connect("missing-reference", resolve_qernel_reference)
    app.connect("autodoc-process-docstring", _process_docstring, priority=900)  # after napoleon
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
