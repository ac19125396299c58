"""Checking user-given tangents against their primals, and filling missing ones with zeros."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stategraph import State

from .pure_call import DiffTransform

__all__ = ["arg_tangents", "state_tangents", "tangent_dtype", "zeros_tangent"]


def tangent_dtype(dtype: Any) -> np.dtype:
    """Return the tangent dtype of a primal dtype (``float0`` for integers and bools)."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, np.inexact):
        return dtype
    return np.dtype(jax.dtypes.float0)


def _aval(x: Any) -> Any:
    return x if isinstance(x, jax.ShapeDtypeStruct) else jax.typeof(x)


def zeros_tangent(primal: Any) -> Any:
    """Return a zero tangent for a primal pytree (of arrays or ``ShapeDtypeStruct``)."""

    def zero(x: Any) -> Any:
        aval = _aval(x)
        dtype = tangent_dtype(aval.dtype)
        if dtype == jax.dtypes.float0:
            return np.zeros(aval.shape, dtype)
        return jnp.zeros(aval.shape, dtype)

    return jax.tree.map(zero, primal)


def _check(api: str, what: str, primal: Any, tangent: Any, fix: str) -> None:
    p_leaves, p_tree = jax.tree.flatten(primal)
    t_leaves, t_tree = jax.tree.flatten(tangent)
    if p_tree != t_tree:
        raise TypeError(
            f"{api}: the tangent for {what} has tree structure {t_tree}, but its primal has "
            f"{p_tree}; a tangent must have its primal's structure. Fix: {fix}."
        )
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(primal)]
    for path, p, t in zip(paths, p_leaves, t_leaves, strict=True):
        pa = _aval(p)
        try:
            ta = jax.typeof(t)
        except TypeError:
            raise TypeError(
                f"{api}: the tangent for {what}{path} is a {type(t).__name__} ({t!r}), not an "
                f"array. Fix: {fix}."
            ) from None
        expected = tangent_dtype(pa.dtype)
        if tuple(ta.shape) != tuple(pa.shape) or np.dtype(ta.dtype) != expected:
            raise ValueError(
                f"{api}: the tangent for {what}{path} has shape {tuple(ta.shape)} and dtype "
                f"{_dtype_name(ta.dtype)}, but its primal has shape {tuple(pa.shape)} and dtype "
                f"{_dtype_name(pa.dtype)}; a tangent must have its primal's shape and dtype "
                f"({_dtype_name(expected)} here; float0 for integer or bool primals, as in "
                f"JAX). Fix: {fix}."
            )


def _dtype_name(dtype: Any) -> str:
    return "float0" if np.dtype(dtype) == jax.dtypes.float0 else str(np.dtype(dtype))


def _fill_missing(container: Any, tangents: Any) -> Any:
    """Put ``None`` (zero) where a dict of ``tangents`` lacks a key of ``container``.

    Lists and tuples are interchangeable; anything else is left for the
    structure check to judge.
    """
    if tangents is None or isinstance(container, State):
        return tangents
    if isinstance(container, dict) and isinstance(tangents, dict):
        filled = {
            k: _fill_missing(v, tangents[k]) if k in tangents else None
            for k, v in container.items()
        }
        filled.update({k: v for k, v in tangents.items() if k not in container})  # rejected later
        return filled
    if (
        type(container) in (list, tuple)
        and type(tangents) in (list, tuple)
        and len(container) == len(tangents)
    ):
        pairs = zip(container, tangents, strict=True)
        return type(container)(_fill_missing(c, t) for c, t in pairs)
    return tangents


def state_tangents(owner: DiffTransform, values: Sequence[Any], given: Any) -> list[Any]:
    """Return one tangent per state of ``grad_states``, checked, zeros where missing.

    ``given`` is ``None`` (all zeros) or has the container shape of
    ``grad_states``, where a ``None`` entry or a missing dict key means zeros.
    """
    api, gs = owner.name, owner.grad_states
    if given is None:
        return [zeros_tangent(v) for v in values]
    if not gs.given:
        raise TypeError(
            f"{api}: state_tangents were given, but grad_states is None, so there is no "
            "state to take them. Fix: pass grad_states=... when building the transform, or "
            "drop state_tangents."
        )
    container = gs.unflatten(list(gs.states))
    try:
        flat = gs.flatten(_fill_missing(container, given))
    except (ValueError, TypeError) as err:
        raise TypeError(
            f"{api}: state_tangents must have the container shape of grad_states "
            f"({_shape_text(container)}), with a tangent (or None for zeros) per state, but "
            f"got {_shape_text(given)} ({err}). Fix: e.g. "
            "state_tangents=jax.tree.map(jnp.ones_like, values of grad_states)."
        ) from None
    out = []
    for i, (value, tangent) in enumerate(zip(values, flat, strict=True)):
        if tangent is None:
            out.append(zeros_tangent(value))
            continue
        fix = "pass e.g. `jnp.ones_like(state.value)`, or None for a zero tangent"
        _check(api, owner.describe_state(i), value, tangent, fix)
        out.append(tangent)
    return out


def arg_tangents(
    owner: DiffTransform, positions: tuple[int, ...], primals: Sequence[Any], given: Any
) -> list[Any]:
    """Check one tangent per differentiated argument (in the order of ``positions``)."""
    api = owner.name
    if not isinstance(given, (tuple, list)):
        raise TypeError(
            f"{api}: tangents must be a tuple (or list) with one tangent per differentiated "
            f"argument ({_which(owner, positions)}), got {type(given).__name__} {given!r}. "
            "Fix: e.g. tangents=(t,) for one argument."
        )
    if len(given) != len(positions):
        raise ValueError(
            f"{api}: got {len(given)} tangent(s), but {len(positions)} argument(s) are "
            f"differentiated ({_which(owner, positions)}). Fix: pass one tangent per "
            "differentiated argument, in argnums order."
        )
    for p, primal, tangent in zip(positions, primals, given, strict=True):
        fix = "pass e.g. `jnp.ones_like(x)` for that argument"
        _check(api, owner.describe_arg(p), primal, tangent, fix)
    return list(given)


def _which(owner: DiffTransform, positions: tuple[int, ...]) -> str:
    if owner.argnums.given:
        return f"argnums={owner.argnums.text}"
    if not positions:
        return "grad_states only, so none"
    return f"all positional arguments, {positions}"


def _shape_text(tree: Any) -> str:
    return str(jax.tree.structure(tree, is_leaf=lambda x: isinstance(x, State) or x is None))
