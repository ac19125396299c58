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


def name_from_path(state: State, path: str) -> None:
    """Let an unnamed ``state`` be shown by ``path`` in errors and ``repr`` (first path wins).

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import name_from_path
        >>> s = sg.State(1.0); name_from_path(s, "w"); s
        State(path='w', value=f32[])
    """
    if state._name is None and "_path" not in state.__dict__:
        state.__dict__["_path"] = path


def _dtypes(value: Any) -> list[Any]:
    """The exact dtype of each leaf (``None`` for Python scalars, which adapt)."""
    out = []
    for leaf in jax.tree.leaves(value):
        dtype = getattr(leaf, "dtype", None)
        out.append(None if dtype is None else str(dtype))
    return out


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
        return lambda path, state: flt in (state.tag or ())
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
            ``State`` subclass, a tag string (matching a state whose ``tag`` set
            holds it), or a predicate ``(path, state) -> bool``.

    Returns:
        A dict from path (``"layers.0.w"``) to state. A state without a name
        of its own remembers the first path it was found under (its
        :attr:`~stategraph.State.path`): error messages and ``repr`` show it.

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
    for path, state in found.items():
        if path:
            name_from_path(state, path)
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
            shape or dtype differs from the state's current value (a float64
            NumPy array for a float32 state is refused, not silently cast).
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
            new, held = snap[path], visible(state)  # also for a state whose donated buffer is gone
            if structure_of(held) != structure_of(new):
                problems.append(f"'{path}' is {describe(new)} but the state holds {describe(held)}")
                continue
            for got, want in zip(_dtypes(new), _dtypes(held), strict=True):
                if got is not None and want is not None and got != want:
                    problems.append(
                        f"'{path}' has dtype {got} but the state holds {want} "
                        f"({describe(held)}); cast it with .astype('{want}')"
                    )
                    break
    if problems:
        raise ValueError(
            "sg.restore: the snapshot does not match the object's states: "
            + "; ".join(problems)
            + ". Nothing was changed. Fix: take the snapshot from an object of the same "
            "structure (with the same filters), or rebuild the object first."
        )
    for path, state in found.items():
        state.value = snap[path]
