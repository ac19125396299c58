"""Sphinx configuration: MyST Markdown + autodoc (Google-style docstrings), offline build."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path
from typing import Any

# Local extensions (docs/_ext): api_coverage fails the build on an undocumented public name.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

# One name for the umbrella project: README, this title, the footer and the error-message
# links (stategraph.errors.DOCS_URL, https://statestack.readthedocs.io) all say "statestack".
project = "statestack"
author = "the statestack developers"
copyright = "2026, the statestack developers (Apache-2.0)"

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
    "sphinx_copybutton",
    "api_coverage",
    "api_pages",
]
# Every name in these packages' __all__ must be documented (docs/_ext/api_coverage.py).
api_coverage_packages = ["stategraph", "statejax", "statediff", "statediff_units"]
# No intersphinx: the build must work offline. The JAX function each transform mirrors is
# linked by a plain URL (docs/_ext/api_pages.py).

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

# sphinx-book-theme (the theme of JAX's own docs), installed by `nox -s docs` from PyPI.
html_theme = "sphinx_book_theme"
html_title = "statestack"
html_static_path = ["_static"]  # the demo's heat map; custom.css (code blocks wrap, never clip)
html_css_files = ["custom.css"]
html_last_updated_fmt = ""
html_theme_options = {
    "repository_url": "https://github.com/statestack/statestack",
    "use_repository_button": True,
    "use_issues_button": True,
    "path_to_docs": "docs",
    "repository_branch": "main",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "extra_footer": (
        "statestack: stategraph, statejax, statediff and statediff-units. "
        "Licensed under the Apache License 2.0."
    ),
}
# Copy buttons leave out prompts (">>> ", "... ", "$ ") and the output lines of doctests.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = False


def _hide_private_bases(app: Any, name: str, obj: object, options: Any, bases: list) -> None:
    """Leave private mixins (``_LinkedToDocs``) out of the "Bases:" line of a class."""
    bases[:] = [b for b in bases if not getattr(b, "__name__", "").startswith("_")]


def setup(app: Any) -> None:
    """Connect the local hooks."""
    app.connect("autodoc-process-bases", _hide_private_bases)
