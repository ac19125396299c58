"""The statediff product transforms and ``fwd_grad`` with ``unit_aware=True`` as their default."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import statediff

__all__ = ["fwd_grad", "jvp", "linearize", "vjp"]

_BUILDERS = {
    "jvp": statediff.JVPTransform,
    "vjp": statediff.VJPTransform,
    "linearize": statediff.LinearizeTransform,
}


def _product(
    kind: str,
    func: Any,
    grad_states: Any,
    argnums: Any,
    has_aux: bool,
    unit_aware: bool,
    check_states: bool,
) -> Any:
    """Build the (builder-form) product transform ``kind``, unit-aware or plain."""
    options = dict(
        grad_states=grad_states, argnums=argnums, has_aux=has_aux, check_states=check_states
    )
    if func is None:  # decorator factory
        return functools.partial(globals()[kind], unit_aware=unit_aware, **options)
    if unit_aware:
        return statediff.units_backend(f"statediff_units.{kind}").make(kind, func, **options)
    return _BUILDERS[kind](func, name=f"statediff.{kind}", **options)


def fwd_grad(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool = False,
    return_value: bool = False,
    tangent_size: int | None = None,
    key: Any = None,
    unit_aware: bool = True,
    check_states: bool = True,
) -> statediff.GradientTransform | Callable[[Callable[..., Any]], statediff.GradientTransform]:
    """Unit-aware forward-gradient estimate: :func:`statediff.fwd_grad` with units.

    The random directions are drawn for the mantissas (in each input's own
    unit); the estimate has the unit ``unit(value) / unit(input leaf)``, as
    :func:`grad`.

    Args:
        func: The stateful scalar function (omit for the decorator form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value.
        tangent_size: Number of random directions averaged (default 1).
        key: The initial PRNG key (see :func:`statediff.fwd_grad`).
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.

    Returns:
        A function with ``func``'s signature, with a ``key_state`` attribute.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
        >>> import statediff_units as sdu
        >>> w = sg.ParamState(jnp.array([1.0, -2.0]) * u.mV, name="w")
        >>> est = sdu.fwd_grad(lambda: (w.value ** 2).sum(), grad_states=w, tangent_size=8)
        >>> est().unit
        Unit("mV")
    """
    return statediff.fwd_grad(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        tangent_size=tangent_size,
        key=key,
        unit_aware=unit_aware,
        check_states=check_states,
    )


def jvp(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
) -> Any:
    """Unit-aware Jacobian-vector product: :class:`statediff.JVPTransform` with units.

    ``f_jvp(primals, tangents=(), state_tangents=None)`` as in statediff. Each
    tangent carries its primal's unit times one common unit ``R`` (``R = 1``:
    tangents in their primals' units; ``1 / ms`` for rates of change); the
    output tangent of each output leaf ``y`` has unit ``unit(y) * R``.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments that get tangents.
        has_aux: ``func`` returns ``(value, aux)``.
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.

    Returns:
        The callable ``f_jvp``.

    Raises:
        brainunit.UnitMismatchError: (when called) tangents whose units are not
            their primals' times one common unit.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
        >>> import statediff_units as sdu
        >>> g = sg.ParamState(jnp.array(2.0) * u.mS, name="g")
        >>> def current(v):
        ...     return g.value * v
        >>> i, di = sdu.jvp(current, grad_states=g, argnums=0)(
        ...     (3.0 * u.mV,), (1.0 * u.mV / u.ms,), state_tangents=0.5 * u.mS / u.ms)
        >>> i, di.in_unit(u.uA / u.ms)
        (Quantity(6., "uA"), Quantity(3.5, "uA / ms"))
    """
    return _product("jvp", func, grad_states, argnums, has_aux, unit_aware, check_states)


def vjp(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
) -> Any:
    """Unit-aware vector-Jacobian product: :class:`statediff.VJPTransform` with units.

    ``vjp_fn(cotangent)``: each cotangent leaf ``c`` of output leaf ``y`` must
    give one common unit ``Q = unit(c) * unit(y)`` (a plain cotangent of an
    output of one unit gives ``Q = unit(y)``: gradients); the cotangent of
    each input leaf ``x`` then has unit ``Q / unit(x)``.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate.
        has_aux: ``func`` returns ``(value, aux)``.
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.

    Returns:
        A function with ``func``'s signature returning ``(value, vjp_fn)``.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
        >>> import statediff_units as sdu
        >>> g = sg.ParamState(jnp.array([1.0, 2.0]) * u.mS, name="g")
        >>> i, vjp_fn = sdu.vjp(lambda v: g.value * v, grad_states={"g": g})(3.0 * u.mV)
        >>> vjp_fn(jnp.ones(2))
        {'g': Quantity([3. 3.], "mV")}
    """
    return _product("vjp", func, grad_states, argnums, has_aux, unit_aware, check_states)


def linearize(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
) -> Any:
    """Unit-aware linearization: :class:`statediff.LinearizeTransform` with units.

    ``jvp_fn(*tangents, state_tangents=None)`` follows the units rule of
    :func:`jvp`.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments that get tangents.
        has_aux: ``func`` returns ``(value, aux)``.
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.

    Returns:
        A function with ``func``'s signature returning ``(value, jvp_fn)``.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, statediff_units as sdu
        >>> y, jvp_fn = sdu.linearize(lambda t: t ** 2)(3.0 * u.ms)
        >>> jvp_fn(1.0 * u.ms)
        Quantity(6., "ms^2")
    """
    return _product("linearize", func, grad_states, argnums, has_aux, unit_aware, check_states)
