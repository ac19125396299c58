"""Recognising physical quantities without importing a units library."""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["find_quantity", "is_quantity"]


def is_quantity(x: Any) -> bool:
    """Return whether ``x`` looks like a ``brainunit.Quantity`` (duck-typed)."""
    t = type(x)
    return t.__name__ == "Quantity" and hasattr(x, "unit") and hasattr(x, "mantissa")


def find_quantity(tree: Any) -> str | None:
    """Return the key path of the first Quantity inside ``tree`` (``""`` for the root)."""
    if is_quantity(tree):
        return ""
    leaves = jax.tree_util.tree_leaves_with_path(tree, is_leaf=is_quantity)
    for path, leaf in leaves:
        if is_quantity(leaf):
            return jax.tree_util.keystr(path)
    return None
