"""Sphinx configuration of the qernel documentation.

Build (warnings are errors; the tutorials in ``docs/tutorials/`` are executed)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Environment switches:

* ``QERNEL_DOCS_INTERSPHINX``: ``1`` fetches the NetKet/JAX/Haiku/optax/NumPy/Python inventories
  (needs internet), ``0`` disables intersphinx. Unset: enabled on Read the Docs and wherever
  inventories were saved to ``docs/_intersphinx/<name>.inv``, disabled otherwise, so that an
  offline ``sphinx-build -W`` does not fail on unreachable inventories.
* ``QERNEL_DOCS_EXECUTE``: ``0`` skips executing the tutorials (their pages then show code only);
  default ``1``. Same as ``-D plot_gallery=0``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the checkout's qernel, also when it is not installed
sys.path.insert(0, str(DOCS / "_ext"))

import qernel  # noqa: E402  (after the path set-up)

# the tutorials run in this process: one core avoids jaxlib 0.10's CPU LAPACK deadlock on few cores
# (docs/howto/devices.md); QERNEL_PIN_CPU=0 skips it
qernel.pin_to_one_cpu()

# sphinx-autodoc-typehints 3.6 still calls an API that Sphinx 9 deprecates: not our warning to fix
warnings.filterwarnings("ignore", message=".*set_application.*", module="sphinx_autodoc_typehints.*")
warnings.filterwarnings("ignore", message=".*set_application.*")

# -- project -----------------------------------------------------------------------------------
project = "qernel"
author = "the qernel developers"
copyright = "2025, the qernel developers"
try:
    from importlib.metadata import version as _version

    release = _version("qernel")
except Exception:  # noqa: BLE001 - not installed: fall back to the checkout
    release = getattr(qernel, "__version__", "0.1.0")
version = ".".join(release.split(".")[:2])

# -- extensions --------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # Google-style "Args:/Returns:" docstrings
    "sphinx_autodoc_typehints",  # must come after napoleon
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "qernel_docs",  # docs/_ext/qernel_docs.py: API cross-reference helpers
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "tutorials/README.rst",  # the gallery header, rendered into auto_tutorials/index
    "auto_tutorials/*.ipynb",
    "auto_tutorials/*.py",
    "auto_tutorials/*.zip",
    "auto_tutorials/*.codeobj.json",
    "auto_tutorials/*.md5",
]
templates_path: list[str] = []

# MyST: $...$ maths, ::: fences, definition lists, anchors for "#section" links
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc -----------------------------------------------------------------------------------
autodoc_default_options = {
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_member_order = "bysource"
autodoc_class_signature = "separated"  # __init__ arguments under the class, not in its title
autodoc_preserve_defaults = True  # show "V=WSE2_WS2['V']" rather than evaluated reprs
autodoc_inherit_docstrings = True
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields, not duplicate attribute entries
napoleon_use_rtype = False
napoleon_custom_sections = [("Shapes", "params_style"), ("Units", "notes_style")]
typehints_fully_qualified = False
always_document_param_types = False
typehints_document_rtype = True
typehints_use_signature = False
typehints_use_signature_return = False

# -- doctest -----------------------------------------------------------------------------------
doctest_global_setup = """
import numpy as np
import qernel
"""
doctest_test_doctest_blocks = "default"  # also the ">>>" blocks of docstrings shown by autodoc

# -- intersphinx (optional: no network on the build machines) ---------------------------------
_INVENTORIES = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "jax": "https://docs.jax.dev/en/latest/",
    "netket": "https://netket.readthedocs.io/en/latest/",
    "haiku": "https://dm-haiku.readthedocs.io/en/latest/",
    "optax": "https://optax.readthedocs.io/en/latest/",
}


def _intersphinx_mapping() -> dict:
    switch = os.environ.get("QERNEL_DOCS_INTERSPHINX", "").strip().lower()
    if switch in ("0", "false", "no", "off"):
        return {}
    online = switch in ("1", "true", "yes", "on") or os.environ.get("READTHEDOCS") == "True"
    mapping = {}
    for name, url in _INVENTORIES.items():
        local = DOCS / "_intersphinx" / f"{name}.inv"
        if local.is_file():
            mapping[name] = (url, str(local))  # offline copy saved with the docs
        elif online:
            mapping[name] = (url, None)
    return mapping


intersphinx_mapping = _intersphinx_mapping()
intersphinx_timeout = 10

# -- executed tutorials (sphinx-gallery) ------------------------------------------------------
_execute = os.environ.get("QERNEL_DOCS_EXECUTE", "1").strip().lower() not in ("0", "false", "no", "off")
sphinx_gallery_conf = {
    "examples_dirs": "tutorials",
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r"/tutorial_",  # execute every tutorial_*.py
    "ignore_pattern": r"_helpers\.py",
    "plot_gallery": _execute,
    "run_stale_examples": True,  # always re-run: outputs must come from the current code
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "capture_repr": ("__repr__",),
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
}

# -- HTML --------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"qernel {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": True,
}
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# Warnings that are not about our documents: NetKet/JAX objects without inventories offline.
suppress_warnings = [
    "config.cache",  # sphinx-gallery's unpicklable config values
]
