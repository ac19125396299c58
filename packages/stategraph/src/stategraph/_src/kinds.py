"""More state kinds of brainstate: batch and delay states, a fake state, ``maybe_state``."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from .state import LongTermState, ShortTermState, State
from .structure import describe

__all__ = ["BatchState", "DelayState", "FakeState", "maybe_state"]

T = TypeVar("T")


class BatchState(LongTermState[T]):
    """A long-term state holding the current batch of data (inputs, labels).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> sg.BatchState(jnp.zeros((32, 784)), name="x")
        BatchState(name='x', value=f32[32,784])
    """

    __slots__ = ()


class DelayState(ShortTermState[T]):
    """A short-term state holding the history buffer of a delay.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> sg.DelayState(jnp.zeros((10, 4)), name="buffer")
        DelayState(name='buffer', value=f32[10,4])
    """

    __slots__ = ()


class FakeState(Generic[T]):
    """A plain holder with a ``value`` and a ``name``, never seen by transforms.

    Use it where code expects a state's interface but the value must not be
    traced or carried (a constant, a Python object). Reads and writes are
    plain attribute accesses: no trace records them, no hook runs, and
    :func:`~stategraph.states` does not report it.

    Example:
        >>> import stategraph as sg
        >>> f = sg.FakeState([1, 2], name="cfg")
        >>> f.value.append(3); f
        FakeState(name='cfg', value=[1, 2, 3])
        >>> with sg.StateTrace() as t:
        ...     _ = f.value
        >>> t.states
        ()
    """

    __slots__ = ("value", "name", "__weakref__")

    def __init__(self, value: T, name: str | None = None, **metadata: Any) -> None:
        self.value = value
        self.name = name

    def __repr__(self) -> str:
        try:
            shown = describe(self.value)
        except Exception:  # pragma: no cover - exotic values
            shown = type(self.value).__name__
        if (
            isinstance(self.value, (list, tuple, dict, str, int, float, bool))
            and len(repr(self.value)) < 60
        ):
            shown = repr(self.value)
        return f"FakeState(name={self.name!r}, value={shown})"


def maybe_state(val: Any) -> Any:
    """Return ``val.value`` for a State (or FakeState), else ``val`` itself.

    Example:
        >>> import stategraph as sg
        >>> sg.maybe_state(sg.State(2.0)), sg.maybe_state(3.0)
        (2.0, 3.0)
    """
    if isinstance(val, (State, FakeState)):
        return val.value
    return val
