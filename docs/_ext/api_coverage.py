"""Sphinx extension: fail the docs build when a public name has no documentation.

For each package named in the ``api_coverage_packages`` config value, every name
in its ``__all__`` must be documented as a Python object somewhere in the docs
(``.. autofunction::``, ``.. automodule:: ... :members:``, ``.. py:data::``,
...). A name listed in ``__all__`` that is a submodule of the package (such as
``stategraph.errors``) must be documented as a module (``.. automodule::`` or
``.. py:module::``), and the names in *its* ``__all__`` are checked in turn.

A class or function counts as documented when it is documented under any name,
so a re-export (``stategraph.StateError`` is ``stategraph.errors.StateError``)
is covered by the documentation of the original. Any other object (``__version__``,
constants) must be documented under its own full name.

The check runs at ``env-check-consistency``, after every page is read, and
emits one warning per undocumented name; ``sphinx-build -W`` (as ``nox -s docs``
runs it) turns them into a failed build.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_PACKAGES = ["stategraph", "statejax", "statediff", "statediff_units"]


def _resolve(name: str) -> Any:
    """Return the object a dotted name refers to, or ``None`` if it cannot be imported."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _by_identity(obj: Any) -> bool:
    """Whether ``obj`` is identified by identity (classes, functions), not by name."""
    return callable(obj)


def public_names(package: str) -> list[tuple[str, Any]]:
    """Return ``(full name, object)`` for every name in the ``__all__`` of ``package``.

    Submodules listed in ``__all__`` are included, followed by the names of their
    own ``__all__`` (recursively, once per module).
    """
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()

    def walk(module: Any) -> None:
        if module.__name__ in seen:
            return
        seen.add(module.__name__)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            out.append((f"{module.__name__}.{name}", obj))
            if inspect.ismodule(obj) and obj.__name__.startswith(package + "."):
                walk(obj)

    walk(importlib.import_module(package))
    return out


def undocumented(packages: Iterable[str], objects: Mapping[str, str]) -> list[str]:
    """Return the public names of ``packages`` that ``objects`` does not document.

    Args:
        packages: Import names of the packages to check.
        objects: Documented Python objects, full name -> object type (``"module"``,
            ``"class"``, ``"function"``, ``"data"``, ...), as in the ``py`` domain.

    Returns:
        Full names (``"statejax.jit"``), in ``__all__`` order, with a reason.
    """
    packages = tuple(packages)
    ids = set()
    for name in objects:
        if name.split(".")[0] in packages:
            obj = _resolve(name)
            if obj is not None and _by_identity(obj):
                ids.add(id(obj))
    missing: list[str] = []
    for package in packages:
        for full, obj in public_names(package):
            if inspect.ismodule(obj):
                if objects.get(obj.__name__) != "module":
                    missing.append(f"{full} (module {obj.__name__}: no automodule / py:module)")
                continue
            if full in objects:
                continue
            if _by_identity(obj) and id(obj) in ids:
                continue
            missing.append(full)
    return missing


def _check(app: Any, env: Any) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    domain = env.get_domain("py")
    objects = {name: entry.objtype for name, entry in domain.objects.items()}
    for name in undocumented(app.config.api_coverage_packages, objects):
        logger.warning(
            "api_coverage: %s is in __all__ but not documented in any page "
            "(add it to its package's page under docs/api/)",
            name,
            type="api_coverage",
        )


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("api_coverage_packages", DEFAULT_PACKAGES, "env", types=[list, tuple])
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
