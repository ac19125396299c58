"""One traced signature of a stateful function: its jaxpr and its states."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax

from stategraph import State
from stategraph.extend import LiftTrace

from .signature import aval_key

__all__ = ["Lifted", "StatePlan", "trace_lifted"]


class StatePlan:
    """The states a traced function reads and writes, held by weak reference.

    Signatures whose traces touch the same states share one plan, so the hot
    path of a call depends only on the plan: JAX's own dispatch picks the
    compiled code for the argument shapes.
    """

    __slots__ = (
        "__weakref__",
        "read_refs",
        "write_refs",
        "rw_mask",
        "n_read",
        "n_write",
        "jitted",
        "can_miss",
    )

    def __init__(self, read: Sequence[State], written: Sequence[State]) -> None:
        self.read_refs = tuple(weakref.ref(s) for s in read)
        self.write_refs = tuple(weakref.ref(s) for s in written)
        written_ids = {id(s) for s in written}
        self.rw_mask = tuple(id(s) in written_ids for s in read)
        self.n_read = len(read)
        self.n_write = len(written)
        self.jitted: Any = None
        self.can_miss = False

    def split(self, values: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """Split per-read-state values into (read-only ones, read-and-written ones)."""
        ro = [v for v, w in zip(values, self.rw_mask, strict=True) if not w]
        rw = [v for v, w in zip(values, self.rw_mask, strict=True) if w]
        return ro, rw

    def merge(self, ro: Sequence[Any], rw: Sequence[Any]) -> list[Any]:
        """Inverse of :meth:`split`: the values in first-read order."""
        ro_it, rw_it = iter(ro), iter(rw)
        return [next(rw_it) if w else next(ro_it) for w in self.rw_mask]

    def same_states(self, read: Sequence[State], written: Sequence[State]) -> bool:
        """Return whether this plan is for exactly these states, in this order."""
        if len(read) != self.n_read or len(written) != self.n_write:
            return False
        return all(r() is s for r, s in zip(self.read_refs, read, strict=True)) and all(
            r() is s for r, s in zip(self.write_refs, written, strict=True)
        )

    def read_states(self) -> list[State] | None:
        """Return the read states, or ``None`` if one was garbage-collected."""
        out = [r() for r in self.read_refs]
        return None if None in out else out  # type: ignore[return-value]

    def written_states(self) -> list[State] | None:
        """Return the written states, or ``None`` if one was garbage-collected."""
        out = [r() for r in self.write_refs]
        return None if None in out else out  # type: ignore[return-value]

    def alive(self) -> bool:
        """Return whether every state of the plan still exists."""
        return all(r() is not None for r in self.read_refs + self.write_refs)


class Lifted:
    """A stateful function traced for one signature: a pure function and its states.

    Attributes:
        jaxpr: The closed jaxpr; inputs are the dynamic argument leaves then the
            leaves of the read states' values; outputs are the output leaves
            then the leaves of the written states' final values.
        plan: The :class:`StatePlan` (states held weakly).
        out_tree: Tree structure of the function's output.
        out_shapes: ``jax.ShapeDtypeStruct`` pytree of the output.
    """

    def __init__(
        self,
        jaxpr: jax.extend.core.ClosedJaxpr,
        plan: StatePlan,
        arg_tree: Any,
        state_trees: Sequence[Any],
        written_trees: Sequence[Any],
        out_tree: Any,
        state_avals: tuple[Any, ...],
    ) -> None:
        self.jaxpr = jaxpr
        self.plan = plan
        self.arg_tree = arg_tree
        self.state_trees = tuple(state_trees)
        self.written_trees = tuple(written_trees)
        self.out_tree = out_tree
        self.state_avals = state_avals
        n_out = out_tree.num_leaves
        self.n_out = n_out
        out_avals = jaxpr.out_avals[:n_out]
        self.out_shapes = jax.tree.unflatten(
            out_tree,
            [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in out_avals],
        )

    def fits(self, state_values: Sequence[Any]) -> bool:
        """Whether values for the read states have this trace's structures and types."""
        if tuple(jax.tree.structure(v) for v in state_values) != self.state_trees:
            return False
        leaves = jax.tree.leaves(list(state_values))
        return tuple(aval_key(jax.typeof(x)) for x in leaves) == self.state_avals

    @property
    def read_states(self) -> list[State]:
        """The states read (inputs of the jaxpr), in first-read order."""
        return self.plan.read_states() or []

    @property
    def written_states(self) -> list[State]:
        """The states written (outputs of the jaxpr), in first-write order."""
        return self.plan.written_states() or []

    def run_flat(
        self,
        arg_leaves: Sequence[Any],
        state_values: Sequence[Any],
        stage: Callable[[Any, list[Any]], list[Any]] | None = None,
    ) -> tuple[Any, tuple]:
        """Evaluate the jaxpr on argument leaves and state values (pure).

        ``stage(closed_jaxpr, leaves)``, if given, replaces the evaluation
        (the compiled call stages the jaxpr as one equation).
        """
        state_leaves: list[Any] = []
        for tree, value in zip(self.state_trees, state_values, strict=True):
            leaves = tree.flatten_up_to(value)
            state_leaves.extend(leaves)
        if stage is not None:
            outs = stage(self.jaxpr, [*arg_leaves, *state_leaves])
        else:
            outs = jax.core.eval_jaxpr(
                self.jaxpr.jaxpr, self.jaxpr.consts, *arg_leaves, *state_leaves
            )
        out = jax.tree.unflatten(self.out_tree, outs[: self.n_out])
        written = []
        pos = self.n_out
        for tree in self.written_trees:
            n = tree.num_leaves
            written.append(jax.tree.unflatten(tree, outs[pos : pos + n]))
            pos += n
        return out, tuple(written)


def trace_lifted(
    api: str,
    fun: Callable[..., Any],
    dyn_args: tuple[Any, ...],
    dyn_kwargs: dict[str, Any],
    rebuild: Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]],
    reuse: Sequence[StatePlan] = (),
) -> Lifted:
    """Trace ``fun`` once, lifting the states it reads into jaxpr inputs.

    Args:
        api: Name used in error messages.
        fun: The user's function.
        dyn_args: The dynamic positional arguments (arrays or abstract values);
            static ones are replaced by ``None``.
        dyn_kwargs: The dynamic keyword arguments.
        rebuild: Maps dynamic (args, kwargs) back to the full call arguments
            (puts the static ones back).
        reuse: Plans to reuse: the first one for exactly the states the trace touches.
    """
    leaves, arg_tree = jax.tree.flatten((dyn_args, dyn_kwargs))
    box: dict[str, Any] = {}

    def traced(*flat: Any) -> list[Any]:
        d_args, d_kwargs = jax.tree.unflatten(arg_tree, flat)
        args, kwargs = rebuild(d_args, d_kwargs)
        trace = LiftTrace()
        with trace:
            out = fun(*args, **kwargs)
        out_leaves, out_tree = jax.tree.flatten(out)
        for path, leaf in jax.tree_util.tree_leaves_with_path(out):
            if isinstance(leaf, State):
                raise TypeError(
                    f"{api}: a function must not return States, but its output"
                    f"{jax.tree_util.keystr(path)} is {leaf!r}. Return `state.value` "
                    "instead, or just write the state: written states are carried out."
                )
        written_leaves: list[Any] = []
        written_trees = []
        for value in trace.output_values:
            wl, wt = jax.tree.flatten(value)
            written_leaves.extend(wl)
            written_trees.append(wt)
        box.update(
            trace=trace,
            out_tree=out_tree,
            written_trees=written_trees,
            state_trees=[jax.tree.structure(v) for v in trace.input_values],
        )
        return [*out_leaves, *written_leaves]

    closed = _name_state_inputs(jax.make_jaxpr(traced)(*leaves))
    trace: LiftTrace = box["trace"]
    read = trace.input_states
    written = list(trace.written_states)
    plan = next((p for p in reuse if p.same_states(read, written)), None)
    if plan is None:
        plan = StatePlan(read, written)
    state_avals = tuple(closed.in_avals[len(leaves) :])
    return Lifted(
        closed,
        plan,
        arg_tree,
        box["state_trees"],
        box["written_trees"],
        box["out_tree"],
        tuple(aval_key(a) for a in state_avals),
    )


def _name_state_inputs(closed: Any) -> Any:
    """Give the lifted state inputs names in the jaxpr's debug info (one per input).

    The trace appended them after the arguments; JAX's own passes (dead-code
    elimination of a staged call) expect one name per input.
    """
    jaxpr = closed.jaxpr
    dbg = jaxpr.debug_info
    names = getattr(dbg, "arg_names", None)
    if names is None or len(names) == len(jaxpr.invars):
        return closed
    names = tuple(names) + tuple(
        f"state_leaf[{i}]" for i in range(len(jaxpr.invars) - len(names))
    )
    return type(closed)(jaxpr.replace(debug_info=dbg._replace(arg_names=names)), closed.consts)
