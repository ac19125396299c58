"""A state trace for code run by a JAX transform that does not stage a jaxpr."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

from . import context
from .access import visible
from .jax_compat import current_jax_trace
from .lift import restore_and_close
from .state import State
from .trace import StateTrace

__all__ = ["PrivateTrace"]


class PrivateTrace(StateTrace):
    """Run code under a JAX transform (``jax.vjp``, ``jax.jvp``, ...) with states in it.

    Open it inside the function the transform calls. While it is open, in
    this thread only:

    - each of ``states`` shows the matching entry of ``values`` (typically the
      transform's tracers of the inputs being differentiated);
    - code may write the current JAX trace's tracers into states; every write
      is private to this thread (other threads keep the states' real values);
    - reads of other states go to the enclosing traces as usual (an enclosing
      :class:`LiftTrace` lifts them into its jaxpr).

    Read the values written inside with :meth:`values` before closing it.
    Closing puts back what this thread saw for every state before (whatever
    happened inside), and a state created inside that holds a tracer is
    poisoned, so no tracer outlives the transform.

    Args:
        states: States to show other values.
        values: One value per state.

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg
        >>> from stategraph.extend import PrivateTrace
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> out = sg.ShortTermState(jnp.array(0.0), name="out")
        >>> def pure(w_value):
        ...     with PrivateTrace([w], [w_value]) as t:
        ...         out.value = w.value ** 2
        ...         return out.value, t.values(t.written_states)
        >>> dy, new = jax.grad(pure, has_aux=True)(w.value)
        >>> float(dy), float(new[0]), float(out.value)   # out is as it was
        (4.0, 4.0, 0.0)
    """

    _private_values = True

    def __init__(self, states: Sequence[State] = (), values: Sequence[Any] = ()) -> None:
        super().__init__()
        if len(states) != len(values):
            raise ValueError(
                f"PrivateTrace: got {len(states)} state(s) but {len(values)} value(s). "
                "Fix: pass one value per state."
            )
        self._given = list(zip(states, values, strict=True))
        # What this thread saw for each touched state before the trace touched it
        # (None: nothing private, the shared value was visible).
        self._originals: dict[int, tuple[State, Any] | None] = {}
        self._created: list[State] = []

    def __enter__(self) -> PrivateTrace:
        self._jax_trace = current_jax_trace()
        super().__enter__()
        view = context.LOCAL.view
        for state, value in self._given:
            key = id(state)
            if key not in self._originals:
                self._originals[key] = view.get(key)
            view[key] = (state, value)
        context.LOCAL.catchers.append(self)
        context.ACTIVE.add(1)
        return self

    def _on_create(self, state: State) -> None:
        self._created.append(state)

    def _remember(self, state: State) -> None:
        # Remember what this thread saw on the first touch, reads included: code
        # inside may show a state other values for a while (statejax.vmap's
        # per-lane values) and write it then; what is put back on exit is the
        # value from before that (an enclosing LiftTrace's lifted tracer, or none).
        key = id(state)
        if key not in self._originals:
            self._originals[key] = context.LOCAL.view.get(key)

    def _on_read(self, state: State) -> None:
        self._remember(state)
        super()._on_read(state)

    def _on_write(self, state: State) -> None:
        self._remember(state)
        super()._on_write(state)

    def values(self, states: Sequence[State]) -> list[Any]:
        """Return the values ``states`` show in this thread now (inside the trace)."""
        return [visible(s) for s in states]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        restore_and_close(self, self._originals, self._created)
