"""Nested, rematerialised scans: reverse-mode loops whose memory grows like log(length)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["check_base", "match_types", "level_sizes", "nested_scan"]


def check_base(api: str, base: Any) -> int:
    """Validate ``base`` (an int of at least 2)."""
    if isinstance(base, bool):
        raise TypeError(f"{api}: base must be an int >= 2, got the bool {base!r}.")
    try:
        base = operator.index(base)
    except TypeError:
        raise TypeError(
            f"{api}: base must be an int >= 2, got {type(base).__name__} {base!r}."
        ) from None
    if base < 2:
        raise ValueError(f"{api}: base must be an int >= 2, got {base}.")
    return base


def _ceil_root(n: int, k: int) -> int:
    """Return the smallest ``s`` with ``s ** k >= n``."""
    s = max(1, int(round(n ** (1.0 / k))))
    while s**k < n:
        s += 1
    while s > 1 and (s - 1) ** k >= n:
        s -= 1
    return s


def level_sizes(n: int, base: int) -> list[int]:
    """Return loop sizes (each at most ``base``) whose product is the least cover of ``n``.

    The depth is ``ceil(log_base(n))``; each level gets about the same size,
    so the padding beyond ``n`` is small (``10_000`` steps, base 16: four
    levels of 10).
    """
    if n <= base:
        return [n]
    depth = 1
    while base**depth < n:
        depth += 1
    sizes = []
    rest = n
    for k in range(depth, 0, -1):
        s = _ceil_root(rest, k)
        sizes.append(s)
        rest = -(-rest // s)
    return sizes


def nested_scan(
    step: Callable[[Any, Any], tuple[Any, Any]],
    carry: Any,
    xs: Any,
    sizes: list[int],
    keep_going: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any]:
    """Scan ``step`` over ``prod(sizes)`` iterations as nested, checkpointed scans.

    Every level but the innermost runs ``jax.checkpoint``-ed blocks, so the
    backward pass stores one carry per iteration of each level (about
    ``sum(sizes)`` carries) and recomputes the rest. ``xs`` (leading axis
    ``prod(sizes)``) may be ``None``. With ``keep_going(carry)``, a block
    whose start fails it is skipped as a whole (``jax.lax.cond``); its
    outputs must then be ``None`` (while loops).
    """
    if len(sizes) == 1:
        return jax.lax.scan(step, carry, xs, length=sizes[0])
    outer, inner = sizes[0], math.prod(sizes[1:])
    blocks = jax.tree.map(lambda x: x.reshape((outer, inner, *x.shape[1:])), xs)

    @jax.checkpoint
    def level(c: Any, block: Any) -> tuple[Any, Any]:
        def run(c: Any) -> tuple[Any, Any]:
            return nested_scan(step, c, block, sizes[1:], keep_going)

        if keep_going is None:
            return run(c)
        return jax.lax.cond(keep_going(c), lambda c: run(c)[0], lambda c: c, c), None

    carry, ys = jax.lax.scan(level, carry, blocks, length=outer)
    ys = jax.tree.map(lambda y: y.reshape((outer * inner, *y.shape[2:])), ys)
    return carry, ys


def match_types(api: str, what: str, value: Any, shapes: Any) -> Any:
    """Cast ``value``'s leaves to the dtypes ``shapes`` has (the types the loop body returns).

    As ``jax.lax.scan`` promotes a weakly typed initial carry: the loop's
    carry keeps one type throughout.
    """
    v_leaves, v_tree = jax.tree.flatten(value)
    s_leaves, s_tree = jax.tree.flatten(shapes)
    if v_tree != s_tree:
        raise TypeError(
            f"{api}: the body must return {what} with the structure it receives: got {v_tree} "
            f"in, {s_tree} out."
        )
    out = []
    for i, (v, s) in enumerate(zip(v_leaves, s_leaves, strict=True)):
        aval = jax.typeof(v)
        if tuple(aval.shape) != tuple(s.shape):
            raise TypeError(
                f"{api}: the body must return {what} of the shapes it receives, but leaf {i} "
                f"goes in as {aval.str_short()} and comes out with shape {tuple(s.shape)}."
            )
        if aval.dtype != s.dtype or (getattr(aval, "weak_type", False) and not s.weak_type):
            v = jax.lax.convert_element_type(v, s.dtype)
        out.append(jnp.asarray(v))
    return jax.tree.unflatten(v_tree, out)
