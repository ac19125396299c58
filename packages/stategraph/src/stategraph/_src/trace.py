"""Recording which states a piece of code reads and writes."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from stategraph.errors import TraceOrderError

from . import context
from .state import State

__all__ = ["StateTrace"]


class StateTrace:
    """Context manager recording the states read and written inside it.

    States are recorded in first-access order. Traces nest: an access inside
    an inner trace is seen by every enclosing trace too. A state created
    inside a trace is not recorded by the traces that were already open when
    it was created (it is local to that code). Traces are per thread: two
    threads tracing at once never see each other's states.

    Attributes:
        states: Every state accessed, in first-access order.
        read_states: The states that were read at least once (first-read order).
        written_states: The states that were written at least once (first-write order).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> a, b = sg.State(jnp.ones(2), name="a"), sg.State(jnp.zeros(2), name="b")
        >>> with sg.StateTrace() as t:
        ...     b.value = a.value + 1
        >>> [s.name for s in t.states], [s.name for s in t.written_states]
        (['a', 'b'], ['b'])
    """

    # A trace that manages tracers (see stategraph.extend) sets this to the JAX
    # trace it was opened under; writes of tracers from that trace are allowed.
    _jax_trace: Any = None
    # A trace that keeps the values written inside it private to its thread
    # (see stategraph.extend.LiftTrace) sets this.
    _private_values: bool = False

    def __init__(self) -> None:
        self._serial = 0
        self._open = False
        self._closed = False
        self._order: dict[int, State] = {}
        self._read: dict[int, State] = {}
        self._written: dict[int, State] = {}

    # ---------------------------------------------------------------- records
    @property
    def states(self) -> tuple[State, ...]:
        """Every state accessed inside the trace, in first-access order."""
        return tuple(self._order.values())

    @property
    def read_states(self) -> tuple[State, ...]:
        """The states read at least once, in first-read order."""
        return tuple(self._read.values())

    @property
    def written_states(self) -> tuple[State, ...]:
        """The states written at least once, in first-write order."""
        return tuple(self._written.values())

    def was_read(self, state: State) -> bool:
        """Return whether ``state`` was read inside this trace."""
        return id(state) in self._read and self._read[id(state)] is state

    def was_written(self, state: State) -> bool:
        """Return whether ``state`` was written inside this trace."""
        return id(state) in self._written and self._written[id(state)] is state

    def _on_read(self, state: State) -> None:
        key = id(state)
        if key not in self._order:
            self._order[key] = state
        if key not in self._read:
            self._read[key] = state

    def _on_write(self, state: State) -> None:
        key = id(state)
        if key not in self._order:
            self._order[key] = state
        if key not in self._written:
            self._written[key] = state

    # ---------------------------------------------------------------- context
    @property
    def is_open(self) -> bool:
        """Whether the trace is currently entered."""
        return self._open

    def __enter__(self) -> StateTrace:
        if self._open or self._closed:
            raise TraceOrderError(
                f"{type(self).__name__}: a trace can be entered only once "
                f"({'it is open' if self._open else 'it was already closed'}). "
                "Fix: create a new StateTrace for each `with` block."
            )
        self._serial = context.next_serial()
        context.LOCAL.traces.append(self)
        context.ACTIVE.add(1)
        self._open = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        traces = context.LOCAL.traces
        if not self._open:
            raise TraceOrderError(f"{type(self).__name__}: exited a trace that is not open.")
        self._open = False
        self._closed = True
        context.ACTIVE.add(-1)
        if traces and traces[-1] is self:
            traces.pop()
            return
        inner = traces[traces.index(self) + 1 :] if self in traces else []
        if self in traces:
            traces.remove(self)
        raise TraceOrderError(
            f"{type(self).__name__}: traces must be exited innermost first, but this trace was "
            f"exited while {len(inner)} trace(s) entered after it were still open "
            f"({', '.join(type(t).__name__ for t in inner)}). Fix: nest the `with` blocks."
        )

    def __repr__(self) -> str:
        names = ", ".join(s._label() for s in self._order.values())
        return f"{type(self).__name__}(states=[{names}])"
