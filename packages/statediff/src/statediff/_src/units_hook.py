"""The run-time registration hook through which ``statediff-units`` plugs in.

``statediff`` never imports ``statediff_units``. When a function is called
with ``unit_aware=True``, :func:`units_backend` returns the registered
backend, loading it on first use from the ``statediff.units`` entry point
group (which ``statediff-units`` declares). A backend is any object with a
method ``make(kind, func, **options)`` returning the unit-aware callable.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any, Protocol

from statediff.errors import UnitsNotInstalledError

__all__ = ["UnitsBackend", "register_units_backend", "route", "units_backend"]


class UnitsBackend(Protocol):
    """What a units backend provides."""

    def make(self, kind: str, func: Any, **options: Any) -> Any:
        """Return the unit-aware version of transform ``kind`` applied to ``func``."""
        ...


_BACKEND: list[Any] = []


def register_units_backend(backend: UnitsBackend) -> None:
    """Register the backend used for ``unit_aware=True`` (replaces any earlier one)."""
    if not callable(getattr(backend, "make", None)):
        raise TypeError(
            "statediff.register_units_backend: the backend needs a method "
            f"make(kind, func, **options); got {type(backend).__name__}."
        )
    _BACKEND[:] = [backend]


def units_backend(api: str = "statediff") -> UnitsBackend:
    """Return the registered units backend, loading ``statediff-units`` if installed.

    Raises:
        UnitsNotInstalledError: if no backend is registered and none is installed.
    """
    if not _BACKEND:
        for entry in importlib.metadata.entry_points(group="statediff.units"):
            entry.load()  # the plugin registers itself on import
            if _BACKEND:
                break
    if not _BACKEND:
        raise UnitsNotInstalledError(
            f"{api}(..., unit_aware=True) needs the statediff-units package, which is not "
            "installed. Fix: `pip install statediff-units` (or `pip install statediff[units]`), "
            "or call with unit_aware=False and unit-free values."
        )
    return _BACKEND[0]


def route(public: Any, func: Any, unit_aware: bool, options: dict[str, Any]) -> Any:
    """Route a call of a public transform that is not a plain one.

    Returns the decorator factory when ``func`` is None, the unit-aware
    transform from the registered backend when ``unit_aware`` is true, and
    ``None`` when the caller should build the plain transform itself.
    """
    if func is None:
        return functools.partial(public, unit_aware=unit_aware, **options)
    if unit_aware:
        kind = public.__name__
        return units_backend(f"statediff.{kind}").make(kind, func, **options)
    return None
