"""A bounded cache of transforms for the run-now calls (``sd.vjp(f, x)``), holding users weakly.

``sd.vjp(fun, *primals, ...)`` runs now, so a naive implementation would build
(and trace and compile) a new transform on every call. This cache keeps one
transform per ``(kind, fun, grad_states, options)``. It never owns the user's
objects: the function (for a bound method: its object and its function) and
the states are held by weak reference, the cached transform calls the
function through a weak proxy and holds its ``grad_states`` weakly, and an
entry disappears as soon as one of them is garbage-collected. The cache holds
at most :data:`MAX_ENTRIES` transforms (least recently used evicted).

Side tables make the commonest hit, a plain function without ``grad_states``
under given options, cheaper than building and hashing a key: a
:func:`quick_table` maps ``id(fun)`` to an entry of the cache and loses it
when the cache does. (With ``grad_states``, comparing the states costs about
what the key costs, so those calls use the key.)
"""

from __future__ import annotations

import inspect
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any

import jax

from stategraph import State

__all__ = ["MAX_ENTRIES", "cached", "clear", "quick_table", "size"]

MAX_ENTRIES = 256

_LOCK = threading.Lock()
#: key -> [transform, used since the last sweep, weak references to the function's owners,
#: weak references to the states, the transform's compiled call, its quick table or None,
#: the function's key], in insertion order.
#: Eviction is least-recently-used by the "second chance" rule: a hit only sets the entry's
#: flag (moving the entry in an ordered dict would cost more on every hit); when the cache is
#: full, the oldest entry whose flag is clear goes, and entries passed over with their flag
#: set are cleared and moved to the end.
_ENTRIES: dict[Any, list[Any]] = {}
_METHOD = types.MethodType
#: (kind, options) -> {id(fun): entry}: the entries of plain functions without
#: ``grad_states`` under those options (see :func:`quick_table`).
_QUICK: dict[tuple[str, tuple[Any, ...]], dict[int, list[Any]]] = {}
# The parts of an entry (a list, so that a hit can set its flag in place).
_TRANSFORM, _USED, _REFS, _STATE_REFS, _CALL, _TABLE, _FUN_KEY = range(7)


def quick_table(kind: str, options: tuple[Any, ...]) -> dict[int, list[Any]]:
    """The table of the cached transforms of ``kind`` for calls without ``grad_states``.

    It maps ``id(fun)`` to the entry of a plain function (not a bound
    method) cached with ``grad_states=None`` and these ``options``; a
    run-now call with exactly these settings may look its function up here
    (one integer key) instead of calling :func:`cached`. On a hit, the caller
    sets ``entry[1] = True`` (used, for the eviction) and calls ``entry[4]``,
    the transform's compiled call. An entry leaves the table when it leaves
    the cache, so an id in the table always denotes a live function. Reads
    need no lock (one dictionary lookup); writes happen under the lock.
    """
    with _LOCK:
        return _QUICK.setdefault((kind, options), {})


def _unlink(entry: list[Any]) -> None:
    """Remove an entry leaving the cache from its quick table (the caller holds the lock)."""
    table = entry[_TABLE]
    if table is not None and table.get(entry[_FUN_KEY]) is entry:
        del table[entry[_FUN_KEY]]


def _is_state(x: Any) -> bool:
    return isinstance(x, State)


def _owners(fun: Any) -> tuple[Any, ...]:
    """Return the objects that identify ``fun`` (held weakly by the cache)."""
    if type(fun) is _METHOD:
        return (fun.__self__, fun.__func__)
    return (fun,)


def _weakable(parts: tuple[Any, ...]) -> bool:
    try:
        for p in parts:
            weakref.ref(p)
    except TypeError:
        return False
    return True


def _positional_signature(fun: Any) -> inspect.Signature | None:
    """``fun``'s signature if every parameter is positional without a default, else ``None``.

    Annotations are left out: the signature must hold nothing of the user's
    but the parameters' names.
    """
    try:
        signature = inspect.signature(fun, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = []
    for p in signature.parameters.values():
        if p.kind not in positional or p.default is not p.empty:
            return None
        params.append(p.replace(annotation=p.empty))
    return inspect.Signature(params)


def _weak_proxy(fun: Any, refs: tuple[weakref.ref, ...]) -> Callable[..., Any]:
    """A stand-in for ``fun`` that reaches it only through weak references.

    It shows ``fun``'s signature when that is a plain positional one (the
    run-now calls pass every argument by position, and the compiled call may
    then take the same parameters; see ``statejax``'s ``call_signature``).
    """
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
    signature = _positional_signature(fun)
    if signature is not None:
        target.__signature__ = signature  # type: ignore[attr-defined]
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


# Tags of the quick keys' container kinds (a key never mixes two kinds).
_NONE, _ONE, _DICT, _LIST, _TUPLE, _NESTED = range(6)


def _nested_key(grad_states: Any) -> tuple[tuple[Any, ...], list[State]] | None:
    """Return the key part of any ``grad_states`` by its structure and states, and the states.

    ``None`` when a leaf is not a State (the transform raises the clear error).
    """
    leaves, treedef = jax.tree.flatten(grad_states, is_leaf=_is_state)
    if not all(isinstance(s, State) for s in leaves):
        return None
    return (_NESTED, _Tree(treedef), *map(id, leaves)), leaves


def cached(
    build: Callable[..., Any], kind: str, fun: Any, grad_states: Any, options: tuple[Any, ...]
) -> Any:
    """Return the transform ``build(target, grad_states, weak, options)`` for these settings.

    A hit costs one flat key and one dictionary lookup (the run-now calls are
    on the hot path of an eager loop, where each Python operation between two
    dispatches costs several times its own time); a miss builds and stores the
    transform.

    Args:
        build: ``build(target, grad_states, weak, options)`` makes the
            transform (a ``DiffTransform``: its compiled call is
            ``transform._driver._call``); with ``weak=True`` it must hold
            ``grad_states`` weakly.
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
    # One flat tuple: a container's tag, then (for a dict) its keys, then the
    # states' identities; the tag and the length tell the parts apart.
    if type(fun) is _METHOD:
        fun_key: Any = (id(fun.__self__), id(fun.__func__))
    else:
        fun_key = id(fun)
    gs_type = type(grad_states)
    if grad_states is None:
        key: tuple[Any, ...] = (kind, fun_key, options, _NONE)
    elif gs_type is dict:
        key = (kind, fun_key, options, _DICT, *grad_states, *map(id, grad_states.values()))
    elif gs_type is list:
        key = (kind, fun_key, options, _LIST, *map(id, grad_states))
    elif gs_type is tuple:
        key = (kind, fun_key, options, _TUPLE, *map(id, grad_states))
    else:
        key = (kind, fun_key, options, _ONE, id(grad_states))
    try:
        entry = _ENTRIES.get(key)
    except TypeError:  # unhashable settings: the transform's own checks will judge them
        return build(fun, grad_states, False, options)
    if entry is None:
        return _miss(build, key, fun, grad_states)
    entry[_USED] = True
    return entry[_TRANSFORM]


def _quick_states(grad_states: Any) -> list[State] | None:
    """The states of a container that has a quick key, or ``None`` if one entry is not a State."""
    if grad_states is None:
        return []
    if isinstance(grad_states, State):
        return [grad_states]
    kind = type(grad_states)
    states = list(grad_states.values()) if kind is dict else list(grad_states)
    if kind in (dict, list, tuple) and all(isinstance(v, State) for v in states):
        return states
    return None


def _miss(build: Callable[..., Any], key: tuple[Any, ...], fun: Any, grad_states: Any) -> Any:
    """Find or build the transform of a call whose quick key has no entry."""
    kind, fun_key, options = key[:3]
    states = _quick_states(grad_states)
    if states is None:  # nested containers (or not States): keyed by structure and states
        nested = _nested_key(grad_states)
        if nested is None:  # not States: let the transform raise its clear error
            return build(fun, grad_states, False, options)
        key = (kind, fun_key, options, *nested[0])
        states = nested[1]
        entry = _ENTRIES.get(key)
        if entry is not None:
            entry[_USED] = True
            return entry[_TRANSFORM]
    owners = _owners(fun)
    if not _weakable(owners):
        return build(fun, grad_states, False, options)

    def evict(_ref: Any, key: Any = key) -> None:
        lock = _LOCK  # None while the interpreter shuts down
        if lock is not None:
            with lock:
                gone = _ENTRIES.pop(key, None)
                if gone is not None:
                    _unlink(gone)

    refs = tuple(weakref.ref(p, evict) for p in owners)
    state_refs = tuple(weakref.ref(s, evict) for s in states)
    transform = build(_weak_proxy(fun, refs), grad_states, True, options)
    with _LOCK:
        # Make room first: the new entry must not be the one the sweep evicts.
        while _ENTRIES and len(_ENTRIES) >= MAX_ENTRIES and key not in _ENTRIES:
            _evict_one()
        old = _ENTRIES.get(key)
        if old is not None:  # another thread stored it meanwhile: keep theirs
            return old[_TRANSFORM]
        table = None
        if grad_states is None and type(fun_key) is int:  # a plain function
            table = _QUICK.get((kind, options))
        call = transform._driver._call
        entry = [transform, False, refs, state_refs, call, table, fun_key]
        _ENTRIES[key] = entry
        if table is not None:
            table[fun_key] = entry
    return transform


def _evict_one() -> None:
    """Drop the least recently used entry (second chance; the caller holds the lock)."""
    while True:
        key = next(iter(_ENTRIES))
        entry = _ENTRIES.pop(key)
        if not entry[_USED]:
            _unlink(entry)
            return
        entry[_USED] = False
        _ENTRIES[key] = entry


def clear() -> None:
    """Forget every cached transform."""
    with _LOCK:
        _ENTRIES.clear()
        for table in _QUICK.values():
            table.clear()


def size() -> int:
    """Return the number of cached transforms."""
    return len(_ENTRIES)
