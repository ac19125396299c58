"""A unit-checked gradient-descent step on states holding Quantities."""

from __future__ import annotations

from typing import Any

import brainunit as u
import jax
import numpy as np

from stategraph import State

from .units import is_quantity, unit_text, with_unit

__all__ = ["sgd_step"]

_API = "statediff_units.sgd_step"


def _is_state(x: Any) -> bool:
    return isinstance(x, State)


def _unit_of(x: Any) -> Any:
    return x.unit if isinstance(x, u.Quantity) else None


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x.mantissa if isinstance(x, u.Quantity) else x))


def _new_leaf(state: State, where: str, old: Any, g: Any, lr: Any) -> Any:
    """Return ``old - lr * g`` in ``old``'s unit and dtype, or raise naming the state."""
    old_unit, g_unit, lr_unit = _unit_of(old), _unit_of(g), _unit_of(lr)
    delta = lr * g  # a product never raises a unit error
    delta_unit = _unit_of(delta)
    delta_dim = u.get_dim(delta)
    old_dim = u.get_dim(old)
    if delta_dim != old_dim:
        want = (
            old_unit if g_unit is None else (g_unit**-1 if old_unit is None else old_unit / g_unit)
        )
        raise u.UnitMismatchError(
            f"{_API}: state {state!r}{where} holds a value in unit {unit_text(old_unit)}, but "
            f"lr * grad has unit {unit_text(lr_unit)} * {unit_text(g_unit)} = "
            f"{unit_text(delta_unit)}, so `value - lr * grad` is inconsistent. Rule: lr must "
            f"have unit unit(param) / unit(grad) = {unit_text(want)}. Fix: e.g. "
            f"lr = 0.01 * ({unit_text(want)}). No state was changed",
            *[x for x in (old_unit, delta_unit) if x is not None],
        )
    old_m = old.mantissa if isinstance(old, u.Quantity) else old
    if old_unit is None:
        delta_m = u.maybe_decimal(delta) if isinstance(delta, u.Quantity) else delta
    elif isinstance(delta, u.Quantity):
        delta_m = delta.to_decimal(old_unit)
    else:  # a dimensionless unit on the state, a plain update
        delta_m = delta / old_unit.magnitude
    new_m = old_m - delta_m
    if np.shape(new_m) != np.shape(old_m):
        raise ValueError(
            f"{_API}: state {state!r}{where} has shape {_shape(old)} but lr * grad has shape "
            f"{_shape(delta)}; the update would change the state's shape. Fix: pass the "
            "gradient of this state (same shape as its value) and a scalar lr. No state was "
            "changed."
        )
    dtype = getattr(old_m, "dtype", None)
    if dtype is not None:
        new_m = jax.numpy.asarray(new_m, dtype=dtype)
    return new_m if old_unit is None else with_unit(new_m, old_unit)


def _per_state(name: str, value: Any, treedef: Any) -> list[Any]:
    try:
        return treedef.flatten_up_to(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"{_API}: {name} must have the structure of params ({treedef}, with one entry per "
            f"state), got {jax.tree.structure(value, is_leaf=is_quantity)}. Fix: pass the "
            "gradients returned by grad(..., grad_states=params)."
        ) from None


def _check_lr(lr: Any) -> None:
    """Raise ``TypeError`` if the learning rate holds something other than numbers."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(lr, is_leaf=is_quantity):
        if is_quantity(leaf) or isinstance(leaf, (int, float, complex)) and not isinstance(
            leaf, bool
        ):
            continue
        if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
            continue
        where = f"lr{jax.tree_util.keystr(path)}" if path else "lr"
        raise TypeError(
            f"{_API}: the learning rate must be a number, an array or a brainunit Quantity "
            f"(or a container like params with one per state), but {where} is "
            f"{type(leaf).__name__} {leaf!r}. Fix: pass a number, e.g. lr=0.1, or "
            "0.1 * unit for a learning rate with a unit."
        )


def sgd_step(params: Any, grads: Any, lr: Any) -> None:
    """Apply one gradient-descent step ``p.value = p.value - lr * g``, checking units.

    Each state keeps its unit and dtype. The units must agree: ``lr * g``
    must have the dimension of ``p.value``, that is ``lr`` has unit
    ``unit(p) / unit(g)``; a scale difference (``mV`` against ``V``) is
    converted. Every update is checked before any state is written: on an
    error no state changes. Works eagerly and inside ``statejax``
    transforms (the writes are recorded like any other).

    Args:
        params: A State (usually a ``ParamState``), or a sequence or dict of
            States (nested allowed), as passed to ``grad_states``.
        grads: The gradients, in the container of ``params`` (what
            ``grad(..., grad_states=params)`` returns).
        lr: The learning rate: one number or Quantity for every state, or a
            container like ``params`` with one per state.

    Raises:
        brainunit.UnitMismatchError: ``lr * g`` does not have the dimension of
            a state's value; the message names the state and the units.
        ValueError: ``grads`` or ``lr`` do not match ``params``, or an update
            would change a state's shape.
        TypeError: ``params`` holds something other than States.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
        >>> import statediff_units as sdu
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="w")
        >>> def loss():
        ...     return (w.value ** 2).sum()             # unit mV^2
        >>> g = sdu.grad(loss, grad_states=w)()         # unit mV
        >>> sdu.sgd_step(w, g, 0.25)                    # lr: mV / mV = 1
        >>> w.value
        Quantity([0.5 1. ], "mV")
    """
    states, treedef = jax.tree.flatten(params, is_leaf=_is_state)
    for path, leaf in jax.tree_util.tree_leaves_with_path(params, is_leaf=_is_state):
        if not isinstance(leaf, State):
            raise TypeError(
                f"{_API}: params must be a State or a container of States, but "
                f"params{jax.tree_util.keystr(path)} is {type(leaf).__name__}. Fix: pass the "
                "State objects (as for grad_states), not their values."
            )
    grad_list = _per_state("grads", grads, treedef)
    _check_lr(lr)
    lr_leaves = jax.tree.leaves(lr, is_leaf=is_quantity)
    if len(lr_leaves) == 1 and jax.tree.structure(lr, is_leaf=is_quantity).num_nodes == 1:
        lr_list = [lr] * len(states)
    else:
        lr_list = _per_state("lr", lr, treedef)
    new_values = []
    for state, g, rate in zip(states, grad_list, lr_list, strict=True):
        old = state.value
        old_leaves, old_tree = jax.tree.flatten(old, is_leaf=is_quantity)
        g_leaves, g_tree = jax.tree.flatten(g, is_leaf=is_quantity)
        if g_tree != old_tree:
            raise ValueError(
                f"{_API}: the gradient of state {state!r} has structure "
                f"{g_tree}, but the state's value has "
                f"{old_tree}. Fix: pass the gradients returned for these states. No state was "
                "changed."
            )
        paths = [p for p, _ in jax.tree_util.tree_leaves_with_path(old, is_leaf=is_quantity)]
        new_leaves = [
            _new_leaf(state, jax.tree_util.keystr(p), o, gl, rate)
            for p, o, gl in zip(paths, old_leaves, g_leaves, strict=True)
        ]
        new_values.append(jax.tree.unflatten(old_tree, new_leaves))
    done: list[tuple[State, Any]] = []
    try:
        for state, new in zip(states, new_values, strict=True):
            old = state.value
            state.value = new
            done.append((state, old))
    except BaseException:
        for state, old in reversed(done):
            state.value = old
        raise
