"""Sphinx extension: API pages that lead with the functions, then the classes.

``.. api-members:: statediff`` documents every function (``:kind: functions``, the default) or
every class (``:kind: classes``) of a package's ``__all__``, in ``__all__`` order after the names
given in ``:first:``, leaving out those in ``:exclude:``. A name that a page already documents
with its own explicit directive (``.. autofunction:: statejax.ifelse``, ``.. autoclass::``, ...)
is left out too, so adding a name to a page by hand never documents it twice. New names in
``__all__`` appear on their package's page by themselves.

The extension also adds a "See also" line, linking to JAX's documentation, to every public
function of the stack that mirrors a JAX function (``statejax.vmap`` -> ``jax.vmap``,
``statediff.jacfwd`` -> ``jax.jacfwd``). The links are plain URLs: the build stays offline.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

PACKAGES = ("stategraph", "statejax", "statediff", "statediff_units")
JAX_DOCS = "https://docs.jax.dev/en/latest/_autosummary"

# The JAX function each public function mirrors, by its name in our packages. A function not
# listed here whose summary line names ``jax.something`` links to that instead.
JAX_COUNTERPARTS = {
    "jit": "jax.jit",
    "vmap": "jax.vmap",
    "cond": "jax.lax.cond",
    "switch": "jax.lax.switch",
    "while_loop": "jax.lax.while_loop",
    "scan": "jax.lax.scan",
    "for_loop": "jax.lax.scan",
    "checkpoint": "jax.checkpoint",
    "remat": "jax.checkpoint",
    "eval_shape": "jax.eval_shape",
    "make_jaxpr": "jax.make_jaxpr",
    "shard_map": "jax.shard_map",
    "map": "jax.lax.map",
    "named_scope": "jax.named_scope",
    "named_call": "jax.named_call",
    "checkify": "jax.experimental.checkify.checkify",
    "check": "jax.experimental.checkify.check",
    "grad": "jax.grad",
    "jacfwd": "jax.jacfwd",
    "jacrev": "jax.jacrev",
    "jacobian": "jax.jacobian",
    "hessian": "jax.hessian",
    "jvp": "jax.jvp",
    "vjp": "jax.vjp",
    "linearize": "jax.linearize",
}
_MENTION = re.compile(r"``(jax(?:\.[A-Za-z_]\w*)+)``")
_EXPLICIT = re.compile(
    r"(?:\.\.\s+|\{)(?:auto|py:)(?:function|class|exception|data|decorator)(?:::|\})\s+"
    r"(?P<name>[A-Za-z_][\w.]*)"
)


def jax_url(target: str) -> str:
    """URL of a JAX function's page in JAX's documentation."""
    return f"{JAX_DOCS}/{target}.html"


def jax_counterpart(name: str, obj: Any) -> str | None:
    """The JAX function that public function ``name`` (``statejax.vmap``) mirrors, if any."""
    package, _, short = name.rpartition(".")
    if package not in PACKAGES or inspect.isclass(obj) or not callable(obj):
        return None
    if short in JAX_COUNTERPARTS:
        return JAX_COUNTERPARTS[short]
    summary = (inspect.getdoc(obj) or "").split("\n", 1)[0]
    match = _MENTION.search(summary)
    return match.group(1) if match else None


def _add_jax_link(app: Any, what: str, name: str, obj: Any, options: Any, lines: list) -> None:
    if what != "function":
        return
    target = jax_counterpart(name, obj)
    if target is None:
        return
    note = [
        "",
        f".. seealso:: `{target} <{jax_url(target)}>`__, its JAX counterpart.",
        "",
    ]
    # After the summary paragraph: the first blank line (or the end).
    at = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    lines[at:at] = note


def explicitly_documented(srcdir: Path) -> set[str]:
    """Full names documented by an explicit autodoc / py directive in any page of the docs."""
    found: set[str] = set()
    for path in srcdir.rglob("*"):
        if path.suffix not in (".md", ".rst") or "_build" in path.parts:
            continue
        found.update(m.group("name") for m in _EXPLICIT.finditer(path.read_text("utf-8")))
    return found


def _names(option: str | None) -> list[str]:
    return [n.strip() for n in (option or "").replace("\n", ",").split(",") if n.strip()]


class ApiMembers(SphinxDirective):
    """``.. api-members:: package``: the package's public functions or classes."""

    required_arguments = 1
    option_spec = {
        "kind": lambda arg: directives.choice(arg, ("functions", "classes")),
        "first": directives.unchanged,
        "exclude": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        """Generate one autodoc directive per selected name and parse them."""
        package = self.arguments[0]
        module = importlib.import_module(package)
        kind = self.options.get("kind", "functions")
        exclude = set(_names(self.options.get("exclude")))
        explicit = explicitly_documented(Path(self.env.srcdir))
        selected = []
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj) or name in exclude:
                continue
            if f"{package}.{name}" in explicit:
                continue
            if inspect.isclass(obj) == (kind == "classes"):
                selected.append(name)
        first = [n for n in _names(self.options.get("first")) if n in selected]
        ordered = first + [n for n in selected if n not in first]
        lines = []
        for name in ordered:
            obj = getattr(module, name)
            if kind == "functions":
                directive = "autofunction"
            elif issubclass(obj, BaseException):
                directive = "autoexception"
            else:
                directive = "autoclass"
            lines += [f".. {directive}:: {package}.{name}", ""]
        node = nodes.container()
        source = self.get_source_info()[0] or "api-members"
        nested_parse_with_titles(self.state, StringList(lines, source=source), node)
        return node.children


def setup(app: Any) -> dict[str, Any]:
    """Register the directive and the JAX links."""
    app.add_directive("api-members", ApiMembers)
    app.connect("autodoc-process-docstring", _add_jax_link)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
