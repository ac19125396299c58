"""The :class:`State` container and its standard subclasses."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from stategraph.errors import TraceContextError

from . import context
from .access import read_slow, visible, write_checked
from .hook_methods import HookMethods
from .hook_registry import run_init, run_read, write_with_hooks
from .hooks import HOOKS
from .methods import StateMethods, normalize_tag
from .structure import FAST_TYPES, describe

__all__ = ["HiddenState", "LongTermState", "ParamState", "ShortTermState", "State"]

T = TypeVar("T")

_ACTIVE = context.ACTIVE
_FAST = FAST_TYPES


class State(StateMethods, HookMethods, Generic[T]):
    """A mutable container for a pytree of arrays, seen by stateful transforms.

    Reading and writing ``state.value`` inside a function is how stateful code
    talks to the transforms of ``statejax`` and ``statediff``: they trace which
    states a function reads and writes and carry those values in and out of
    JAX's pure world. Outside any trace, ``.value`` costs about as much as a
    plain Python property.

    Args:
        value: Any pytree of JAX or NumPy arrays (or Python scalars).
        name: Optional name, shown in ``repr`` and in error messages.
        **metadata: Free-form metadata; the key ``tag`` (a str or an iterable
            of str, kept as a set) is used by filters and
            :func:`~stategraph.catch_new_states`.

    Example:
        >>> import jax.numpy as jnp
        >>> import stategraph as sg
        >>> w = sg.ParamState(jnp.ones((2, 3)), name="w")
        >>> w
        ParamState(name='w', value=f32[2,3])
        >>> w.value = w.value * 2
        >>> float(w.value.sum())
        12.0
    """

    __slots__ = ("_value", "_name", "_metadata", "_birth", "__weakref__", "__dict__")

    def __init__(self, value: T, name: str | None = None, **metadata: Any) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"{type(self).__name__}(name=...): the name must be a str or None, "
                f"got {type(name).__name__} {name!r}. Fix: pass name='my_state'."
            )
        self._name = name  # set first: the value check's error message names the state
        if "tag" in metadata:
            metadata["tag"] = normalize_tag(f"{type(self).__name__}(tag=...)", metadata["tag"])
        self._metadata = dict(metadata)
        self._check_value(value)
        self._value = value
        self._birth = 0
        if _ACTIVE.count:
            self._born()

    def _born(self) -> None:
        """Tell this thread's traces, catchers and ``init`` hooks that the state was made."""
        # Traces of *this thread* open now must not record the new state (it is
        # local to their code); created outside them, every trace records it.
        if not _ACTIVE.count:
            return
        local = context.LOCAL
        if local.traces:
            self._birth = context.next_serial()
            self.__dict__["_level"] = len(local.traces)
        for catcher in tuple(reversed(local.catchers)):  # innermost tag wins
            catcher._on_create(self)
        if HOOKS.count:
            run_init(self, self._value, {"_name": self._name, **self._metadata})

    # ------------------------------------------------------------------ value
    @property
    def value(self) -> T:
        """The current value; reads and writes are recorded by open traces."""
        if _ACTIVE.count:
            value = read_slow(self)
            if HOOKS.count:
                run_read(self, value)
            return value
        return self._value

    @value.setter
    def value(self, new: T) -> None:
        if _ACTIVE.count or type(new) not in _FAST:
            if HOOKS.count:
                write_with_hooks(self, new)
                return
            self._check_value(new)
            write_checked(self, new)
        else:
            self._value = new

    def _check_value(self, value: Any) -> None:
        """Validate a value for this kind of state (subclasses narrow it)."""
        if isinstance(value, State):
            raise TypeError(
                f"{type(self).__name__} {self._label()}: a state's value cannot be another "
                f"State (got {value!r}). Fix: store `other.value` instead."
            )

    # --------------------------------------------------------------- metadata
    @property
    def name(self) -> str | None:
        """The state's name (``None`` when unnamed)."""
        return self._name

    @name.setter
    def name(self, name: str | None) -> None:
        self._name = name

    @property
    def metadata(self) -> dict[str, Any]:
        """Free-form metadata given at construction (a mutable dict)."""
        return self._metadata

    @property
    def path(self) -> str | None:
        """Where :func:`~stategraph.states` (or a ``grad_states`` dict) found the state.

        Set only for a state without a name of its own, to the first path it
        was found under (``"layers.0.b"``); error messages and ``repr`` show it
        in place of the missing name.
        """
        return self.__dict__.get("_path")

    def _label(self) -> str:
        if self._name is not None:
            return repr(self._name)
        path = self.__dict__.get("_path")
        if path is not None:
            return f"at {path!r}"
        return f"<unnamed at {id(self):#x}>"

    def _label_typed(self) -> str:
        """``ParamState 'w'``, ``ParamState at 'layers.0.b'`` or ``ParamState <unnamed ..>``."""
        return f"{type(self).__name__} {self._label()}"

    def __repr__(self) -> str:
        try:
            shown = describe(visible(self))
        except AttributeError:
            shown = "<unset>"
        path = self.__dict__.get("_path") if self._name is None else None
        named = f"path={path!r}" if path is not None else f"name={self._name!r}"
        return f"{type(self).__name__}({named}, value={shown})"

    # States are identities, not values: never hashed by content, never pytrees.
    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other


class ParamState(State[T]):
    """A trainable parameter (weights, biases): what optimisers update.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> sg.ParamState(jnp.zeros(4), name="b")
        ParamState(name='b', value=f32[4])
    """

    __slots__ = ()


class ShortTermState(State[T]):
    """A state that is reset between runs (membrane potentials, counters).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> sg.ShortTermState(jnp.zeros(2), name="v")
        ShortTermState(name='v', value=f32[2])
    """

    __slots__ = ()


class LongTermState(State[T]):
    """A state kept across runs but not trained (running statistics).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> sg.LongTermState(jnp.ones(3), name="mean")
        LongTermState(name='mean', value=f32[3])
    """

    __slots__ = ()


class HiddenState(ShortTermState[T]):
    """A short-term state whose value is a single array (not a pytree).

    Raises:
        TypeError: if the value is a container (dict, list, tuple, ...).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> sg.HiddenState(jnp.zeros((8, 64)), name="h")
        HiddenState(name='h', value=f32[8,64])
    """

    __slots__ = ()

    def _check_value(self, value: Any) -> None:
        super()._check_value(value)
        if type(value) in _FAST:
            return
        if isinstance(value, (dict, list, tuple)) or not (
            hasattr(value, "shape") and hasattr(value, "dtype")
        ):
            raise TypeError(
                f"HiddenState {self._label()}: the value must be a single array, "
                f"got {type(value).__name__} {describe(value)}. "
                "Fix: use ShortTermState for pytree values, or one HiddenState per array."
            )


def _poisoned_read(self: State) -> Any:
    raise TraceContextError(
        f"{type(self).__mro__[1].__name__} {self._label()} was created inside a traced function "
        "and its value only existed inside that trace (it was a JAX tracer). "
        "Fix: create the state outside the transform (for example in the model's __init__), "
        "or write it a concrete value before reading it."
    )


def _poisoned_write(self: State, new: Any) -> None:
    # Un-poison only once the write succeeded: a refused write (say, a tracer
    # from plain jax.jit) leaves the state poisoned, not holding None.
    self._check_value(new)
    write_checked(self, new, check_structure=False)
    object.__setattr__(self, "__class__", type(self).__mro__[1])


_POISONED: dict[type, type] = {}


def poison(state: State) -> None:
    """Make reads of ``state`` raise :class:`TraceContextError` until it is written.

    Used for states created inside a trace that ended holding a tracer: the
    tracer is dropped and the state's class is switched to a poisoned subclass,
    so the normal read path keeps its cost.
    """
    cls = type(state)
    if cls in _POISONED.values():
        return
    sub = _POISONED.get(cls)
    if sub is None:
        sub = type(
            cls.__name__,
            (cls,),
            {
                "__slots__": (),
                "value": property(_poisoned_read, _poisoned_write),
                "__module__": cls.__module__,
            },
        )
        _POISONED[cls] = sub
    state._value = None
    object.__setattr__(state, "__class__", sub)


def is_poisoned(state: State) -> bool:
    """Return whether ``state`` was poisoned by :func:`poison`."""
    return type(state) in _POISONED.values()
