"""Clearing caches through every layer of nesting, and :func:`clear_caches`.

Every :class:`~statejax.StatefulFunction` is registered here (weakly). While
one of them traces, every other stateful function traced (or whose cached
trace is reused) inside that trace becomes its *child*: the lifted user
function of ``sj.vmap``, both branches of ``sj.cond``, the inner ``sj.jit`` of
an outer one, the lifted target of a ``statediff`` transform. So
``outer.clear_cache()`` clears the whole tree under ``outer`` (children are
held weakly), and :func:`clear_caches` clears every stateful function and
every transform cache of the process.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .weakcache import all_caches

if TYPE_CHECKING:
    from .stateful import StatefulFunction

__all__ = ["add_child", "clear_caches", "clear_tree", "note_use", "register", "tracing"]

_ALL: weakref.WeakSet[Any] = weakref.WeakSet()
_ALL_LOCK = threading.Lock()
_LOCAL = threading.local()


def register(sf: StatefulFunction) -> None:
    """Record a new stateful function (weakly) and give it an empty set of children."""
    sf._children = weakref.WeakSet()
    with _ALL_LOCK:
        _ALL.add(sf)


def _stack() -> list[Any]:
    stack = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    return stack


def note_use(sf: StatefulFunction) -> None:
    """Make ``sf`` a child of the stateful function tracing in this thread, if any."""
    stack = getattr(_LOCAL, "stack", None)
    if stack:
        parent = stack[-1]
        if parent is not sf:
            parent._children.add(sf)


def add_child(parent: Any, child: Any) -> None:
    """Make ``clear_cache`` of ``parent`` clear ``child`` too (held weakly)."""
    parent._children.add(child)


@contextmanager
def tracing(sf: StatefulFunction) -> Iterator[None]:
    """Mark ``sf`` as tracing in this thread (functions used inside become its children)."""
    note_use(sf)
    stack = _stack()
    stack.append(sf)
    try:
        yield
    finally:
        stack.pop()


def clear_tree(sf: StatefulFunction) -> None:
    """Clear ``sf``'s own cache and those of all its children, recursively."""
    seen: set[int] = set()
    todo = [sf]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        children = list(getattr(item, "_children", ()))
        item._clear_own()
        todo.extend(children)


def clear_caches() -> None:
    """Clear the caches of every stateful transform in the process.

    Every ``sj.jit``/``sj.vmap``/``sj.checkpoint``/... object, every statediff
    transform and the caches of the function-style transforms (``sj.cond``,
    ``sj.switch``, ``sj.scan``, ``sj.for_loop``, ``sj.while_loop``,
    ``sj.eval_shape``) forget their traced signatures and compiled functions:
    the next call traces again, with the states the functions reach *now*.
    Use it after rebinding a model's attribute to another State that was
    already alive (see the guide's "Stale state identity" section). JAX's
    own caches are left alone (use ``jax.clear_caches()`` for those).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> class Layer:
        ...     def __init__(self):
        ...         self.w = sg.ParamState(jnp.ones(2))
        ...     def __call__(self, x):
        ...         return (self.w.value * x).sum()
        >>> layer = Layer()
        >>> f = sj.jit(layer)
        >>> float(f(1.0))
        2.0
        >>> spare = sg.ParamState(jnp.zeros(2))   # alive elsewhere
        >>> layer.w = spare                         # rebind to an existing State
        >>> sj.clear_caches()
        >>> float(f(1.0))
        0.0
    """
    for cache in all_caches():
        cache.clear()
    with _ALL_LOCK:
        everything = list(_ALL)
    for sf in everything:
        sf._clear_own()
