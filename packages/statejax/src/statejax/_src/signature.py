"""Splitting call arguments into static and dynamic parts, and keying them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from stategraph import State

__all__ = [
    "aval_key",
    "abstract_key",
    "check_arguments",
    "check_hashable",
    "check_no_states",
    "normalize_argnums",
    "resolve_static",
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


def resolve_static(
    fun: Callable[..., Any], argnums: tuple[int, ...], argnames: tuple[str, ...]
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Complete static positions and names from ``fun``'s signature, as ``jax.jit`` does.

    A static parameter that can be passed both ways is static both ways: its
    position joins ``argnums`` and its name joins ``argnames``.
    """
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # no signature (some builtins): keep what was given
        return argnums, argnames
    nums, names = set(argnums), list(argnames)
    for i, p in enumerate(params):
        if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                continue
            break  # *args, keyword-only, **kwargs: no more positions
        if i in nums and p.name not in names:
            names.append(p.name)
        elif p.name in names:
            nums.add(i)
    return tuple(sorted(nums)), tuple(names)


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


def check_arguments(
    api: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    static_argnums: tuple[int, ...],
    static_argnames: tuple[str, ...],
) -> None:
    """Raise a ``TypeError`` naming the user's position of a State or non-array argument.

    Only called once a call failed with a ``TypeError``: it translates JAX's
    message (which counts the state values among the arguments) to the user's
    own argument positions.
    """
    check_no_states(api, args, kwargs)
    named = [
        (f"positional argument {i}", a, f"static_argnums={i}")
        for i, a in enumerate(args)
        if i not in static_argnums
    ]
    named += [
        (f"keyword argument {k!r}", v, f"static_argnames={k!r}")
        for k, v in kwargs.items()
        if k not in static_argnames
    ]
    for where, arg, fix in named:
        for path, leaf in jax.tree_util.tree_leaves_with_path(arg):
            if isinstance(leaf, jax.ShapeDtypeStruct):
                continue
            try:
                jax.typeof(leaf)
            except TypeError:
                raise TypeError(
                    f"{api}: {where}{jax.tree_util.keystr(path)} is a "
                    f"{type(leaf).__name__} ({leaf!r}), not an array. Dynamic arguments must "
                    f"be pytrees of arrays. Fix: mark it static with {fix} (it must be hashable; "
                    "for a method, `self` is positional argument 0), or pass arrays."
                ) from None


def check_hashable(api: str, statics: tuple[tuple[int | str, Any], ...]) -> None:
    """Raise a ``ValueError`` naming a static argument that cannot be hashed (as jax.jit)."""
    for where, value in statics:
        try:
            hash(value)
        except TypeError as err:
            kind = "positional" if isinstance(where, int) else "keyword"
            name = f"{kind} argument {where!r}"
            raise ValueError(
                f"{api}: static arguments must be hashable, but the static {name} is "
                f"{type(value).__name__} {value!r} ({err}). Fix: pass a hashable value "
                "(a tuple instead of a list, for example), or make the argument dynamic."
            ) from None


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


def aval_key(aval: Any) -> tuple[Any, ...]:
    """Return the part of an abstract value that selects a trace.

    Shape, dtype and weak type, plus the manual-axes type (which mesh axes a
    value varies over inside ``shard_map``), so a trace made outside
    ``shard_map`` is never reused inside it, or the other way round.
    """
    manual = getattr(aval, "mat", None)
    if manual is None:
        manual = getattr(aval, "vma", None)
    return (aval.shape, aval.dtype, getattr(aval, "weak_type", False), manual)


def _leaf_key(x: Any) -> tuple[Any, ...]:
    return aval_key(jax.typeof(x))  # also for jax.ShapeDtypeStruct


def abstract_key(tree: Any) -> tuple[Any, ...]:
    """Return a hashable key of a pytree's structure, shapes, dtypes and weak types."""
    leaves, treedef = jax.tree.flatten(tree)
    return (treedef, tuple(_leaf_key(x) for x in leaves))
