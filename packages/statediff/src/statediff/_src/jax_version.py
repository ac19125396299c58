"""The oldest JAX this package supports, checked when the package is imported.

An older JAX would fail later with an ``AttributeError`` from JAX internals; this module
turns that into an ``ImportError`` that names the required version. Keep ``JAX_FLOOR`` equal
to the ``jax>=`` requirement in this package's ``pyproject.toml`` (a test checks it) and to
``JAX_FLOOR`` in ``noxfile.py`` (the ``tests_jax_floor`` session runs the tests on it).
"""

from __future__ import annotations

import re

import jax

__all__ = ["JAX_FLOOR", "check_jax_version", "parse_version"]

JAX_FLOOR = (0, 6, 2)


def parse_version(text: str) -> tuple[int, ...]:
    """Return the leading release numbers of a version string (``"0.7.1.dev2"`` -> (0, 7, 1))."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    if match is None:
        return ()
    return tuple(int(part) for part in match.group(0).split("."))


def check_jax_version(found: str, package: str = "statediff") -> None:
    """Raise ``ImportError`` if JAX version ``found`` is older than ``JAX_FLOOR``."""
    if parse_version(found) >= JAX_FLOOR:
        return
    floor = ".".join(map(str, JAX_FLOOR))
    raise ImportError(
        f"{package} requires jax>={floor} (with its matching jaxlib), but jax {found} is "
        f"installed. Fix: pip install -U 'jax>={floor}' (for a GPU, JAX's CUDA build of "
        f"{floor} or newer, e.g. pip install -U 'jax[cuda12]>={floor}')."
    )


check_jax_version(jax.__version__)
