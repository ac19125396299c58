"""Checks of bad inputs that JAX itself would catch late, or with internal words.

Each check runs once (at construction, at trace time or before the JAX call
it protects), never on the compiled hot path, and raises an error that names
the public API, the rule, what was received (the user's own value or its
shape and dtype, never a tracer's repr) and the fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from stategraph import State
from stategraph.extend import describe

__all__ = [
    "check_branches",
    "check_carry",
    "check_index",
    "check_pred",
    "check_in_axes_prefix",
    "check_pure_values",
    "check_static_in_signature",
    "normalize_donate_argnums",
    "promote_weak_init",
    "shown",
]


def shown(value: Any) -> str:
    """Describe a user's value in plain words: its repr if concrete, else shape and dtype."""
    if isinstance(value, jax.core.Tracer):
        aval = jax.typeof(value)
        return f"a {aval.str_short(short_dtypes=True)} value computed inside a transform"
    try:
        text = repr(np.asarray(value)) if hasattr(value, "shape") else repr(value)
    except Exception:  # noqa: BLE001 - a description must never fail
        text = describe(value)
    return text if len(text) <= 80 else describe(value)


def _positional(fun: Callable[..., Any]) -> tuple[int | None, set[str] | None]:
    """(number of positional parameters or None if unbounded, keyword names or None if any)."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        return None, None
    kinds = inspect.Parameter
    n: int | None = 0
    names: set[str] | None = set()
    for p in params:
        if p.kind is kinds.VAR_POSITIONAL:
            n = None
        elif p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD) and n is not None:
            n += 1
        if p.kind is kinds.VAR_KEYWORD:
            names = None
        elif p.kind is not kinds.POSITIONAL_ONLY and names is not None:
            names.add(p.name)
    return n, names


def check_static_in_signature(
    api: str, fun: Callable[..., Any], argnums: tuple[int, ...], argnames: tuple[str, ...]
) -> None:
    """Raise ``ValueError`` for static argnums/argnames that ``fun`` cannot take (as jax.jit)."""
    n, names = _positional(fun)
    name = getattr(fun, "__qualname__", getattr(fun, "__name__", repr(fun)))
    if n is not None:
        bad = [i for i in argnums if i >= n]
        if bad:
            raise ValueError(
                f"{api}: static_argnums={argnums!r}, but {name} takes only {n} positional "
                f"argument(s) (positions 0 to {n - 1}); position(s) {bad} do not exist. "
                "Fix: count positions from 0 and name only the function's own parameters."
            )
    if names is not None:
        unknown = sorted(set(argnames) - names)
        if unknown:
            raise ValueError(
                f"{api}: static_argnames names {unknown}, which {name} has no parameter "
                f"for (its keyword parameters: {sorted(names)}). Fix: use the function's "
                "own parameter names."
            )


def normalize_donate_argnums(api: str, fun: Callable[..., Any], donate: Any) -> tuple[int, ...]:
    """Return ``donate_argnums`` as non-negative positions (negatives count from the end)."""
    items = (donate,) if isinstance(donate, (int, np.integer)) else donate
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(
            f"{api}: donate_argnums must be an int or a sequence of ints, got {donate!r}."
        ) from None
    n, _ = _positional(fun)
    out = []
    for i in items:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(
                f"{api}: donate_argnums must hold ints, got {donate!r}. "
                "Fix: pass argument positions, counted from 0."
            )
        i = int(i)
        if i < 0:
            if n is None:
                raise ValueError(
                    f"{api}: donate_argnums={donate!r} counts from the end, but the function "
                    "takes *args, so the last position is not known before a call. Fix: "
                    "count positions from 0."
                )
            if i < -n:
                raise ValueError(
                    f"{api}: donate_argnums={donate!r}, but the function takes only {n} "
                    "positional argument(s). Fix: pick positions that exist."
                )
            i += n
        elif n is not None and i >= n:
            raise ValueError(
                f"{api}: donate_argnums={donate!r}, but the function takes only {n} "
                f"positional argument(s) (positions 0 to {n - 1}). Fix: pick positions that exist."
            )
        out.append(i)
    return tuple(sorted(set(out)))


def check_pure_values(
    api: str, states: Sequence[State], lifted: Any, values: Sequence[Any]
) -> None:
    """Raise if ``values`` do not match the read states of ``lifted`` (count, tree, type)."""
    values = list(values)
    names = [f"{type(s).__name__} {s._label()}" for s in states]
    if len(values) != len(states):
        raise ValueError(
            f"{api}.pure: expected one value per read state, in read order ({len(states)}: "
            f"{', '.join(names) or 'none'}), but got {len(values)} value(s). Fix: pass "
            "`[s.value for s in f.read_states(*args)]`-like values, one per state."
        )
    leaves_per_state = []
    for name, tree, value in zip(names, lifted.state_trees, values, strict=True):
        if jax.tree.structure(value) != tree:
            raise ValueError(
                f"{api}.pure: the value for {name} must have the tree structure of the "
                f"state's value ({tree.num_leaves} leaf/leaves), but got {describe(value)}. "
                "Fix: pass a value of the state's structure."
            )
        leaves_per_state.append((name, jax.tree.leaves(value)))
    expected = iter(lifted.jaxpr.in_avals[len(lifted.jaxpr.in_avals) - sum(
        len(leaves) for _, leaves in leaves_per_state) :])
    for name, leaves in leaves_per_state:
        for leaf in leaves:
            want = next(expected)
            got = jax.typeof(leaf)
            if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
                raise ValueError(
                    f"{api}.pure: the value for {name} must be "
                    f"{want.str_short(short_dtypes=True)} (as the state was traced), but got "
                    f"{got.str_short(short_dtypes=True)}. Fix: pass a value of the state's "
                    "shape and dtype (or trace again for the new shape)."
                )


def check_in_axes_prefix(api: str, index: int, axes: Any, arg: Any) -> None:
    """Raise a ``ValueError`` naming the argument when ``axes`` is not a tree prefix of it."""
    try:
        jax.tree.map(lambda a, x: None, axes, arg, is_leaf=lambda x: x is None)
    except ValueError:
        raise ValueError(
            f"{api}: in_axes[{index}] is {axes!r}, which is not a tree prefix of positional "
            f"argument {index} ({describe(jax.tree.map(_sds, arg))}): each entry of in_axes "
            "must be an int or None for the whole argument, or a container of the same kind "
            "as the argument with one entry per element. Fix: match the argument's structure, "
            "or use a single int/None."
        ) from None


def _sds(x: Any) -> Any:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype)


def _weak(x: Any) -> bool:
    return bool(getattr(jax.typeof(x), "weak_type", False))


def promote_weak_init(init: Any, out_shapes: Any) -> Any:
    """Promote weakly typed leaves of a loop's ``init`` to the body's output dtypes (as JAX)."""
    try:
        out_leaves = jax.tree.leaves(out_shapes)
        in_leaves, tree = jax.tree.flatten(init)
    except Exception:  # noqa: BLE001 - leave the mismatch to the carry check
        return init
    if len(out_leaves) != len(in_leaves) or jax.tree.structure(out_shapes) != tree:
        return init
    changed = False
    new = []
    for x, o in zip(in_leaves, out_leaves, strict=True):
        dtype = jax.typeof(x).dtype
        if _weak(x) and o.dtype != dtype:
            x = jax.lax.convert_element_type(x, jax.numpy.result_type(x, o.dtype))
            changed = True
        new.append(x)
    return jax.tree.unflatten(tree, new) if changed else init


def check_carry(api: str, fun_name: str, what: str, init: Any, out: Any) -> None:
    """Raise ``TypeError`` in the user's words if a loop body's carry differs from ``init``.

    ``what`` says where the body's carry is (``"the first element of f's output"``).
    """
    in_tree = jax.tree.structure(init)
    out_tree = jax.tree.structure(out)
    if in_tree != out_tree:
        raise TypeError(
            f"{api}: {what} must have the same structure as the initial carry, but the initial "
            f"carry is {describe(jax.tree.map(_sds, init))} and {fun_name} returned "
            f"{describe(out)}. Fix: return a carry with the initial carry's structure."
        )
    for (path, x), o in zip(
        jax.tree_util.tree_leaves_with_path(init), jax.tree.leaves(out), strict=True
    ):
        a = jax.typeof(x)
        where = f"carry{jax.tree_util.keystr(path)}" if path else "the carry"
        if tuple(a.shape) != tuple(o.shape) or (a.dtype != o.dtype and not a.weak_type):
            raise TypeError(
                f"{api}: {what} must keep the type of the initial carry, but {where} starts as "
                f"{a.str_short(short_dtypes=True)} and {fun_name} returns "
                f"{jax.core.ShapedArray(o.shape, o.dtype).str_short(short_dtypes=True)}. Fix: "
                "cast or reshape the new carry (`.astype(...)`) to the initial carry's type."
            )


def fun_label(fun: Any) -> str:
    """Return ``name (file:line)`` for a user's function, through weak proxies and partials."""
    target = getattr(fun, "target", None)
    if callable(target) and not isinstance(fun, State):
        try:
            fun = target() or fun
        except TypeError:
            pass
    base = fun
    while hasattr(base, "func") and not hasattr(base, "__code__"):
        base = base.func
    name = getattr(fun, "__qualname__", None) or getattr(fun, "__name__", None) or repr(fun)
    code = getattr(base, "__code__", None)
    if code is None:
        return name
    return f"{name} ({code.co_filename}:{code.co_firstlineno})"


def _types(tree: Any) -> str:
    return describe(tree)


def check_branches(
    api: str, names: Sequence[str], funs: Sequence[Any], outs: Sequence[Any]
) -> None:
    """Raise ``TypeError`` naming the user's branches if their outputs differ in type."""
    first_tree = jax.tree.structure(outs[0])
    first = jax.tree.leaves(outs[0])
    for name, fun, out in zip(names[1:], funs[1:], outs[1:], strict=True):
        tree = jax.tree.structure(out)
        leaves = jax.tree.leaves(out)
        same = tree == first_tree and all(
            tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype
            for a, b in zip(first, leaves, strict=True)
        )
        if not same:
            raise TypeError(
                f"{api}: every branch must return the same structure, shapes and dtypes, but "
                f"{names[0]} {fun_label(funs[0])} returns {_types(outs[0])} and {name} "
                f"{fun_label(fun)} returns {_types(out)}. Fix: make the branches return the "
                "same types (cast with `.astype`, or return placeholders of the same shape)."
            )


def check_pred(api: str, pred: Any) -> None:
    """Raise ``TypeError`` for a non-scalar predicate, showing the user's value."""
    shape = np.shape(pred)
    if shape != ():
        raise TypeError(
            f"{api}: pred must be a scalar (a bool, or an int), but got {shown(pred)} of shape "
            f"{shape}. Fix: reduce it to one value, e.g. `jnp.all(pred)` or `jnp.any(pred)`."
        )


def check_index(api: str, index: Any) -> None:
    """Raise ``TypeError`` for a non-integer or non-scalar branch index (the user's value)."""
    shape = np.shape(index)
    dtype = jax.numpy.result_type(index)
    if shape != ():
        raise TypeError(
            f"{api}: index must be a scalar integer, but got {shown(index)} of shape {shape}. "
            "Fix: pass one branch number."
        )
    if not jax.numpy.issubdtype(dtype, jax.numpy.integer):
        raise TypeError(
            f"{api}: index must be an integer, but got {shown(index)} ({dtype}). "
            "Fix: convert it, e.g. `jnp.int32(index)` or `index.astype(jnp.int32)`."
        )
