"""Describing and comparing the structure of state values (pytrees of arrays)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .jax_compat import ArrayImpl

__all__ = [
    "FAST_TYPES",
    "describe",
    "has_tracer",
    "leaf_signature",
    "structure_of",
]

_Tracer = jax.core.Tracer

# Types that are certainly single, concrete leaves: writes of these skip the
# tracer scan on the fast path. ``ArrayImpl`` is named, not found by making an
# array: importing a layer must not start a backend.
FAST_TYPES: frozenset[type] = frozenset(
    {ArrayImpl, np.ndarray, float, int, bool, complex}
    | {type(np.dtype(d).type(0)) for d in ("float16", "float32", "float64", "int32", "int64")}
)

_SHORT = {
    "float16": "f16",
    "bfloat16": "bf16",
    "float32": "f32",
    "float64": "f64",
    "int8": "i8",
    "int16": "i16",
    "int32": "i32",
    "int64": "i64",
    "uint8": "u8",
    "uint32": "u32",
    "bool": "bool",
    "complex64": "c64",
    "complex128": "c128",
}


def leaf_signature(x: Any) -> tuple[Any, ...]:
    """Return ``(shape, dtype)`` of an array-like leaf, or ``(type,)`` otherwise."""
    try:
        aval = jax.typeof(x)
    except TypeError:
        return (type(x).__name__,)
    shape = getattr(aval, "shape", None)
    dtype = getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return (type(x).__name__,)
    name = dtype.name if isinstance(dtype, np.dtype) else str(dtype)  # extended: key<fry>
    return (tuple(shape), name)


def structure_of(value: Any) -> tuple[Any, tuple[tuple[Any, ...], ...]]:
    """Return the tree structure and the leaf signatures of ``value``."""
    leaves, treedef = jax.tree.flatten(value)
    return treedef, tuple(leaf_signature(x) for x in leaves)


def has_tracer(value: Any) -> bool:
    """Return whether any leaf of ``value`` is a JAX tracer."""
    if type(value) in FAST_TYPES:
        return False
    if isinstance(value, _Tracer):
        return True
    return any(isinstance(x, _Tracer) for x in jax.tree.leaves(value))


def _describe_leaf(x: Any) -> str:
    sig = leaf_signature(x)
    if len(sig) == 1:
        return str(sig[0])
    shape, dtype = sig
    text = f"{_SHORT.get(dtype, dtype)}[{','.join(str(d) for d in shape)}]"
    if isinstance(x, _Tracer):
        text += "(traced)"
    return text


def describe(value: Any) -> str:
    """Return a short, tracer-safe description such as ``f32[3,4]``.

    Example:
        >>> import numpy as np
        >>> describe({"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)})
        "{'b': f32[3], 'w': f32[2,3]}"
    """
    if type(value) in FAST_TYPES or isinstance(value, _Tracer):
        return _describe_leaf(value)
    try:
        leaves, treedef = jax.tree.flatten(value)
    except Exception:  # pragma: no cover - exotic objects
        return type(value).__name__
    if treedef.num_leaves == 1 and treedef.num_nodes == 1:
        return _describe_leaf(leaves[0])
    marked = jax.tree.unflatten(treedef, [_Shown(_describe_leaf(x)) for x in leaves])
    return repr(marked)


class _Shown:
    """A leaf stand-in whose ``repr`` is a given text (for tree descriptions)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text
