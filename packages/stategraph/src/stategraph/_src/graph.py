"""Finding the states held in an object graph, and saving / restoring them."""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from .access import visible
from .state import State
from .structure import describe, structure_of

__all__ = ["Filter", "restore", "snapshot", "states"]

Filter = type | str | Callable[[str, State], bool]

# Leaf objects never walked into: arrays, numbers, strings, code.
_OPAQUE = (
    str,
    bytes,
    int,
    float,
    complex,
    bool,
    type(None),
    np.ndarray,
    np.generic,
    jax.Array,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    seen: set[str] = set()
    if dataclasses.is_dataclass(obj):
        for field in dataclasses.fields(obj):
            if hasattr(obj, field.name):
                items.append((field.name, getattr(obj, field.name)))
                seen.add(field.name)
    for name, value in getattr(obj, "__dict__", {}).items():
        if name not in seen:
            items.append((name, value))
            seen.add(name)
    for klass in type(obj).__mro__:
        for name in getattr(klass, "__slots__", ()):
            if name in seen or name.startswith("__"):
                continue
            try:
                items.append((name, getattr(obj, name)))
            except AttributeError:
                continue
            seen.add(name)
    return items


def _children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        return [(str(k), v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return []
    return _attributes(obj)


def _walk(obj: Any) -> dict[str, State]:
    found: dict[str, State] = {}
    seen_states: set[int] = set()
    visiting: set[int] = set()

    def visit(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, State):
            if id(node) not in seen_states:
                seen_states.add(id(node))
                found[".".join(path)] = node
            return
        if isinstance(node, _OPAQUE) or id(node) in visiting:
            return
        visiting.add(id(node))
        for key, child in _children(node):
            visit(child, (*path, key))

    visit(obj, ())
    return found


def _check_filter_arity(flt: Callable[..., Any]) -> None:
    """Raise ``TypeError`` if a function filter cannot be called as ``flt(path, state)``."""
    try:
        sig = inspect.signature(flt)
    except (TypeError, ValueError):  # no signature to check (some builtins)
        return
    try:
        sig.bind("path", None)
    except TypeError:
        name = getattr(flt, "__qualname__", repr(flt))
        raise TypeError(
            f"sg.states: a function filter is called as filter(path, state) with two "
            f"arguments (the dotted path string and the State), but {name} has the signature "
            f"{sig}. Fix: write it as `lambda path, state: ...` (for example "
            "`lambda path, state: path.endswith('w')`)."
        ) from None


def _matcher(flt: Filter) -> Callable[[str, State], bool]:
    if isinstance(flt, type):
        if not issubclass(flt, State):
            raise TypeError(
                f"sg.states: a class filter must be a State subclass, got {flt.__name__}. "
                "Fix: pass e.g. sg.ParamState, a tag string, or a function (path, state) -> bool."
            )
        return lambda path, state: isinstance(state, flt)
    if isinstance(flt, str):
        return lambda path, state: state.tag == flt
    if callable(flt):
        _check_filter_arity(flt)
        return flt
    raise TypeError(
        f"sg.states: a filter must be a State subclass, a tag string or a function "
        f"(path, state) -> bool, got {type(flt).__name__} {flt!r}."
    )


def states(obj: Any, *filters: Filter) -> dict[str, State]:
    """Return the states reachable from ``obj``, keyed by their dotted path.

    Walks attributes of plain objects and dataclasses (``__dict__`` and
    ``__slots__``), and the items of lists, tuples and dicts, in a
    deterministic order (attribute and insertion order). A state reachable by
    two paths is reported once, under the first path; cycles are safe.

    Args:
        obj: The root object (a model, a list of layers, a dict, ...).
        *filters: Keep a state only if it matches *every* filter. A filter is a
            ``State`` subclass, a tag string (compared with ``state.tag``), or a
            predicate ``(path, state) -> bool``.

    Returns:
        A dict from path (``"layers.0.w"``) to state.

    Raises:
        TypeError: if a filter is of none of the accepted kinds.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> class Net:
        ...     def __init__(self):
        ...         self.w = sg.ParamState(jnp.ones(2))
        ...         self.layers = [sg.ShortTermState(jnp.zeros(2))]
        >>> list(sg.states(Net()))
        ['w', 'layers.0']
        >>> list(sg.states(Net(), sg.ParamState))
        ['w']
    """
    matchers = [_matcher(f) for f in filters]
    found = _walk(obj)
    return {p: s for p, s in found.items() if all(m(p, s) for m in matchers)}


def snapshot(obj: Any, *filters: Filter) -> dict[str, Any]:
    """Return the values of the states in ``obj`` as a plain ``{path: value}`` dict.

    The result holds no State objects, so checkpoint libraries (Orbax,
    ``numpy.savez``, pickle) can save it directly; :func:`restore` puts it back.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> model = {"w": sg.ParamState(jnp.ones(2))}
        >>> snap = sg.snapshot(model)
        >>> model["w"].value = jnp.zeros(2)
        >>> sg.restore(model, snap)
        >>> float(model["w"].value[0])
        1.0
    """
    return {path: state.value for path, state in states(obj, *filters).items()}


def restore(obj: Any, snap: Mapping[str, Any], *filters: Filter) -> None:
    """Put the values of a :func:`snapshot` back into the states of ``obj``.

    Every entry is checked before anything is written: on a missing, extra or
    mis-shaped entry nothing changes.

    Args:
        obj: The root object, as given to :func:`snapshot`.
        snap: A mapping from path to value.
        *filters: The same filters as given to :func:`snapshot`.

    Raises:
        TypeError: if ``snap`` is not a mapping.
        ValueError: if paths are missing or extra, or a value's structure,
            shape or dtype differs from the state's current value.
    """
    if not isinstance(snap, Mapping):
        raise TypeError(f"sg.restore: the snapshot must be a mapping, got {type(snap).__name__}.")
    found = states(obj, *filters)
    missing = [p for p in found if p not in snap]
    extra = [p for p in snap if p not in found]
    problems = []
    if missing:
        problems.append(f"missing entries for states {missing}")
    if extra:
        problems.append(f"entries {extra} match no state")
    for path, state in found.items():
        if path in snap:
            held = visible(state)  # also for a state whose donated buffer is gone
            if structure_of(held) != structure_of(snap[path]):
                problems.append(
                    f"'{path}' is {describe(snap[path])} but the state holds {describe(held)}"
                )
    if problems:
        raise ValueError(
            "sg.restore: the snapshot does not match the object's states: "
            + "; ".join(problems)
            + ". Nothing was changed. Fix: take the snapshot from an object of the same "
            "structure (with the same filters), or rebuild the object first."
        )
    for path, state in found.items():
        state.value = snap[path]
