"""Splitting pytrees into mantissas and units, and putting units back on derivatives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import brainunit as u
import jax

__all__ = [
    "UnitTag",
    "attach_units",
    "block_unit",
    "is_quantity",
    "plain_unit",
    "split_units",
    "tag_units",
    "untag_units",
    "unit_text",
    "with_unit",
]

Quantity = u.Quantity
Unit = u.Unit


def is_quantity(x: Any) -> bool:
    """Return whether ``x`` is a ``brainunit.Quantity``."""
    return isinstance(x, Quantity)


def split_units(tree: Any) -> tuple[Any, list[Any]]:
    """Replace each Quantity of ``tree`` by its mantissa.

    Returns:
        ``(mantissas, units)``: the tree with mantissas in place of the
        Quantities, and one entry per leaf of that tree (its unit, or
        ``None`` for a leaf that was not a Quantity).
    """
    leaves, treedef = jax.tree.flatten(tree, is_leaf=is_quantity)
    mantissas = [x.mantissa if isinstance(x, Quantity) else x for x in leaves]
    units = [x.unit if isinstance(x, Quantity) else None for x in leaves]
    return jax.tree.unflatten(treedef, mantissas), units


def attach_units(tree: Any, units: Sequence[Any]) -> Any:
    """Inverse of :func:`split_units`: wrap leaf ``i`` of ``tree`` in ``units[i]``."""
    leaves, treedef = jax.tree.flatten(tree)
    pairs = zip(leaves, units, strict=True)
    return jax.tree.unflatten(
        treedef, [x if unit is None else with_unit(x, unit) for x, unit in pairs]
    )


def with_unit(mantissa: Any, unit: Any) -> Any:
    """Return ``Quantity(mantissa, unit)`` without re-validating the mantissa."""
    return Quantity.tree_unflatten(unit, (mantissa,))


def _is_float0(x: Any) -> bool:
    return getattr(x, "dtype", None) == jax.dtypes.float0


def plain_unit(unit: Any) -> Any:
    """Return ``unit``, or ``None`` when it is exactly unitless (dimensionless, scale 1)."""
    return None if unit is None or unit.is_unitless else unit


def block_unit(out_unit: Any, in_units: Sequence[Any]) -> Any:
    """Return ``out_unit / in_units[0] / in_units[1] / ...`` (``None`` for unitless).

    ``None`` stands for a plain (unitless) value.
    """
    out_unit = plain_unit(out_unit)
    dens = [x for x in map(plain_unit, in_units) if x is not None]
    if not dens:
        return out_unit
    den = dens[0]
    for x in dens[1:]:
        den = den * x
    return den**-1 if out_unit is None else out_unit / den


def unit_block(mantissa: Any, unit: Any) -> Any:
    """Attach ``unit`` to a derivative block; dimensionless blocks become plain arrays.

    A dimensionless unit with a scale (``mV / V``) is applied to the numbers,
    as ``brainunit.maybe_decimal`` does; ``float0`` blocks (integer inputs)
    are returned as they are.
    """
    if unit is None or _is_float0(mantissa):
        return mantissa
    if unit.is_unitless:
        return mantissa
    if unit.dim.is_dimensionless:
        return u.maybe_decimal(Quantity(mantissa, unit=unit))
    return with_unit(mantissa, unit)


@jax.tree_util.register_pytree_node_class
class UnitTag:
    """A pytree node carrying a mantissa with its unit as static data.

    A function's Quantity outputs travel through ``statediff`` as tags, so
    their units are part of the traced output structure (cached per
    signature) while ``statediff`` sees no Quantity.
    """

    __slots__ = ("mantissa", "unit")

    def __init__(self, mantissa: Any, unit: Any) -> None:
        self.mantissa = mantissa
        self.unit = unit

    def tree_flatten(self) -> tuple[tuple[Any], Any]:
        """Flatten: the mantissa is the child, the unit the static data."""
        return (self.mantissa,), self.unit

    @classmethod
    def tree_unflatten(cls, unit: Any, children: Sequence[Any]) -> UnitTag:
        """Rebuild from the unit and the mantissa."""
        return cls(children[0], unit)

    def __repr__(self) -> str:
        return f"UnitTag({self.mantissa!r}, {self.unit})"


def _is_tag(x: Any) -> bool:
    return isinstance(x, UnitTag)


def tag_units(tree: Any) -> Any:
    """Replace each Quantity of ``tree`` by a :class:`UnitTag`."""
    return jax.tree.map(
        lambda x: UnitTag(x.mantissa, x.unit) if isinstance(x, Quantity) else x,
        tree,
        is_leaf=is_quantity,
    )


def untag_units(tree: Any) -> tuple[Any, list[Any]]:
    """Split a tree of :class:`UnitTag` into mantissas and units (as :func:`split_units`)."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_tag)
    mantissas = [x.mantissa if isinstance(x, UnitTag) else x for x in leaves]
    units = [x.unit if isinstance(x, UnitTag) else None for x in leaves]
    return jax.tree.unflatten(treedef, mantissas), units


def retag_quantities(tree: Any) -> Any:
    """Turn each :class:`UnitTag` of ``tree`` back into a Quantity."""
    return jax.tree.map(
        lambda x: with_unit(x.mantissa, x.unit) if isinstance(x, UnitTag) else x,
        tree,
        is_leaf=_is_tag,
    )


def unit_text(unit: Any) -> str:
    """Return a unit as users write it (``"1"`` for unitless)."""
    return "1" if unit is None else str(unit)
