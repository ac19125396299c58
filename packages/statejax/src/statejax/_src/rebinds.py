"""Detecting a model attribute rebound to another State (stale state identity).

A traced signature is tied to the State *objects* its trace touched. If a
model's attribute is later rebound to another State (``layer.w =
sg.ParamState(...)``, the "re-initialise the layer" pattern) while the old
state is still alive, the cached trace would silently keep using the old one.

What is recorded. When a function is traced, its *roots* are found without
running it: the instance of a bound method, the objects in its closure cells,
the module globals it names, the arguments of a ``functools.partial``, and,
through the transforms it wraps (``sj.jit`` of ``sj.vmap`` of ``model.step``,
a ``statediff`` transform's target, the branches of ``sj.cond``), the roots of
the user's functions inside. For each root, :func:`stategraph.states` gives
the path of every state of the trace reachable from it (``"layer.w"``), and
these *bindings* (root held weakly, path, state held weakly) are kept with
the trace.

When it is checked. A check walks the roots again and compares the states at
the recorded paths; a difference clears the function's caches (through every
layer of nesting), so the call traces again with the states reached now. The
Python body is never re-run for a check. Checks run:

- on every call while :func:`check_stale_states` is on (an opt-in mode: it
  sends every compiled call through the slow path, which costs a graph walk
  of the roots per call; the default hot path is unchanged);
- on every slow-path call (first call per signature, calls inside other
  transforms, calls after a state was garbage-collected).

What is detected: rebinding an attribute, dict entry or list item on a path
from a root to any State the trace touched, to another State (new or already
existing), and rebinding a module global the function names. What is not
detected (call ``.clear_cache()`` or ``sj.clear_caches()``): states reached
only through objects that are not walkable from a root (computed on the fly,
held by objects created inside the function, behind a property), roots that
cannot be held weakly (then the binding is skipped), and, outside the
checking mode, rebinds between two calls that both take the compiled fast
path.
"""

from __future__ import annotations

import functools
import threading
import types
import weakref
from typing import Any

import stategraph as sg
from stategraph import State
from stategraph.extend import ACTIVE

from .weakcache import WeakCallable

__all__ = ["Bindings", "check_stale_states", "checking", "find_bindings", "revalidate"]

#: Modules whose globals are never roots: this stack's own and JAX's (their module-level
#: caches would make every trace walk every cached entry, and they hold no user state).
_LIBRARY_PREFIXES = (
    "stategraph.",
    "statejax.",
    "statediff.",
    "statediff_units.",
    "jax.",
    "jaxlib.",
)

_MODE_LOCK = threading.Lock()
_ENABLED = [0]  # how many check_stale_states(True) are in force (process-wide)

_SKIP = (types.ModuleType, type, types.BuiltinFunctionType, str, bytes, int, float, complex, bool)


def checking() -> bool:
    """Whether the opt-in checking mode is on."""
    return _ENABLED[0] > 0


def _roots(fun: Any, out: list[Any], seen: set[int], depth: int = 0) -> None:
    """Collect (kind, holder) roots of ``fun``: ("obj", object) or ("global", (dict, name))."""
    if fun is None or id(fun) in seen or depth > 6:
        return
    seen.add(id(fun))
    if isinstance(fun, WeakCallable):
        _roots(fun.target(), out, seen, depth + 1)
        return
    inner = getattr(fun, "stateful", None)  # a JittedFunction
    if inner is not None and hasattr(inner, "fun"):
        _roots(inner.fun, out, seen, depth + 1)
        return
    if hasattr(fun, "_lifted") and hasattr(fun, "_driver"):  # a statediff transform
        _roots(getattr(fun, "target", None), out, seen, depth + 1)
        return
    if type(fun).__name__ == "StatefulFunction" and hasattr(fun, "fun"):
        _roots(fun.fun, out, seen, depth + 1)
        return
    if isinstance(fun, types.MethodType):
        _add_obj(fun.__self__, out, seen, depth)
        _roots(fun.__func__, out, seen, depth + 1)
        return
    if isinstance(fun, functools.partial):
        _roots(fun.func, out, seen, depth + 1)
        for arg in (*fun.args, *fun.keywords.values()):
            _add_obj(arg, out, seen, depth)
        return
    if isinstance(fun, types.FunctionType):
        for cell in fun.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            _add_obj(value, out, seen, depth)
        globs = fun.__globals__
        if str(globs.get("__name__", "")).startswith(_LIBRARY_PREFIXES):
            return  # library code: its closure cells (walked above) lead to the user's code
        for name in fun.__code__.co_names:
            value = globs.get(name)
            if value is None or isinstance(value, _SKIP):
                continue
            if callable(value) and not isinstance(value, State):
                _roots(value, out, seen, depth + 1)
            else:
                out.append(("global", (globs, name)))
        return
    if callable(fun):  # a callable object (a model with __call__)
        out.append(("obj", fun))


def _add_obj(value: Any, out: list[Any], seen: set[int], depth: int) -> None:
    if isinstance(value, _SKIP) or value is None:
        return
    if callable(value) and not isinstance(value, State):
        _roots(value, out, seen, depth + 1)
        return
    out.append(("obj", value))


class Bindings:
    """The recorded paths from a function's roots to the states of one trace."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[Any, Any, dict[str, weakref.ref]]]) -> None:
        self.items = items

    def stale(self) -> str | None:
        """Return a description of the first rebound path, or ``None`` if all still hold."""
        for kind, holder, paths in self.items:
            if kind == "global":
                globs, name = holder
                root = globs.get(name)
                label = name
            else:
                root = holder()
                label = type(root).__name__ if root is not None else "?"
            if root is None:
                continue  # the root is gone: its states are gone too (weak plan refs)
            current = sg.states(root) if not isinstance(root, State) else {"": root}
            for path, ref in paths.items():
                if current.get(path) is not ref():
                    return f"{label}.{path}" if path else label
        return None


def find_bindings(fun: Any, states: list[State]) -> Bindings:
    """Record, for the roots of ``fun``, the paths to ``states`` (see the module docs)."""
    roots: list[Any] = []
    _roots(fun, roots, set())
    ids = {id(s) for s in states}
    items = []
    for kind, holder in roots:
        if kind == "global":
            globs, name = holder
            root = globs.get(name)
            ref: Any = holder
        else:
            root = holder
            try:
                ref = weakref.ref(holder)
            except TypeError:  # cannot be held weakly: skipped (documented)
                continue
        try:
            found = {"": root} if isinstance(root, State) else sg.states(root)
        except Exception:  # noqa: BLE001 - an object sg.states cannot walk: skipped
            continue
        paths = {p: weakref.ref(s) for p, s in found.items() if id(s) in ids}
        if paths:
            items.append((kind, ref, paths))
    return Bindings(items)


def _set(enabled: bool) -> None:
    with _MODE_LOCK:
        was = _ENABLED[0] > 0
        if enabled and not was:
            _ENABLED[0] = 1
            ACTIVE.add(1)  # every compiled call takes the slow path, which checks
        elif not enabled and was:
            _ENABLED[0] = 0
            ACTIVE.add(-1)


class check_stale_states:  # noqa: N801 - used like a function
    """Turn the opt-in check for rebound states on (or off); also a context manager.

    While on, every call of a stateful transform first checks that the states
    its cached trace used are still the ones its roots reach (``model.w`` is
    still the same State object); a rebound one makes it trace again. The
    check walks the model's attributes (never the Python body), and sends
    compiled calls through their slow path, so use it while developing or
    debugging. Off by default; the module ``statejax._src.rebinds`` documents
    exactly which rebinds are detected.

    Args:
        enabled: ``True`` to turn checking on, ``False`` to turn it off.

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
        >>> old = layer.w
        >>> layer.w = sg.ParamState(jnp.zeros(2))   # re-initialise, the old one still alive
        >>> with sj.check_stale_states():
        ...     float(f(1.0))
        0.0
    """

    def __init__(self, enabled: bool = True) -> None:
        self._previous = checking()
        _set(bool(enabled))

    def __enter__(self) -> check_stale_states:
        return self

    def __exit__(self, *exc: object) -> None:
        _set(self._previous)


def revalidate(sf: Any, lifted: Any) -> bool:
    """Clear ``sf``'s caches and return ``True`` if ``lifted``'s states were rebound."""
    bindings = getattr(lifted, "bindings", None)
    if bindings is None or not bindings.items:
        return False
    if bindings.stale() is None:
        return False
    sf.clear_cache()
    return True
