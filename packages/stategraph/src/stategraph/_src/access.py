"""The slow paths of ``State.value``: recording in traces and checking writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stategraph.errors import StateStructureError, TraceContextError

from . import context
from .jax_compat import current_jax_trace
from .structure import describe, has_tracer, structure_of

if TYPE_CHECKING:
    from .state import State

__all__ = ["check_tracer_context", "record_read", "write_checked"]


def record_read(state: State) -> None:
    """Tell every open trace of this thread that ``state`` is being read."""
    traces = context.LOCAL.traces
    if not traces:
        return
    birth = state._birth
    for trace in tuple(traces):
        if trace._serial > birth:
            trace._on_read(state)


def _check_structure(state: State, new: Any) -> None:
    old_tree, old_leaves = structure_of(state._value)
    new_tree, new_leaves = structure_of(new)
    if old_tree != new_tree or old_leaves != new_leaves:
        raise StateStructureError(
            f"{state._label_typed()}: inside a state trace a write must keep "
            f"the value's tree structure, shape and dtype; it was {describe(state._value)} "
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
        f"{state._label_typed()} ({describe(state._value)}) was written a JAX "
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
    traces = context.LOCAL.traces
    tracer = has_tracer(new)
    if tracer:
        _check_tracer_context(state, new, traces)
    if traces:
        birth = state._birth
        recording = [t for t in traces if t._serial > birth]
        if recording:
            if check_structure:
                _check_structure(state, new)
            for trace in recording:
                trace._on_write(state)
    state._value = new
