"""A transform whose ``__call__`` is its compiled driver's call itself.

``GradientTransform.__call__(self, *args, **kwargs)`` packs the call's
arguments into a tuple and a dict, checks two flags and unpacks them again
into the compiled driver, the generated function of a statejax
``StatefulFunction`` (two Python frames per call). When the driver takes the
user's plain positional signature (say ``(x, y)``), a transform is given its
own subclass of its class, whose ``__call__`` is that generated function with
a leading parameter for the instance (``StatefulFunction.receiver_call``)::

    g(x, y)  ->  type(g).__call__(g, x, y)  ->  the compiled call

one Python frame between the user's call and JAX's dispatch. In a loop of
eager calls, every Python operation between two dispatches costs several
times what it costs alone, and this is most of a transform's own work per
call.

The general ``__call__``'s two cases still hold: under ``jax.disable_jit()``
the compiled call takes its slow path, which runs ``GradientTransform._drive``
eagerly, and ``_drive`` then runs the Python body op by op as the general call
does; a transform with ``debug_nan=True`` (fixed at construction) keeps the
general call. The subclass has the class's name and adds no attribute and no
slot, so ``isinstance`` and every method behave as for the class itself.
"""

from __future__ import annotations

from typing import Any

__all__ = ["with_plain_call"]


def _own_class(base: type, call: Any) -> type:
    """A subclass of ``base`` for one instance, whose ``__call__`` is ``call``."""
    attrs = {
        "__call__": call,
        "__slots__": (),
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
    }
    return type(base.__name__, (base,), attrs)


def with_plain_call(transform: Any, base: type) -> None:
    """Make ``transform``'s ``__call__`` its driver's compiled call, where it can be.

    Only for an instance of ``base`` itself (a subclass may define its own
    ``__call__``), without ``debug_nan``, whose driver takes plain positional
    parameters.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> g = sd.grad(lambda x: w.value * x, grad_states=w)
        >>> isinstance(g, sd.GradientTransform), type(g).__name__
        (True, 'GradientTransform')
        >>> float(g(3.0)), float(g(x=3.0))
        (3.0, 3.0)
    """
    if type(transform) is not base or transform.debug_nan:
        return
    call = transform._driver.receiver_call(f"{base.__qualname__}.__call__")
    if call is not None:
        transform.__class__ = _own_class(base, call)
