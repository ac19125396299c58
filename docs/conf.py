"""Sphinx configuration: MyST Markdown + autodoc (Google-style docstrings), offline build."""

from __future__ import annotations

import importlib.metadata

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
]
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
