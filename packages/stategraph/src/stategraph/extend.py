"""Semi-public hooks for frameworks built on :mod:`stategraph`.

These are the pieces that ``statejax`` (and any other framework) needs to lift
stateful code into pure JAX functions. They are documented and kept stable
within a minor version, but they bypass the checks of ``State.value``; model
code should not need them.

- :class:`LiftTrace`: a state trace that turns the states read inside it into
  inputs of the jaxpr being traced and allows writes of that jaxpr's tracers.
- :class:`PrivateTrace`: run code under a JAX transform that does not stage
  a jaxpr (``jax.vjp``, ``jax.jvp``, ...) with given states showing the
  transform's tracers, writes private to the thread, everything put back.
- :func:`read_raw` / :func:`write_raw`: read or set many states' values
  without recording or checking (the hot path of a compiled call), as this
  thread sees them.
- :func:`private_values`: let states show other values to this thread only
  inside a block (per-lane placeholders while a batched body is traced).
- :data:`ACTIVE`: ``ACTIVE.count`` is the number of traces and catchers open
  in any thread, plus one while any state hook is registered; when it is zero
  every access takes the fast path.
- :func:`open_traces`: this thread's open traces, outermost first.
- :func:`mark_donated` / :func:`is_donated` / :func:`donated_error`: a state
  whose buffer was donated to a call that failed raises
  :class:`~stategraph.errors.DonatedStateError` on reads until it is written.
- :func:`poison` / :func:`is_poisoned`: make a state's reads raise
  :class:`~stategraph.errors.TraceContextError` until it is written.
- :func:`describe`, :func:`structure_of`, :func:`has_tracer`: tracer-safe
  descriptions and comparisons of state values.
- :func:`state_label`: how every error message of the stack names a state
  (its name, else the path it was found under, else ``unnamed``).
- :class:`PerLaneState`, :func:`split_lanes`, :func:`merge_lanes`: the
  per-lane protocol of mapping transforms (each lane of ``statejax.vmap``
  draws its own random numbers).
- :func:`name_from_path`: let an unnamed state be shown by a path or key.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from stategraph._src.access import visible as _visible
from stategraph._src.access import write_visible as _write_visible
from stategraph._src.context import ACTIVE
from stategraph._src.context import LOCAL as _LOCAL
from stategraph._src.donated import donated_error, is_donated, mark_donated
from stategraph._src.graph import name_from_path
from stategraph._src.lanes import PerLaneState, merge_lanes, split_lanes
from stategraph._src.lift import LiftTrace
from stategraph._src.private_trace import PrivateTrace
from stategraph._src.state import State, is_poisoned, poison
from stategraph._src.structure import describe, has_tracer, structure_of
from stategraph._src.trace import StateTrace

__all__ = [
    "ACTIVE",
    "LiftTrace",
    "PerLaneState",
    "PrivateTrace",
    "describe",
    "donated_error",
    "has_tracer",
    "is_donated",
    "is_poisoned",
    "mark_donated",
    "merge_lanes",
    "name_from_path",
    "open_traces",
    "poison",
    "private_values",
    "read_raw",
    "split_lanes",
    "state_label",
    "structure_of",
    "write_raw",
]

_get = operator.attrgetter("_value")
_set = State._value.__set__  # type: ignore[attr-defined]


def read_raw(states: Iterable[State]) -> list[Any]:
    """Return the values of ``states`` without recording the reads.

    These are the values this thread sees: inside a :class:`LiftTrace` of
    this thread, the trace's private values (tracers) of the states it holds.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import read_raw
        >>> read_raw([sg.State(1.0), sg.State(2.0)])
        [1.0, 2.0]
    """
    if ACTIVE.count and _LOCAL.view:
        return [_visible(s) for s in states]
    return list(map(_get, states))


def write_raw(states: Sequence[State], values: Sequence[Any]) -> None:
    """Set the values of ``states`` without recording or checking the writes.

    A state for which a trace of this thread holds a private value gets the
    new private value (other threads never see it); any other state gets its
    shared value set.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import write_raw
        >>> a = sg.State(1.0)
        >>> write_raw([a], [3.0]); a.value
        3.0
    """
    if ACTIVE.count and _LOCAL.view:
        for state, value in zip(states, values, strict=True):
            _write_visible(state, value)
        return
    for state, value in zip(states, values, strict=True):
        _set(state, value)


@contextlib.contextmanager
def private_values(states: Sequence[State], values: Sequence[Any]) -> Iterator[None]:
    """Let ``states`` show ``values`` to this thread only, inside the block.

    Reads of the states in this thread (``state.value``, :func:`read_raw`,
    traces opened inside) see ``values``; other threads keep seeing the real
    values, which are never changed. Leaving the block restores what this
    thread saw before, whatever happened inside. Read the states (recorded)
    before entering if enclosing traces must lift their real values.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import private_values
        >>> a = sg.State(1.0)
        >>> with private_values([a], [5.0]):
        ...     a.value
        5.0
        >>> a.value
        1.0
    """
    if len(states) != len(values):
        raise ValueError(
            f"private_values: got {len(states)} state(s) but {len(values)} value(s). "
            "Fix: pass one value per state."
        )
    view = _LOCAL.view
    saved = [view.get(id(s)) for s in states]
    ACTIVE.add(1)
    try:
        for state, value in zip(states, values, strict=True):
            view[id(state)] = (state, value)
        yield
    finally:
        try:
            for state, before in zip(reversed(states), reversed(saved), strict=True):
                if before is None:
                    view.pop(id(state), None)
                else:
                    view[id(state)] = before
        finally:
            ACTIVE.add(-1)


def open_traces() -> tuple[StateTrace, ...]:
    """Return this thread's open state traces, outermost first.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import open_traces
        >>> with sg.StateTrace() as t:
        ...     open_traces() == (t,)
        True
    """
    return tuple(_LOCAL.traces)


def state_label(state: State) -> str:
    """Return how error messages name ``state``: ``ParamState 'w'``, ``ParamState at 'layers.0.b'``.

    The explicit ``name=`` comes first; a state without one is shown by the
    first path :func:`stategraph.states` (or a ``grad_states`` dict) found it
    under; otherwise ``ParamState <unnamed at 0x...>``.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> from stategraph.extend import state_label
        >>> net = {"layers": [{"b": sg.ParamState(jnp.zeros(2))}]}
        >>> _ = sg.states(net)
        >>> state_label(net["layers"][0]["b"])
        "ParamState at 'layers.0.b'"
    """
    return state._label_typed()
