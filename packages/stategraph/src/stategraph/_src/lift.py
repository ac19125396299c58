"""A state trace that turns the states read inside it into inputs of a jaxpr."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import jax

from . import context
from .access import visible
from .jax_compat import current_jax_trace, is_staging_trace, new_jaxpr_input
from .state import State, poison
from .structure import has_tracer
from .trace import StateTrace

__all__ = ["LiftTrace", "restore_and_close"]


def _new_arg(jax_trace: Any, leaf: Any) -> Any:
    aval = jax.typeof(leaf)
    return new_jaxpr_input(jax_trace, aval)


class LiftTrace(StateTrace):
    """Record states like :class:`StateTrace` and lift them into jaxpr inputs.

    Open it *inside* a function being traced by ``jax.make_jaxpr`` (or any
    transform that stages a jaxpr). On the first read of a state, its value's
    leaves become new input variables of that jaxpr, appended after the
    function's own arguments in first-read order, and reads of the state in
    this thread give those tracers until the trace closes. Writes of tracers
    from that jaxpr's trace are allowed. Call :meth:`finish` (or leave the
    ``with`` block) to collect the written values.

    The trace is private to its thread: the tracers and every value written
    inside it are kept in this thread's private view (keyed by state), never
    in the state object, so other threads keep reading and writing the
    state's real value meanwhile, and closing the trace restores only the
    private view (it never overwrites a value another thread wrote).

    Attributes:
        input_states: States lifted into inputs, in first-read order.
        input_values: Their values at lifting time (bind these to the inputs).
        output_values: After :meth:`finish`, the final values of
            ``written_states`` (tracers of the jaxpr).

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg
        >>> from stategraph.extend import LiftTrace
        >>> w = sg.ParamState(jnp.ones(3), name="w")
        >>> def f(x):
        ...     with LiftTrace() as t:
        ...         w.value = w.value * x
        ...     return t.output_values
        >>> jaxpr = jax.make_jaxpr(f)(2.0)
        >>> len(jaxpr.in_avals), float(w.value[0])   # x, then w's value
        (2, 1.0)
    """

    _private_values = True

    def __init__(self) -> None:
        super().__init__()
        # What this thread's private view held for each touched state before
        # this trace touched it (None: nothing, the shared value was visible).
        self._originals: dict[int, tuple[State, Any] | None] = {}
        self._created: list[State] = []
        self._own: set[int] = set()  # lifted here, or written at this trace's level
        self.input_states: list[State] = []
        self.input_values: list[Any] = []
        self.output_values: list[Any] = []

    def __enter__(self) -> LiftTrace:
        jax_trace = current_jax_trace()
        if not is_staging_trace(jax_trace):
            raise TypeError(
                "LiftTrace must be opened inside a function being staged to a jaxpr "
                f"(jax.make_jaxpr, jax.jit tracing), but JAX's current trace is "
                f"{type(jax_trace).__name__}. Fix: open it inside the traced function."
            )
        self._jax_trace = jax_trace
        super().__enter__()
        context.LOCAL.catchers.append(self)
        context.ACTIVE.add(1)
        return self

    def _on_create(self, state: State) -> None:
        self._created.append(state)

    def _inner_touched(self, key: int) -> bool:
        """Whether a LiftTrace opened inside this one holds its own value for a state."""
        traces = context.LOCAL.traces
        inner = traces[traces.index(self) + 1 :] if self in traces else []
        return any(isinstance(t, LiftTrace) and key in t._originals for t in inner)

    def _innermost(self) -> bool:
        for trace in reversed(context.LOCAL.traces):
            if isinstance(trace, LiftTrace):
                return trace is self
        return False

    def _on_read(self, state: State) -> None:
        key = id(state)
        super()._on_read(state)
        # Lift on the first read at this trace's level. A write made inside a
        # nested LiftTrace does not count (that trace puts the value back when it
        # closes), and while a nested trace holds its own value for the state
        # (it wrote it), the read is that trace's business.
        if key in self._own or self._inner_touched(key):
            return
        view = context.LOCAL.view
        value = visible(state)
        if key not in self._originals:
            self._originals[key] = view.get(key)
        leaves, treedef = jax.tree.flatten(value)
        try:
            lifted = [_new_arg(self._jax_trace, x) for x in leaves]
        except TypeError as err:
            raise TypeError(
                f"{type(state).__name__} {state._label()}: a state's value must be a pytree "
                f"of arrays to be traced, but it holds {type(value).__name__} ({err}). "
                "Fix: store JAX or NumPy arrays (or Python numbers) in states."
            ) from None
        view[key] = (state, jax.tree.unflatten(treedef, lifted))
        self._own.add(key)
        self.input_states.append(state)
        self.input_values.append(value)

    def _on_write(self, state: State) -> None:
        key = id(state)
        if key not in self._originals:
            self._originals[key] = context.LOCAL.view.get(key)
        if self._innermost():
            self._own.add(key)
        super()._on_write(state)

    def finish(self) -> list[Any]:
        """Close the trace, restore every state and return the written values."""
        if self._open:
            self.output_values = [visible(s) for s in self.written_states]
            self._restore()
        return self.output_values

    def _restore(self) -> None:
        restore_and_close(self, self._originals, self._created)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif self._open:
            self._restore()


def restore_and_close(
    trace: StateTrace, originals: dict[int, tuple[State, Any] | None], created: list[State]
) -> None:
    """Close a trace that kept private values: put back this thread's view, poison leaks.

    ``originals`` maps each touched state's id to what this thread saw before the
    trace touched it (``None``: the shared value); a state created inside that
    holds a tracer is poisoned. The trace is removed from the catchers and closed.
    """
    try:
        view = context.LOCAL.view
        for key, before in originals.items():
            if before is None:
                view.pop(key, None)
            else:
                view[key] = before
        for state in created:
            if has_tracer(state._value):
                poison(state)
    finally:
        context.ACTIVE.add(-1)
        if trace in context.LOCAL.catchers:
            context.LOCAL.catchers.remove(trace)
        trace._close()
