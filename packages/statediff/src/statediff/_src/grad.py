"""``grad`` and ``vector_grad`` over states and arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .transform import GradientTransform
from .units_hook import route

__all__ = ["grad", "vector_grad"]


def _grad_transform(allow_int: bool, holomorphic: bool) -> Callable[..., Any]:
    def transform(fun: Callable[..., Any], argnums: Any, has_aux: bool) -> Callable[..., Any]:
        return jax.grad(
            fun, argnums=argnums, has_aux=has_aux, allow_int=allow_int, holomorphic=holomorphic
        )

    return transform


def _vector_grad_transform(fun: Callable[..., Any], argnums: Any, has_aux: bool) -> Any:
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)

    def run(*inputs: Any) -> tuple[Any, Any]:
        def partial_fun(*diff: Any) -> Any:
            full = list(inputs)
            for i, v in zip(nums, diff, strict=True):
                full[i] = v
            return fun(*full)

        y, vjp_fn, aux = jax.vjp(partial_fun, *(inputs[i] for i in nums), has_aux=True)
        grads = vjp_fn(jax.tree.map(jnp.ones_like, y))
        return (grads[0] if single else tuple(grads)), aux

    return run


def grad(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    allow_int: bool = False,
    holomorphic: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
    debug_nan: bool = False,
) -> GradientTransform | Callable[[Callable[..., Any]], GradientTransform]:
    """Stateful counterpart of ``jax.grad``: gradient of a scalar function.

    Same return contract as :func:`~statediff.jacfwd` (a 12-case table of
    ``grad_states`` / ``argnums`` / ``has_aux`` / ``return_value``); each
    gradient has the structure and shape of its input.

    Args:
        func: The stateful function returning a scalar (omit for the
            decorator-factory form ``@sd.grad(grad_states=params)``).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value.
        allow_int: Allow integer inputs (``float0`` gradients), as JAX.
        holomorphic: ``func`` is holomorphic.
        unit_aware: Units-aware gradients (needs ``statediff-units``).
        check_states: Raise if a state in ``grad_states`` is never touched.
        debug_nan: Raise ``RuntimeError`` (naming the affected blocks and the
            operation that produced the first NaN) instead of returning a
            derivative that holds NaN or Inf, as brainstate; the failing call
            leaves every state as it was.

    Returns:
        A function with ``func``'s signature.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> def loss(x):
        ...     return ((w.value * x) ** 2).sum()
        >>> sd.grad(loss, grad_states={"w": w})(3.0)
        {'w': Array([18., 36.], dtype=float32)}
    """
    options = dict(
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        allow_int=allow_int,
        holomorphic=holomorphic,
        check_states=check_states,
    )
    if debug_nan:
        options["debug_nan"] = True
    routed = route(grad, func, unit_aware, options)
    if routed is not None:
        return routed
    return GradientTransform(
        func,
        _grad_transform(allow_int, holomorphic),
        debug_nan=debug_nan,
        grad_states=grad_states,
        argnums=argnums,
        return_value=return_value,
        has_aux=has_aux,
        check_states=check_states,
        output_structured=False,
        name="statediff.grad",
        integer_inputs=allow_int,
        holomorphic=holomorphic,
        complex_inputs=True,
    )


def vector_grad(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
    debug_nan: bool = False,
) -> GradientTransform | Callable[[Callable[..., Any]], GradientTransform]:
    """Gradient of the sum of a vector (or pytree) output, by one ``jax.vjp``.

    Equal to ``grad(lambda *a: sum(func(*a)))`` but ``value`` is the unsummed
    output. Same return contract as :func:`~statediff.jacfwd`.

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's (vector) value.
        unit_aware: Units-aware gradients (needs ``statediff-units``).
        check_states: Raise if a state in ``grad_states`` is never touched.
        debug_nan: Raise ``RuntimeError`` (naming the affected blocks and the
            operation that produced the first NaN) instead of returning a
            derivative that holds NaN or Inf, as brainstate; the failing call
            leaves every state as it was.

    Returns:
        A function with ``func``'s signature.

    Example:
        >>> import jax.numpy as jnp, statediff as sd
        >>> g, value = sd.vector_grad(lambda x: x ** 2, return_value=True)(jnp.array([1.0, 3.0]))
        >>> g, value
        (Array([2., 6.], dtype=float32), Array([1., 9.], dtype=float32))
    """
    options = dict(
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        check_states=check_states,
    )
    if debug_nan:
        options["debug_nan"] = True
    routed = route(vector_grad, func, unit_aware, options)
    if routed is not None:
        return routed
    return GradientTransform(
        func,
        _vector_grad_transform,
        debug_nan=debug_nan,
        grad_states=grad_states,
        argnums=argnums,
        return_value=return_value,
        has_aux=has_aux,
        check_states=check_states,
        output_structured=False,
        name="statediff.vector_grad",
    )
