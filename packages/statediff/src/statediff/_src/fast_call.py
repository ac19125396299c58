"""A transform's ``__call__`` with its function's own positional parameters.

``GradientTransform.__call__(self, *args, **kwargs)`` packs the call's
arguments into a tuple and a dict, checks two flags and unpacks them again
into the compiled driver. When the driver takes the user's plain positional
signature (say ``(x, y)``), a transform is given a subclass of its class
whose ``__call__`` takes the same parameters::

    def __call__(_sd_self, x, y):
        if _sd_DISABLE_JIT.value or _sd_self.debug_nan:
            return _sd_general(_sd_self, x, y)
        return _sd_self._driver._call(x, y)

which passes them straight on; ``_sd_general`` is the class's own
``__call__``, for ``jax.disable_jit()`` and ``debug_nan``. In a loop of eager
calls, every Python operation between two dispatches costs several times
what it costs alone, and the packing is a good part of a transform's own
work per call. One subclass serves every transform of one class with one
parameter list (a bounded cache); it adds no attribute and no slot, so
``isinstance`` and every method behave as for the class itself.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .jax_compat import DISABLE_JIT

__all__ = ["plain_parameters", "with_plain_call"]

_PREFIX = "_sd_"


def plain_parameters(fn: Any) -> tuple[str, ...] | None:
    """The parameter names of ``fn`` if all are positional without defaults, else ``None``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    names = []
    for p in params:
        if p.kind is not p.POSITIONAL_OR_KEYWORD or p.default is not p.empty:
            return None
        if p.name.startswith(_PREFIX):
            return None
        names.append(p.name)
    return tuple(names)


@functools.lru_cache(maxsize=256)
def _plain_call_class(base: type, params: tuple[str, ...]) -> type:
    """The subclass of ``base`` whose ``__call__`` takes ``params`` (see the module docstring)."""
    signature = ", ".join((f"{_PREFIX}self", *params))
    forward = ", ".join(params)
    source = (
        f"def __call__({signature}):\n"
        f"    if {_PREFIX}DISABLE_JIT.value or {_PREFIX}self.debug_nan:\n"
        f"        return {_PREFIX}general({_PREFIX}self, {forward})\n"
        f"    return {_PREFIX}self._driver._call({forward})\n"
    )
    namespace: dict[str, Any] = {}
    globs = {f"{_PREFIX}DISABLE_JIT": DISABLE_JIT, f"{_PREFIX}general": base.__call__}
    exec(compile(source, f"<statediff call {base.__qualname__}>", "exec"), globs, namespace)  # noqa: S102
    call = namespace["__call__"]
    call.__qualname__ = f"{base.__qualname__}.__call__"
    call.__code__ = call.__code__.replace(co_qualname=call.__qualname__)
    attrs = {
        "__call__": call,
        "__slots__": (),
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
    }
    return type(base.__name__, (base,), attrs)


def with_plain_call(transform: Any, base: type) -> None:
    """Give ``transform`` the plain ``__call__`` of its driver's signature, where it has one.

    Only for an instance of ``base`` itself (a subclass may define its own
    ``__call__``) whose driver takes plain positional parameters.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> g = sd.grad(lambda x: w.value * x, grad_states=w)
        >>> isinstance(g, sd.GradientTransform), type(g).__name__
        (True, 'GradientTransform')
        >>> float(g(3.0)), float(g(x=3.0))
        (3.0, 3.0)
    """
    if type(transform) is not base:
        return
    params = plain_parameters(transform._driver._call)
    if params is not None:
        transform.__class__ = _plain_call_class(base, params)
