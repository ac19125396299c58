"""Unit-aware ``jvp``, ``vjp`` and ``linearize`` (statediff's product transforms).

Units of (co)tangents:

- ``jvp`` / ``linearize``: each input tangent carries its primal's unit times
  one common ratio ``R`` (usually ``R = 1``: tangents in their primals'
  units; ``R = 1 / ms`` for rates). The output tangent of output leaf ``y``
  then has unit ``unit(y) * R``.
- ``vjp``: each cotangent leaf ``c`` of output leaf ``y`` must give one common
  ``Q = unit(c) * unit(y)`` (a plain cotangent of a single-unit output gives
  ``Q = unit(y)``: gradients). The cotangent of input leaf ``x`` then has unit
  ``Q / unit(x)``.

Dimensionless results are plain arrays, as for the Jacobians.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax

from stategraph import State
from statejax import StatefulFunction

from .calls import UnitCall, div_units, mul_units, to_mantissas
from .transform import UNIT_ERRORS, _tagging
from .units import retag_quantities, unit_block

__all__ = ["UnitJVP", "UnitLinearize", "UnitProductTransform", "UnitVJP"]


def _with_units(mantissas: Any, units: Sequence[Any], scale: Any, invert: bool) -> Any:
    """Attach ``unit * scale`` (or ``scale / unit`` with ``invert``) to each leaf."""
    leaves, tree = jax.tree.flatten(mantissas)
    new = [
        unit_block(m, div_units(scale, x) if invert else mul_units(x, scale))
        for m, x in zip(leaves, units, strict=True)
    ]
    return jax.tree.unflatten(tree, new)


def _fill_missing(container: Any, given: Any) -> Any:
    """Put ``None`` (zero) where a dict of tangents lacks a key of ``container``."""
    if given is None or isinstance(container, State):
        return given
    if isinstance(container, dict) and isinstance(given, dict):
        filled = {
            k: _fill_missing(v, given[k]) if k in given else None for k, v in container.items()
        }
        filled.update({k: v for k, v in given.items() if k not in container})
        return filled
    if (
        type(container) in (list, tuple)
        and type(given) in (list, tuple)
        and len(container) == len(given)
    ):
        return type(container)(_fill_missing(c, t) for c, t in zip(container, given, strict=True))
    return given


class UnitProductTransform:
    """Shared base of the unit-aware ``jvp``, ``vjp`` and ``linearize``.

    Args:
        plain: statediff's own transform for the same call (built with
            ``unit_aware=False``): it validated the options and gives the
            configuration (``grad_states``, ``argnums``, ``has_aux``, the
            return layout).
    """

    def __init__(self, plain: Any) -> None:
        self.plain = plain
        self.name = plain.name
        self.target = plain.target
        self.lifted = StatefulFunction(_tagging(plain.target, plain.has_aux), api=self.name)
        self._driver = StatefulFunction(self._drive, api=self.name)
        functools.update_wrapper(self, plain.target, updated=())

    def _drive(self, *args: Any) -> Any:
        raise NotImplementedError

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._driver(*args, **kwargs)
        except UNIT_ERRORS as err:
            err.add_note(self.unit_note())
            raise

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run(*args, **kwargs)

    def clear_cache(self) -> None:
        """Forget every traced signature and compiled function, through every layer of nesting.

        Call it after rebinding a model's attribute to another State that was
        already alive; the next call traces the function again.
        """
        self._driver.clear_cache()
        self.lifted.clear_cache()
        self.plain.clear_cache()

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self) -> str:
        target = getattr(self.target, "__qualname__", self.target)
        return f"{self.name}({target!r}, unit_aware=True)"

    def unit_note(self) -> str:
        """The note added to brainunit's unit errors: what was being differentiated."""
        plain = self.plain
        parts = []
        if plain.grad_states.given:
            for i in range(len(plain.grad_states.states)):
                parts.append(plain.describe_state(i))
        if plain.argnums.given:
            parts.extend(plain.describe_arg(p) for p in plain.argnums.positions)
        elif not plain.grad_states.given:
            parts.append("every positional argument")
        target = getattr(self.target, "__qualname__", repr(self.target))
        return (
            f"{self.name}(..., unit_aware=True) of {target} was differentiating with respect "
            f"to {'; '.join(parts)} when this unit error was raised."
        )

    def _state_items(self, call: UnitCall, given: Any) -> list[tuple[str, Any, Any]]:
        gs = self.plain.grad_states
        values = call.quantities[0]
        if given is None:
            per_state = [None] * len(values)
        elif not gs.given:
            raise TypeError(
                f"{self.name}: state_tangents were given, but grad_states is None, so there is "
                "no state to take them. Fix: pass grad_states=... when building the "
                "transform, or drop state_tangents."
            )
        else:
            container = gs.unflatten(list(gs.states))
            try:
                per_state = gs.flatten(_fill_missing(container, given))
            except (ValueError, TypeError) as err:
                raise TypeError(
                    f"{self.name}: state_tangents must have the container shape of "
                    f"grad_states, with a tangent (or None for zeros) per state ({err}). Fix: "
                    "e.g. state_tangents=jax.tree.map(jnp.ones_like, values of grad_states)."
                ) from None
        return [
            (self.plain.describe_state(i), v, t)
            for i, (v, t) in enumerate(zip(values, per_state, strict=True))
        ]

    def _arg_items(self, call: UnitCall, tangents: Any) -> list[tuple[str, Any, Any]]:
        if not isinstance(tangents, (tuple, list)):
            raise TypeError(
                f"{self.name}: tangents must be a tuple (or list) with one tangent per "
                f"differentiated argument, got {type(tangents).__name__} {tangents!r}. Fix: "
                "e.g. tangents=(t,) for one argument."
            )
        if len(tangents) != len(call.positions):
            raise ValueError(
                f"{self.name}: got {len(tangents)} tangent(s), but {len(call.positions)} "
                f"argument(s) are differentiated (positions {call.positions}). Fix: pass one "
                "tangent per differentiated argument, in argnums order."
            )
        return [
            (self.plain.describe_arg(p), q, t)
            for p, q, t in zip(call.positions, call.quantities[1:], tangents, strict=True)
        ]


class _TangentSpec:
    """What a unit-aware ``jvp_fn`` (from linearize) needs besides its residuals.

    Holds the call's positions, the shapes and units of its inputs (no
    tracers) and its output units; static, hashed by identity.
    """

    def __init__(self, owner: UnitProductTransform, call: UnitCall) -> None:
        self.owner = owner
        self.positions = call.positions
        self.quantities = (
            [_abstract_tree(q) for q in call.quantities[0]],
            *(_abstract_tree(q) for q in call.quantities[1:]),
        )
        assert call.out is not None
        self.out_units = call.out[1]


def _abstract(x: Any) -> Any:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def _abstract_tree(tree: Any) -> Any:
    """Replace the arrays of ``tree`` by ``ShapeDtypeStruct`` (Quantities keep their units)."""
    return jax.tree.map(_abstract, tree)


def _tangents_to_mantissas(
    owner: UnitProductTransform, call: UnitCall | _TangentSpec, tangents: Any, state_tangents: Any
) -> tuple[list[Any], list[Any], Any]:
    items = owner._state_items(call, state_tangents) + owner._arg_items(call, tangents)
    mantissas, ratio = to_mantissas(owner.name, "tangent", items, div_units)
    n = len(call.quantities[0])
    return mantissas[:n], mantissas[n:], ratio


class UnitJVP(UnitProductTransform):
    """Unit-aware ``statediff.jvp``: ``f_jvp(primals, tangents=(), state_tangents=None)``."""

    def __call__(  # type: ignore[override]
        self, primals: Sequence[Any], tangents: Sequence[Any] = (), state_tangents: Any = None
    ) -> Any:
        if not isinstance(primals, (tuple, list)):
            raise TypeError(
                f"{self.name}: primals must be a tuple (or list) of all positional arguments "
                f"of the function, got {type(primals).__name__} {primals!r}. Fix: e.g. "
                "primals=(x,) for a function of one argument."
            )
        return self._run(tuple(primals), tangents, state_tangents)

    def _drive(self, primals: tuple[Any, ...], tangents: Any, given_states: Any) -> Any:  # type: ignore[override]
        call = UnitCall(self, primals, {})
        t_states, t_args, ratio = _tangents_to_mantissas(self, call, tangents, given_states)
        y_m, ty_m, (y, aux, new) = jax.jvp(call, call.primals, (t_states, *t_args), has_aux=True)
        call.write(new)
        assert call.out is not None
        ty = _with_units(ty_m, call.out[1], ratio, invert=False)
        y = retag_quantities(y)
        return (y, ty, aux) if self.plain.has_aux else (y, ty)


@functools.partial(jax.jit, static_argnums=0)
def _push(spec: _TangentSpec, linear: Any, *tangents: Any, state_tangents: Any = None) -> Any:
    t_states, t_args, ratio = _tangents_to_mantissas(spec.owner, spec, tangents, state_tangents)
    ty_m = linear(t_states, *t_args)
    return _with_units(ty_m, spec.out_units, ratio, invert=False)


class UnitLinearize(UnitProductTransform):
    """Unit-aware ``statediff.linearize``: ``(*args) -> (value, jvp_fn[, aux])``."""

    def _drive(self, *args: Any, **kwargs: Any) -> Any:
        call = UnitCall(self, args, kwargs)
        y_m, linear, (y, aux, new) = jax.linearize(call, *call.primals, has_aux=True)
        call.write(new)
        spec = _TangentSpec(self, call)
        jvp_fn = jax.tree_util.Partial(functools.partial(_push_with_note, spec), linear)
        y = retag_quantities(y)
        return (y, jvp_fn, aux) if self.plain.has_aux else (y, jvp_fn)


def _push_with_note(
    spec: _TangentSpec, linear: Any, *tangents: Any, state_tangents: Any = None
) -> Any:
    try:
        return _push(spec, linear, *tangents, state_tangents=state_tangents)
    except UNIT_ERRORS as err:
        err.add_note(spec.owner.unit_note())
        raise


class _CotangentSpec:
    """What a unit-aware ``vjp_fn`` needs besides its residuals (static, by identity)."""

    def __init__(self, owner: UnitProductTransform, call: UnitCall, y: Any) -> None:
        self.owner = owner
        self.y = _abstract_tree(y)
        self.state_units = call.state_units
        self.arg_units = call.arg_units


@functools.partial(jax.jit, static_argnums=0)
def _pull(spec: _CotangentSpec, pullback: Any, ct: Any) -> Any:
    owner = spec.owner
    (ct_m,), q = to_mantissas(owner.name, "cotangent", [("the output", spec.y, ct)], mul_units)
    parts = pullback(ct_m)
    states = [
        _with_units(p, units, q, invert=True)
        for p, units in zip(parts[0], spec.state_units, strict=True)
    ]
    args = [
        _with_units(p, units, q, invert=True)
        for p, units in zip(parts[1:], spec.arg_units, strict=True)
    ]
    return owner.plain.assemble((states, *args))


def _pull_with_note(spec: _CotangentSpec, pullback: Any, ct: Any) -> Any:
    try:
        return _pull(spec, pullback, ct)
    except UNIT_ERRORS as err:
        err.add_note(spec.owner.unit_note())
        raise


class UnitVJP(UnitProductTransform):
    """Unit-aware ``statediff.vjp``: ``(*args) -> (value, vjp_fn[, aux])``."""

    def _drive(self, *args: Any, **kwargs: Any) -> Any:
        call = UnitCall(self, args, kwargs)
        y_m, pullback, (y, aux, new) = jax.vjp(call, *call.primals, has_aux=True)
        call.write(new)
        y = retag_quantities(y)
        spec = _CotangentSpec(self, call, y)
        vjp_fn = jax.tree_util.Partial(functools.partial(_pull_with_note, spec), pullback)
        return (y, vjp_fn, aux) if self.plain.has_aux else (y, vjp_fn)
