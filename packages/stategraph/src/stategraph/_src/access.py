"""The slow paths of ``State.value``: recording in traces and checking writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax

from stategraph.errors import StateStructureError, TraceContextError

from . import context
from .jax_compat import current_jax_trace
from .structure import describe, has_tracer, structure_of

if TYPE_CHECKING:
    from .state import State

__all__ = [
    "check_tracer_context",
    "read_slow",
    "record_read",
    "visible",
    "write_checked",
    "write_visible",
]

_LOCAL = context.LOCAL
_Array = jax.Array  # JAX arrays and tracers
_typeof = jax.typeof


def visible(state: State) -> Any:
    """Return the value of ``state`` as this thread sees it, without recording.

    That is the private value a trace of this thread holds for it (a tracer,
    a per-lane placeholder) if there is one, else the state's shared value.
    """
    view = _LOCAL.view
    if view:
        entry = view.get(id(state))
        if entry is not None and entry[0] is state:
            return entry[1]
    return state._value


def record_read(state: State) -> None:
    """Tell every open trace of this thread that ``state`` is being read."""
    traces = _LOCAL.traces
    if not traces:
        return
    birth = state._birth
    for trace in tuple(traces):
        if trace._serial > birth:
            trace._on_read(state)


def read_slow(state: State) -> Any:
    """The read path while any trace is open (in any thread): record, then look up."""
    local = _LOCAL
    traces = local.traces
    if traces:
        birth = state._birth
        for trace in tuple(traces):
            if trace._serial > birth:
                trace._on_read(state)
    view = local.view
    if view:
        entry = view.get(id(state))
        if entry is not None and entry[0] is state:
            return entry[1]
    return state._value


def write_visible(state: State, new: Any, private: bool = False) -> None:
    """Set the value this thread sees: privately if a trace of this thread holds one.

    With ``private=True`` the value is kept private to this thread whether or
    not it already held one (the caller restores the previous entry).
    """
    view = _LOCAL.view
    key = id(state)
    if private or key in view:
        view[key] = (state, new)
    else:
        state._value = new


def _check_structure(state: State, new: Any) -> None:
    old = visible(state)
    if isinstance(old, _Array) and isinstance(new, _Array):  # the common case, no pytree walk
        a, b = _typeof(old), _typeof(new)
        if a.shape == b.shape and a.dtype == b.dtype:
            return
    old_tree, old_leaves = structure_of(old)
    new_tree, new_leaves = structure_of(new)
    if old_tree != new_tree or old_leaves != new_leaves:
        raise StateStructureError(
            f"{state._label_typed()}: inside a state trace a write must keep "
            f"the value's tree structure, shape and dtype; it was {describe(old)} "
            f"(tree {old_tree}) and the write gave {describe(new)} (tree {new_tree}). "
            "Fix: cast or reshape the new value to the old structure, or change the "
            "structure outside any transform."
        )


def _check_tracer_context(state: State, new: Any, traces: list[Any]) -> None:
    here = current_jax_trace()
    for trace in traces:
        if trace._jax_trace is not None and trace._jax_trace is here:
            return
    raise TraceContextError(
        f"{state._label_typed()} ({describe(visible(state))}) was written a JAX "
        f"tracer ({describe(new)}) from inside a JAX transform that does not manage states "
        "(plain jax.jit, jax.vmap, jax.grad, jax.lax.scan, ...). After that transform returns "
        "the state would hold a leaked tracer. Fix: use the stateful counterpart "
        "(statejax.jit, statejax.vmap, statejax.scan, statediff.grad, ...), or return the new "
        "value from the function and write it outside the transform."
    )


check_tracer_context = _check_tracer_context


def write_checked(state: State, new: Any, check_structure: bool = True) -> None:
    """Write ``new`` into ``state`` with every rule of the slow path applied.

    ``check_structure=False`` skips the structure rule (for a poisoned state,
    which has no old value whose structure a write must keep).
    """
    traces = _LOCAL.traces
    tracer = has_tracer(new)
    if tracer:
        _check_tracer_context(state, new, traces)
    private = False
    if traces:
        birth = state._birth
        recording = [t for t in traces if t._serial > birth]
        if recording:
            if check_structure:
                _check_structure(state, new)
            for trace in recording:
                trace._on_write(state)
                private = private or trace._private_values
    # A trace that stages a jaxpr keeps the values written inside it private
    # to this thread (and puts back what was visible before when it closes):
    # the shared value, which other threads read, is never touched.
    write_visible(state, new, private)
