"""A bounded cache of transforms for the run-now calls (``sd.vjp(f, x)``), holding users weakly.

``sd.vjp(fun, *primals, ...)`` runs now, so a naive implementation would build
(and trace and compile) a new transform on every call. This cache keeps one
transform per ``(kind, fun, grad_states, options)``. It never owns the user's
objects: the function (for a bound method: its object and its function) and
the states are held by weak reference, the cached transform calls the
function through a weak proxy and holds its ``grad_states`` weakly, and an
entry disappears as soon as one of them is garbage-collected. The cache holds
at most :data:`MAX_ENTRIES` transforms (least recently used evicted).
"""

from __future__ import annotations

import threading
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jax

from stategraph import State

__all__ = ["MAX_ENTRIES", "cached", "clear", "size"]

MAX_ENTRIES = 256

_LOCK = threading.Lock()
_ENTRIES: OrderedDict[Any, tuple[Any, ...]] = OrderedDict()


def _is_state(x: Any) -> bool:
    return isinstance(x, State)


def _owners(fun: Any) -> tuple[Any, ...]:
    """Return the objects that identify ``fun`` (held weakly by the cache)."""
    if type(fun) is types.MethodType:
        return (fun.__self__, fun.__func__)
    return (fun,)


def _weakable(parts: tuple[Any, ...]) -> bool:
    try:
        for p in parts:
            weakref.ref(p)
    except TypeError:
        return False
    return True


def _weak_proxy(fun: Any, refs: tuple[weakref.ref, ...]) -> Callable[..., Any]:
    """A stand-in for ``fun`` that reaches it only through weak references."""
    if len(refs) == 2:
        self_ref, func_ref = refs

        def target(*args: Any, **kwargs: Any) -> Any:
            return func_ref()(self_ref(), *args, **kwargs)

    else:
        (ref,) = refs

        def target(*args: Any, **kwargs: Any) -> Any:
            return ref()(*args, **kwargs)

    for attr in ("__name__", "__qualname__", "__module__", "__doc__"):
        try:
            setattr(target, attr, getattr(fun, attr))
        except (AttributeError, TypeError):
            pass
    return target


class _Tree:
    """A pytree structure as (part of) a cache key, never equal to a non-``_Tree``.

    Keys of both kinds share one dictionary; a bare ``PyTreeDef`` compared with a
    tuple raises ``TypeError`` on older jaxlibs (0.6) instead of answering False.
    """

    __slots__ = ("treedef",)

    def __init__(self, treedef: Any) -> None:
        self.treedef = treedef

    def __eq__(self, other: object) -> bool:
        return type(other) is _Tree and self.treedef == other.treedef

    def __hash__(self) -> int:
        return hash(self.treedef)


def _states_key(grad_states: Any) -> tuple[Any, list[State], bool] | None:
    """Return a hashable key of ``grad_states`` by the states' identities, and the states.

    The third item says whether the key is the quick key that :func:`cached`
    makes without looking at the entries.
    """
    if grad_states is None:
        return (), [], True
    if isinstance(grad_states, State):
        return id(grad_states), [grad_states], True
    kind = type(grad_states)
    if kind is dict:  # the common containers, without a pytree flatten (it is slow)
        states = list(grad_states.values())
        if all(isinstance(v, State) for v in states):
            return (tuple(grad_states), tuple(map(id, states))), states, True
    elif kind is list or kind is tuple:
        states = list(grad_states)
        if all(isinstance(v, State) for v in states):
            return (kind, tuple(map(id, states))), states, True
    leaves, treedef = jax.tree.flatten(grad_states, is_leaf=_is_state)
    if not all(isinstance(s, State) for s in leaves):
        return None  # let the transform raise its clear error
    return (_Tree(treedef), tuple(map(id, leaves))), leaves, False


def cached(
    build: Callable[..., Any], kind: str, fun: Any, grad_states: Any, options: tuple[Any, ...]
) -> Any:
    """Return the transform ``build(target, grad_states, weak, options)`` for these settings.

    A hit costs one key and one dictionary lookup (the run-now calls are on
    the hot path of an eager loop); a miss builds and stores the transform.

    Args:
        build: ``build(target, grad_states, weak, options)`` makes the
            transform; with ``weak=True`` it must hold ``grad_states`` weakly.
        kind: Which transform (part of the key).
        fun: The user's function.
        grad_states: The user's ``grad_states``.
        options: The other (hashable) settings.
    """
    # The key names the function by identity (a bound method by its object and
    # function: a new method object is made on every attribute access) and the
    # states by identity; an entry dies with any of them, so an identity in a
    # live key always denotes the same object. The key of the common containers
    # (a dict, list or tuple of States, one State) is made without checking
    # their entries: an entry is stored under such a key only when every entry
    # is a State (see _miss), so a hit can only be a call with those states.
    if type(fun) is types.MethodType:
        fun_key: Any = (id(fun.__self__), id(fun.__func__))
    else:
        fun_key = id(fun)
    gs_type = type(grad_states)
    if grad_states is None:
        states_key: Any = ()
    elif gs_type is dict:
        states_key = (tuple(grad_states), tuple(map(id, grad_states.values())))
    elif gs_type is list or gs_type is tuple:
        states_key = (gs_type, tuple(map(id, grad_states)))
    else:
        states_key = id(grad_states)
    key = (kind, fun_key, states_key, options)
    try:
        entry = _ENTRIES.get(key)
    except TypeError:  # unhashable settings: the transform's own checks will judge them
        return build(fun, grad_states, False, options)
    if entry is None:
        return _miss(build, key, fun, grad_states)
    try:
        _ENTRIES.move_to_end(key)
    except KeyError:  # evicted meanwhile by another thread
        pass
    return entry[0]


def _miss(build: Callable[..., Any], key: Any, fun: Any, grad_states: Any) -> Any:
    """Find or build the transform of a call whose quick key has no entry."""
    kind, fun_key, _quick, options = key
    sk = _states_key(grad_states)
    if sk is None:  # not States: let the transform raise its clear error
        return build(fun, grad_states, False, options)
    if not sk[2]:  # nested containers: keyed by their structure and states
        key = (kind, fun_key, sk[0], options)
        entry = _ENTRIES.get(key)
        if entry is not None:
            return entry[0]
    owners = _owners(fun)
    if not _weakable(owners):
        return build(fun, grad_states, False, options)

    def evict(_ref: Any, key: Any = key) -> None:
        lock = _LOCK  # None while the interpreter shuts down
        if lock is not None:
            with lock:
                _ENTRIES.pop(key, None)

    refs = tuple(weakref.ref(p, evict) for p in owners)
    state_refs = tuple(weakref.ref(s, evict) for s in sk[1])
    transform = build(_weak_proxy(fun, refs), grad_states, True, options)
    with _LOCK:
        _ENTRIES[key] = (transform, refs, state_refs)
        while len(_ENTRIES) > MAX_ENTRIES:
            _ENTRIES.popitem(last=False)
    return transform


def clear() -> None:
    """Forget every cached transform."""
    with _LOCK:
        _ENTRIES.clear()


def size() -> int:
    """Return the number of cached transforms."""
    return len(_ENTRIES)
