"""Named stateful functions: ``named_call`` (a name scope) and ``named_scope`` (jit + name)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import jax

from .jit import jit

__all__ = ["named_call", "named_scope"]


def _check_name(api: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{api}: name must be a non-empty str, got {type(name).__name__} {name!r}.")


def named_call(
    fun: Callable[..., Any] | None = None, *, name: str | None = None
) -> Callable[..., Any]:
    """Run ``fun`` inside ``jax.named_scope(name)``: its operations carry the name.

    As ``brainstate.transform.named_call``: no compilation, only naming, so it
    nests in every transform and leaves state reads and writes as they are.
    The name appears in each equation's name stack, in profiles and in HLO
    metadata.

    Args:
        fun: The function. Omit it for a decorator: ``@sj.named_call(name="block")``.
        name: The scope name (default: ``fun.__name__``).

    Returns:
        The wrapped function (or a decorator).

    Raises:
        TypeError: if ``fun`` is not callable or ``name`` is not a non-empty str.

    Example:
        >>> import jax, jax.numpy as jnp, statejax as sj
        >>> @sj.named_call(name="block")
        ... def block(x):
        ...     return jnp.sin(x) * 2.0
        >>> jaxpr = jax.make_jaxpr(block)(1.0)
        >>> str(jaxpr.eqns[0].source_info.name_stack)
        'block'
    """
    if fun is None:
        return functools.partial(named_call, name=name)
    if not callable(fun):
        raise TypeError(
            f"statejax.named_call: expected a callable, got {type(fun).__name__} {fun!r}."
        )
    scope = getattr(fun, "__name__", None) if name is None else name
    _check_name("statejax.named_call", scope)

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with jax.named_scope(scope):
            return fun(*args, **kwargs)

    return wrapper


def _named(fun: Callable[..., Any], name: str) -> Callable[..., Any]:
    wrapped = named_call(fun, name=name)
    wrapped.__name__ = name
    # Keep the enclosing scope, so that a method (``Cls.method``) is still known as one.
    scope = getattr(fun, "__qualname__", name).rpartition(".")[0]
    wrapped.__qualname__ = f"{scope}.{name}" if scope else name
    return wrapped


class _DynamicStatics:
    """``named_scope`` with callable static_argnums/static_argnames: one jit per configuration."""

    def __init__(self, fun: Callable[..., Any], name: str, nums: Any, names: Any) -> None:
        self._fun = _named(fun, name)
        self._nums, self._names = nums, names
        self._jitted: dict[Any, Any] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, fun)

    def _spec(self, spec: Any, args: tuple, kwargs: dict) -> Any:
        out = spec(*args, **kwargs) if callable(spec) else spec
        if out is None:
            return ()
        return (out,) if isinstance(out, (int, str)) else tuple(out)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = (self._spec(self._nums, args, kwargs), self._spec(self._names, args, kwargs))
        with self._lock:
            jitted = self._jitted.get(key)
            if jitted is None:
                if len(self._jitted) >= 64:
                    self._jitted.pop(next(iter(self._jitted)))
                jitted = self._jitted[key] = jit(
                    self._fun, static_argnums=key[0], static_argnames=key[1]
                )
        return jitted(*args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)


def named_scope(
    name: str,
    static_argnums: int | Sequence[int] | Callable[..., Any] | None = None,
    static_argnames: str | Sequence[str] | Callable[..., Any] | None = None,
) -> Callable[[Callable[..., Any]], Any]:
    """Return a decorator compiling a function with :func:`statejax.jit` under a name.

    As ``brainstate.transform.named_scope``: ``jit`` plus
    :func:`statejax.named_call`; the compiled function and its operations
    carry ``name`` (in jaxprs' name stacks, profiles and HLO). The static
    arguments may be given as callables of the call's arguments returning
    the positions (or names), computed per call (one compiled function per
    configuration). As a method decorator the instance is bound (not an
    argument of the compiled function), as with ``sj.jit``.

    Args:
        name: The name.
        static_argnums: Static positions (an int, ints, or a callable).
        static_argnames: Static keyword names (a str, strs, or a callable).

    Returns:
        A decorator.

    Raises:
        TypeError: if ``name`` is not a non-empty str.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> w = sg.ParamState(jnp.full(2, 3.0), name="w")
        >>> @sj.named_scope("power", static_argnums=1)
        ... def power(x, n):
        ...     return (w.value * x) ** n
        >>> power(1.0, 2).tolist()
        [9.0, 9.0]
    """
    _check_name("statejax.named_scope", name)

    def decorate(fun: Callable[..., Any]) -> Any:
        if not callable(fun):
            raise TypeError(
                f"statejax.named_scope: expected a callable, got {type(fun).__name__} {fun!r}."
            )
        if callable(static_argnums) or callable(static_argnames):
            return _DynamicStatics(fun, name, static_argnums, static_argnames)
        return jit(
            _named(fun, name),
            static_argnums=() if static_argnums is None else static_argnums,
            static_argnames=() if static_argnames is None else static_argnames,
        )

    return decorate
