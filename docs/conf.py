"""Sphinx configuration: MyST Markdown + autodoc (Google-style docstrings), offline build."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path
from typing import Any

# Local extensions (docs/_ext): api_coverage fails the build on an undocumented public name.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "stateful autodiff stack for JAX"
author = "the stategraph developers"
copyright = "the stategraph developers"

try:
    release = importlib.metadata.version("stategraph")
except importlib.metadata.PackageNotFoundError:
    release = "0.1.0"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "api_coverage",
]
# Every name in these packages' __all__ must be documented (docs/_ext/api_coverage.py).
api_coverage_packages = ["stategraph", "statejax", "statediff", "statediff_units"]
# No intersphinx: the build must work offline.

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" sections become :ivar: fields, not attribute directives, so properties that
# autodoc also documents are not described twice (a -W error).
napoleon_use_ivar = True

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"  # built into Sphinx: no theme download
html_title = "stategraph / statejax / statediff / statediff-units"
html_static_path = ["_static"]  # the demo's heat map, shown on the guide's front page


def _hide_private_bases(app: Any, name: str, obj: object, options: Any, bases: list) -> None:
    """Leave private mixins (``_LinkedToDocs``) out of the "Bases:" line of a class."""
    bases[:] = [b for b in bases if not getattr(b, "__name__", "").startswith("_")]


def setup(app: Any) -> None:
    """Connect the local hooks."""
    app.connect("autodoc-process-bases", _hide_private_bases)
