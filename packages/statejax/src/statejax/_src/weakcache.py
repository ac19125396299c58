"""Caches that never keep a user's function, bound method or model alive.

Function-style transforms (``sj.cond(pred, f, g, x)``, ``sj.scan(f, ...)``)
are called anew every time, so they look their compiled driver up by the user
functions' identities. These caches hold those functions weakly:

- a plain function or callable object by a weak reference to it;
- a bound method by weak references to its instance and its function (a bound
  method object is made afresh on every attribute access, so it is never the
  key itself; ``model.step`` looked up twice hits the same entry).

An entry disappears as soon as one of its referents is garbage-collected, and
the cache is a bounded LRU, so fresh lambdas passed on every call never make
it grow past its size. What is cached must not refer to the user's objects
strongly either: builders receive :class:`WeakCallable` proxies that call the
function while it is alive.
"""

from __future__ import annotations

import inspect
import threading
import types
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

__all__ = ["WeakCallable", "WeakLRU", "all_caches", "weak_callable"]

# Every WeakLRU made, so that statejax.clear_caches() can empty them all.
_ALL: weakref.WeakSet[WeakLRU] = weakref.WeakSet()


def _referents(fun: Any) -> tuple[Any, ...]:
    """The objects whose lifetime decides a cache entry for ``fun``.

    A :class:`WeakCallable` stands for what it refers to (a proxy is never
    itself the key: it may die while its function lives on).
    """
    if isinstance(fun, WeakCallable):
        objs = tuple(r() for r in fun._refs)
        if any(o is None for o in objs):
            fun()  # raises ReferenceError, naming the function
        return objs
    if isinstance(fun, types.MethodType):
        return (fun.__self__, fun.__func__)
    return (fun,)


def _refs(objs: Sequence[Any], callback: Callable[[Any], None] | None) -> tuple | None:
    try:
        return tuple(weakref.ref(o, callback) for o in objs)
    except TypeError:  # not weak-referenceable
        return None


class WeakCallable:
    """Call a function (or bound method) held by weak reference.

    The proxy has the function's name, qualified name, module, doc and
    signature, so error messages and signature inspection still see the
    user's function. Calling it after the function was collected raises
    ``ReferenceError``.
    """

    def __init__(self, fun: Callable[..., Any], refs: tuple) -> None:
        self._refs = refs
        self.__name__ = getattr(fun, "__name__", type(fun).__name__)
        self.__qualname__ = getattr(fun, "__qualname__", self.__name__)
        self.__module__ = getattr(fun, "__module__", None)
        self.__doc__ = getattr(fun, "__doc__", None)
        try:
            self.__signature__ = inspect.signature(fun)
        except (TypeError, ValueError):
            self.__signature__ = None

    def target(self) -> Callable[..., Any] | None:
        """Return the function (a fresh bound method for a method), or ``None`` if gone."""
        objs = [r() for r in self._refs]
        if any(o is None for o in objs):
            return None
        if len(objs) == 2:
            return types.MethodType(objs[1], objs[0])
        return objs[0]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fun = self.target()
        if fun is None:
            raise ReferenceError(
                f"statejax: the function {self.__qualname__!r} (or the object its method is "
                "bound to) was garbage-collected; a cached transform holds it weakly. Fix: "
                "keep a reference to the function (or model) while its transform is used."
            )
        return fun(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<weak proxy of {self.__qualname__}>"


def weak_callable(fun: Callable[..., Any]) -> Callable[..., Any]:
    """Return a :class:`WeakCallable` for ``fun``, or ``fun`` if it cannot be held weakly."""
    if isinstance(fun, WeakCallable):
        return fun
    refs = _refs(_referents(fun), None)
    return fun if refs is None else WeakCallable(fun, refs)


class WeakLRU:
    """A bounded LRU cache keyed by (hashable parts, user callables held weakly).

    Args:
        size: The most entries kept; the least recently used goes first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, tuple[tuple, Any]] = OrderedDict()
        self._lock = threading.RLock()
        _ALL.add(self)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()

    def values(self) -> list[Any]:
        """Return the cached values (most recently used last)."""
        with self._lock:
            return [v for _, v in self._items.values()]

    def get(
        self,
        parts: Hashable,
        funs: Sequence[Callable[..., Any]],
        build: Callable[[list[Callable[..., Any]]], Any],
    ) -> Any:
        """Return the value for ``(parts, funs)``, building it with weak proxies on a miss.

        ``build`` receives one :class:`WeakCallable` per function and must not
        keep the functions themselves. A function that cannot be held weakly
        (or unhashable ``parts``) gets a fresh, uncached value on every call.
        """
        objs = [_referents(f) for f in funs]
        key = (parts, tuple(tuple(id(o) for o in group) for group in objs))
        try:
            hash(key)
        except TypeError:
            return build([weak_callable(f) for f in funs])
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                refs, value = hit
                if all(r() is o for r, o in zip(refs, [o for g in objs for o in g], strict=True)):
                    self._items.move_to_end(key)
                    return value
                del self._items[key]

        def drop(_: Any, key: Hashable = key) -> None:
            with self._lock:
                entry = self._items.get(key)
                if entry is not None and any(r() is None for r in entry[0]):
                    del self._items[key]

        flat = [o for g in objs for o in g]
        refs = _refs(flat, drop)
        if refs is None:
            return build([weak_callable(f) for f in funs])
        proxies = []
        pos = 0
        for f, group in zip(funs, objs, strict=True):
            proxies.append(WeakCallable(f, refs[pos : pos + len(group)]))
            pos += len(group)
        value = build(proxies)
        with self._lock:
            self._items[key] = (refs, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def all_caches() -> list[WeakLRU]:
    """Return every :class:`WeakLRU` alive."""
    return list(_ALL)
