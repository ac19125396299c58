"""One stateful call over Quantities as a pure function of mantissas (for jvp, vjp, linearize).

The counterpart of statediff's own ``PureCall`` for the unit-aware ``jvp``,
``vjp`` and ``linearize``: it traces the (tagging) function, reads the
states, splits the differentiated states and arguments into mantissas and
units, and runs the call purely on mantissas, re-attaching units inside so the
user's code sees Quantities. It also converts user tangents and cotangents
(which carry units) to mantissas, checking that their units are consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from stategraph import State

from .units import attach_units, is_quantity, plain_unit, split_units, unit_text, untag_units

__all__ = ["UnitCall", "div_units", "mul_units", "to_mantissas", "zeros_like_mantissas"]


def mul_units(a: Any, b: Any) -> Any:
    """``a * b`` for units where ``None`` means unitless."""
    a, b = plain_unit(a), plain_unit(b)
    if a is None:
        return b
    if b is None:
        return a
    return a * b


def div_units(a: Any, b: Any) -> Any:
    """``a / b`` for units where ``None`` means unitless."""
    a, b = plain_unit(a), plain_unit(b)
    if b is None:
        return a
    if a is None:
        return b**-1
    return a / b


def _dim(unit: Any) -> Any:
    return u.get_dim(1.0) if unit is None else unit.dim


def _unit(x: Any) -> Any:
    return x.unit if isinstance(x, u.Quantity) else None


def _aval(x: Any) -> Any:
    return x if isinstance(x, jax.ShapeDtypeStruct) else jax.typeof(x)


def _tangent_dtype(x: Any) -> Any:
    dtype = np.dtype(_aval(x).dtype)
    return dtype if jnp.issubdtype(dtype, np.inexact) else np.dtype(jax.dtypes.float0)


def zeros_like_mantissas(mantissas: Any) -> Any:
    """Zero tangents for a tree of mantissas (``float0`` for integer leaves)."""

    def zero(x: Any) -> Any:
        dtype = _tangent_dtype(x)
        shape = _aval(x).shape
        return np.zeros(shape, dtype) if dtype == jax.dtypes.float0 else jnp.zeros(shape, dtype)

    return jax.tree.map(zero, mantissas)


def to_mantissas(
    api: str,
    role: str,
    items: Sequence[tuple[str, Any, Any]],
    combine: Any,
) -> tuple[list[Any], Any]:
    """Convert (co)tangents carrying units into mantissas, with one common unit ratio.

    Args:
        api: Name used in error messages.
        role: ``"tangent"`` or ``"cotangent"``.
        items: ``(what, primal, given)`` triples: ``what`` names the primal in
            messages, ``primal`` is a tree with Quantity leaves (``UnitTag``
            split already into mantissas and units is not needed: leaves carry
            their units), ``given`` the user's (co)tangent for it or ``None``
            for zeros.
        combine: ``combine(unit of given leaf, unit of primal leaf)`` gives
            the leaf's ratio unit, which must have the same dimension for all
            leaves: ``unit(t) / unit(x)`` for tangents, ``unit(c) * unit(y)``
            for cotangents.

    Returns:
        ``(mantissas, ratio)``: per item, the given value as mantissas in the
        unit ``primal unit (*|/) ratio`` (zeros for ``None``), and the common
        ratio (``None``: dimensionless; a dimensionless ratio with a scale is
        kept so the scale is applied).

    Raises:
        TypeError: a (co)tangent whose tree structure differs from its primal's.
        ValueError: a leaf whose shape or dtype differs from its primal's.
        brainunit.UnitMismatchError: leaves whose ratio units disagree.
    """
    flat: list[tuple[str, list[Any], Any, list[Any] | None]] = []
    ratio: Any = None
    first: str | None = None
    for what, primal, given in items:
        p_leaves, p_tree = jax.tree.flatten(primal, is_leaf=is_quantity)
        if given is None:
            flat.append((what, p_leaves, p_tree, None))
            continue
        t_leaves, t_tree = jax.tree.flatten(given, is_leaf=is_quantity)
        if t_tree != p_tree:
            raise TypeError(
                f"{api}: the {role} for {what} has tree structure {t_tree}, but its primal has "
                f"{p_tree}; a {role} must have its primal's structure (Quantities count as "
                "leaves). Fix: pass one value per leaf of the primal."
            )
        paths = [jax.tree_util.keystr(p) for p, _ in _paths(primal)]
        for path, p, t in zip(paths, p_leaves, t_leaves, strict=True):
            r = plain_unit(combine(_unit(t), _unit(p)))
            if first is None:
                ratio, first = r, f"{what}{path}"
            elif _dim(r) != _dim(ratio):
                raise u.UnitMismatchError(
                    f"{api}(..., unit_aware=True): the {role}s' units are inconsistent: for "
                    f"{first} the {role} has unit ratio {unit_text(ratio)}, for {what}{path} "
                    f"{unit_text(r)} (the {role} of {what}{path} is in {unit_text(_unit(t))}, "
                    f"its primal in {unit_text(_unit(p))}). Rule: every {role} carries its "
                    f"primal's unit times one common unit (e.g. the primal's own unit). Fix: "
                    f"give each {role} its primal's unit",
                    *[x for x in (ratio, r) if x is not None],
                )
        flat.append((what, p_leaves, p_tree, t_leaves))
    out = []
    for what, p_leaves, p_tree, t_leaves in flat:
        if t_leaves is None:
            m_leaves = [zeros_like_mantissas(_mantissa(p)) for p in p_leaves]
        else:
            m_leaves = []
            paths = [
                jax.tree_util.keystr(p) for p, _ in _paths(jax.tree.unflatten(p_tree, p_leaves))
            ]
            for path, p, t in zip(paths, p_leaves, t_leaves, strict=True):
                target = _target(role, _unit(p), ratio)
                m = _in_unit(t, target)
                _check_leaf(api, role, f"{what}{path}", _mantissa(p), m)
                m_leaves.append(m)
        out.append(jax.tree.unflatten(p_tree, m_leaves))
    return out, ratio


def _paths(tree: Any) -> list[tuple[Any, Any]]:
    return jax.tree_util.tree_leaves_with_path(tree, is_leaf=is_quantity)


def _target(role: str, primal_unit: Any, ratio: Any) -> Any:
    # tangent t = x-unit * ratio; cotangent c = ratio / y-unit
    return mul_units(primal_unit, ratio) if role == "tangent" else div_units(ratio, primal_unit)


def _mantissa(x: Any) -> Any:
    return x.mantissa if isinstance(x, u.Quantity) else x


def _in_unit(t: Any, target: Any) -> Any:
    if not isinstance(t, u.Quantity):
        if target is None or target.is_unitless:
            return t
        t = u.Quantity(t)
    return t.to_decimal(u.UNITLESS if target is None else target)


def _check_leaf(api: str, role: str, what: str, primal: Any, m: Any) -> None:
    pa, ma = _aval(primal), jax.typeof(m)
    expected = _tangent_dtype(primal)
    dtype_ok = expected == jax.dtypes.float0 or np.dtype(ma.dtype) == expected
    if tuple(pa.shape) != tuple(ma.shape) or not dtype_ok:
        raise ValueError(
            f"{api}: the {role} for {what} has shape {tuple(ma.shape)} and dtype {ma.dtype}, "
            f"but its primal has shape {tuple(pa.shape)} and dtype {pa.dtype}; a {role} must "
            f"have its primal's shape and dtype. Fix: e.g. `jnp.ones_like(x)` times a unit."
        )


def _is_pair(treedef: Any) -> bool:
    if treedef.num_nodes == 1:
        return False
    node = jax.tree.unflatten(treedef, [0] * treedef.num_leaves)
    return isinstance(node, (tuple, list)) and len(treedef.children()) == 2


class UnitCall:
    """One call of a unit-aware product transform, split for differentiation.

    Create it inside the transform's driver. ``owner`` provides ``plain``
    (statediff's own transform for the call, giving the configuration),
    ``name`` and ``lifted`` (a :class:`statejax.StatefulFunction` of the
    function with its Quantity outputs tagged).

    Attributes:
        primals: ``(grad state mantissas as a list, *differentiated argument
            mantissas)``, the inputs of :meth:`__call__`.
        quantities: The same inputs with their units (for (co)tangent checks).
        state_units: Per state of ``grad_states``, its leaves' units.
        arg_units: Per differentiated argument, its leaves' units.
        positions: Positions of the differentiated arguments.
        written: The states the function writes, in the order of ``new``.
    """

    def __init__(self, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        plain, name = owner.plain, owner.name
        self.owner = owner
        self.positions = plain.positions(len(args))
        lifted = owner.lifted.trace(*args, **kwargs)
        read = lifted.read_states
        self.written = lifted.written_states
        if plain.has_aux and not _is_pair(lifted.out_tree):
            raise TypeError(
                f"{name}: has_aux=True requires the function to return a pair (value, aux), "
                f"but it returned a pytree of structure {lifted.out_tree}. Fix: return "
                "`value, aux`, or pass has_aux=False."
            )
        gs = plain.grad_states
        if plain.check_states:
            _check_touched(name, gs.states, read, self.written)
        self._grad_index = {id(s): i for i, s in enumerate(gs.states)}
        grad_values = [s.value for s in gs.states]  # recorded reads
        self._others = {id(s): s.value for s in read if id(s) not in self._grad_index}
        self._read = read
        self._lifted = lifted
        self._args = args
        self._kwargs = kwargs
        diff_args = [args[p] for p in self.positions]
        self.quantities = (list(grad_values), *diff_args)
        split_states = [split_units(v) for v in grad_values]
        split_args = [split_units(a) for a in diff_args]
        self.state_units = [x[1] for x in split_states]
        self.arg_units = [x[1] for x in split_args]
        self.primals = ([x[0] for x in split_states], *(x[0] for x in split_args))
        self.out: tuple[Any, list[Any]] | None = None

    def __call__(self, g_list: list[Any], *diff: Any) -> tuple[Any, tuple[Any, Any, Any]]:
        """``(state mantissas, *arg mantissas) -> (value mantissas, (value, aux, new states))``."""
        call_args = list(self._args)
        for p, v, units in zip(self.positions, diff, self.arg_units, strict=True):
            call_args[p] = attach_units(v, units)
        g_q = [attach_units(g, units) for g, units in zip(g_list, self.state_units, strict=True)]
        index = self._grad_index
        state_values = [
            g_q[index[id(s)]] if id(s) in index else self._others[id(s)] for s in self._read
        ]
        leaves = jax.tree.leaves((tuple(call_args), self._kwargs))
        out, new = self._lifted.run_flat(leaves, state_values)
        y, aux = (out[0], out[1]) if self.owner.plain.has_aux else (out, None)
        y_m, y_units = untag_units(y)
        self.out = (jax.tree.structure(y_m), y_units)
        return y_m, (y, aux, new)

    def write(self, new: Sequence[Any]) -> None:
        """Write the written states back with their primal values (recorded writes)."""
        for state, value in zip(self.written, new, strict=True):
            state.value = value


def _check_touched(name: str, states: list[State], read: list[State], written: list[State]) -> None:
    ids = {id(s) for s in (*read, *written)}
    missing = [s for s in states if id(s) not in ids]
    if missing:
        names = ", ".join(repr(s) for s in missing)
        seen = ", ".join(repr(s) for s in {id(s): s for s in (*read, *written)}.values())
        raise ValueError(
            f"{name}: grad_states holds {names}, which the function never reads or writes (it "
            f"touched: {seen or 'no state at all'}). Its derivative would be zero. Fix: pass "
            "the states the function uses, or check_states=False to get zeros."
        )
