"""The statediff derivative transforms with ``unit_aware=True`` as their default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import statediff

__all__ = ["grad", "hessian", "jacfwd", "jacobian", "jacrev", "vector_grad"]


def jacfwd(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
    chunk_size: int | None = None,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> statediff.GradientTransform | Callable[[Callable[..., Any]], statediff.GradientTransform]:
    """Unit-aware forward-mode Jacobian: :func:`statediff.jacfwd` with units.

    States and arguments may hold ``brainunit`` Quantities; the block of
    output leaf ``y`` and input leaf ``x`` has unit ``unit(y) / unit(x)``
    (a plain array when that is dimensionless). Arguments and the 12-case
    return contract are those of :func:`statediff.jacfwd`.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value (with its units).
        holomorphic: ``func`` is holomorphic.
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.
        chunk_size: Basis vectors per forward pass (bounds peak memory).
        sparsity: As :func:`statediff.jacfwd` (None, ``"auto"`` or a pattern).
        sparse_output: As :func:`statediff.jacfwd`.

    Returns:
        A function with ``func``'s signature returning what
        :func:`statediff.jacfwd`'s table says, with units.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
        >>> import statediff_units as sdu
        >>> g = sg.ParamState(jnp.array([1.0, 2.0]) * u.mS, name="g")
        >>> def current(v):
        ...     return g.value * v
        >>> sdu.jacfwd(current, grad_states=g)(10.0 * u.mV)
        Quantity([[10.  0.]
                  [ 0. 10.]], "mV")
        >>> sdu.jacfwd(current)(10.0 * u.mV)
        Quantity([1. 2.], "mS")
    """
    return statediff.jacfwd(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        unit_aware=unit_aware,
        check_states=check_states,
        chunk_size=chunk_size,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )


def jacrev(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
    chunk_size: int | None = None,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> statediff.GradientTransform | Callable[[Callable[..., Any]], statediff.GradientTransform]:
    """Unit-aware reverse-mode Jacobian: :func:`statediff.jacrev` with units.

    Same units rule as :func:`jacfwd`; same arguments and return contract as
    :func:`statediff.jacrev`.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value (with its units).
        holomorphic: ``func`` is holomorphic.
        allow_int: Allow integer inputs (``float0`` derivatives, no unit).
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.
        chunk_size: Cotangent basis vectors per reverse pass.
        sparsity: As :func:`statediff.jacrev` (None, ``"auto"`` or a pattern).
        sparse_output: As :func:`statediff.jacrev`.

    Returns:
        A function with ``func``'s signature.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
        >>> import statediff_units as sdu
        >>> c = sg.ParamState(jnp.array(2.0) * u.uF, name="c")
        >>> def charge(v):
        ...     return c.value * v
        >>> dq_dc, dq_dv = sdu.jacrev(charge, grad_states=c, argnums=0)(3.0 * u.mV)
        >>> dq_dc, dq_dv
        (Quantity(3., "mV"), Quantity(2., "uF"))
    """
    return statediff.jacrev(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        allow_int=allow_int,
        unit_aware=unit_aware,
        check_states=check_states,
        chunk_size=chunk_size,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )


def jacobian(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
    chunk_size: int | None = None,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> statediff.GradientTransform | Callable[[Callable[..., Any]], statediff.GradientTransform]:
    """Alias of :func:`jacrev` (as :func:`statediff.jacobian`), unit-aware by default.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate.
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value.
        holomorphic: ``func`` is holomorphic.
        allow_int: Allow integer inputs.
        unit_aware: Keep units (default True).
        check_states: Raise if a state in ``grad_states`` is never touched.
        chunk_size: Cotangent basis vectors per reverse pass.
        sparsity: As :func:`statediff.jacrev` (None, ``"auto"`` or a pattern).
        sparse_output: As :func:`statediff.jacrev`.

    Returns:
        A function with ``func``'s signature.

    Example:
        >>> import brainunit as u, statediff_units as sdu
        >>> sdu.jacobian(lambda t: 3.0 * u.mV / u.ms * t)(2.0 * u.ms)
        Quantity(3., "mV / ms")
    """
    return statediff.jacobian(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        allow_int=allow_int,
        unit_aware=unit_aware,
        check_states=check_states,
        chunk_size=chunk_size,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )


def grad(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    allow_int: bool = False,
    holomorphic: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
) -> statediff.GradientTransform | Callable[[Callable[..., Any]], statediff.GradientTransform]:
    """Unit-aware gradient of a scalar function: :func:`statediff.grad` with units.

    Each gradient has the structure of its input and the unit
    ``unit(value) / unit(input leaf)``.

    Args:
        func: The stateful scalar function (omit for the decorator form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value (with its units).
        allow_int: Allow integer inputs.
        holomorphic: ``func`` is holomorphic.
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.

    Returns:
        A function with ``func``'s signature.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
        >>> import statediff_units as sdu
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="w")
        >>> def energy():
        ...     return (w.value ** 2).sum()
        >>> sdu.grad(energy, grad_states={"w": w})()
        {'w': Quantity([2. 4.], "mV")}
    """
    return statediff.grad(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        allow_int=allow_int,
        holomorphic=holomorphic,
        unit_aware=unit_aware,
        check_states=check_states,
    )


def vector_grad(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
) -> statediff.GradientTransform | Callable[[Callable[..., Any]], statediff.GradientTransform]:
    """Unit-aware gradient of the sum of the output: :func:`statediff.vector_grad`.

    The output's leaves are summed, so they must share one unit.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's (vector) value.
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.

    Returns:
        A function with ``func``'s signature.

    Raises:
        brainunit.UnitMismatchError: (when called) the output's leaves have
            different units.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, statediff_units as sdu
        >>> sdu.vector_grad(lambda t: t ** 2)(jnp.array([1.0, 2.0]) * u.ms)
        Quantity([2. 4.], "ms")
    """
    return statediff.vector_grad(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        unit_aware=unit_aware,
        check_states=check_states,
    )


def hessian(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    unit_aware: bool = True,
    check_states: bool = True,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> statediff.GradientTransform | Callable[[Callable[..., Any]], statediff.GradientTransform]:
    """Unit-aware Hessian: :func:`statediff.hessian` with units.

    The block of inputs ``x_i`` and ``x_j`` has unit
    ``unit(value) / unit(x_i) / unit(x_j)``; the layout is statediff's.

    Args:
        func: The stateful scalar function (omit for the decorator form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value.
        holomorphic: ``func`` is holomorphic.
        unit_aware: Keep units (default True); False is plain statediff.
        check_states: Raise if a state in ``grad_states`` is never touched.
        sparsity: As :func:`statediff.hessian` (None, ``"auto"`` or a pattern).
        sparse_output: As :func:`statediff.hessian`.

    Returns:
        A function with ``func``'s signature.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, statediff_units as sdu
        >>> sdu.hessian(lambda v: (v ** 3).sum())(jnp.array([1.0, 2.0]) * u.mV)
        Quantity([[ 6.  0.]
                  [ 0. 12.]], "mV")
    """
    return statediff.hessian(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        unit_aware=unit_aware,
        check_states=check_states,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )
