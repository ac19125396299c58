"""Splitting call arguments into static and dynamic parts, and keying them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from stategraph import State

__all__ = [
    "abstract_key",
    "check_no_states",
    "normalize_argnums",
    "split_static",
]


def normalize_argnums(api: str, argnums: int | Sequence[int] | None) -> tuple[int, ...]:
    """Return ``argnums`` as a tuple of non-negative ints, validating it."""
    if argnums is None:
        return ()
    items = (argnums,) if isinstance(argnums, int) and not isinstance(argnums, bool) else argnums
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(
            f"{api}: static_argnums must be an int or a sequence of ints, got {argnums!r}."
        ) from None
    for i in items:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
            raise ValueError(
                f"{api}: static_argnums must hold non-negative ints, got {argnums!r}. "
                "Fix: count positions from 0."
            )
    return tuple(int(i) for i in items)


def check_no_states(api: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise a ``TypeError`` naming the position of any State passed as an argument."""
    for i, arg in enumerate(args):
        for path, leaf in jax.tree_util.tree_leaves_with_path(arg):
            if isinstance(leaf, State):
                where = f"positional argument {i}" + (jax.tree_util.keystr(path) if path else "")
                raise TypeError(
                    f"{api}: States must not be passed as arguments, but {where} is "
                    f"{leaf!r}. States are found by tracing: read `state.value` inside the "
                    "function instead (or pass `state.value` if you want a plain array)."
                )
    for name, arg in kwargs.items():
        for path, leaf in jax.tree_util.tree_leaves_with_path(arg):
            if isinstance(leaf, State):
                raise TypeError(
                    f"{api}: States must not be passed as arguments, but keyword argument "
                    f"{name!r}{jax.tree_util.keystr(path)} is {leaf!r}. Read `state.value` "
                    "inside the function instead."
                )


def split_static(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    static_argnums: tuple[int, ...],
    static_argnames: tuple[str, ...],
) -> tuple[tuple[Any, ...], dict[str, Any], tuple[Any, ...]]:
    """Return (dynamic args with statics as None, dynamic kwargs, static key part)."""
    if not static_argnums and not static_argnames:
        return args, kwargs, ()
    dyn_args = tuple(None if i in static_argnums else a for i, a in enumerate(args))
    dyn_kwargs = {k: v for k, v in kwargs.items() if k not in static_argnames}
    statics = tuple((i, args[i]) for i in static_argnums if i < len(args)) + tuple(
        (k, kwargs[k]) for k in static_argnames if k in kwargs
    )
    return dyn_args, dyn_kwargs, statics


def _leaf_key(x: Any) -> tuple[Any, ...]:
    if isinstance(x, jax.ShapeDtypeStruct):
        return (x.shape, np.dtype(x.dtype), bool(getattr(x, "weak_type", False)))
    aval = jax.typeof(x)
    return (aval.shape, aval.dtype, getattr(aval, "weak_type", False))


def abstract_key(tree: Any) -> tuple[Any, ...]:
    """Return a hashable key of a pytree's structure, shapes, dtypes and weak types."""
    leaves, treedef = jax.tree.flatten(tree)
    return (treedef, tuple(_leaf_key(x) for x in leaves))
