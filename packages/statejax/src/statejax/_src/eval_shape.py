"""``statejax.eval_shape``: the stateful counterpart of ``jax.eval_shape``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .compose import lifted_for
from .stateful_methods import state_shapes

__all__ = ["eval_shape"]


def eval_shape(
    fun: Callable[..., Any], *args: Any, return_state_shapes: bool = False, **kwargs: Any
) -> Any:
    """Stateful counterpart of ``jax.eval_shape``.

    Traces ``fun`` abstractly (nothing is computed) and returns the shapes and
    dtypes of its output. The states it reads and writes are left exactly as
    they were: writes are traced, never applied. States created inside
    ``fun`` whose value is a traced array end up poisoned (reading them raises
    :class:`~stategraph.errors.TraceContextError` until they are written), so
    no state ever holds a tracer. The trace is cached per signature, as for
    ``statejax.jit``.

    Args:
        fun: The (stateful) function.
        *args: Arguments: arrays, ``jax.ShapeDtypeStruct`` or pytrees of them.
        return_state_shapes: Also return the shapes of the states (as
            brainstate): ``(state_shapes, out_shapes)`` where ``state_shapes``
            maps every state ``fun`` reads or writes to the
            ``jax.ShapeDtypeStruct`` pytree of its value after the call.
        **kwargs: Keyword arguments, likewise.

    Returns:
        A pytree of ``jax.ShapeDtypeStruct`` with the structure of ``fun``'s
        output (written states are not part of it), or ``(state_shapes,
        out_shapes)`` with ``return_state_shapes=True``.

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> w = sg.ParamState(jnp.ones((3, 2)), name="w")
        >>> def layer(x):
        ...     w.value = w.value * 2
        ...     return x @ w.value
        >>> sj.eval_shape(layer, jax.ShapeDtypeStruct((5, 3), jnp.float32)).shape
        (5, 2)
        >>> float(w.value[0, 0])   # unchanged
        1.0
        >>> shapes, out = sj.eval_shape(layer, jnp.ones((5, 3)), return_state_shapes=True)
        >>> shapes[w]
        ShapeDtypeStruct(shape=(3, 2), dtype=float32)
    """
    if not callable(fun):
        raise TypeError(f"statejax.eval_shape: expected a callable, got {type(fun).__name__}.")
    lifted = lifted_for(fun, "statejax.eval_shape").trace(*args, **kwargs)
    if return_state_shapes:
        return state_shapes(lifted), lifted.out_shapes
    return lifted.out_shapes
