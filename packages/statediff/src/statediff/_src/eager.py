"""Running the transforms under ``jax.disable_jit()``: the Python body, op by op.

As ``jax.grad`` under ``jax.disable_jit()``, the user's function then runs
once per call, not traced into a jaxpr: the differentiated values are JAX's
own tracers (held by their states while the function runs), every other
state and argument stays concrete, so ``float(x)`` of a plain value and
``print`` work. Every state is put back as it was before the function ran;
the written states are then written once with their primal values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from stategraph import State, StateTrace
from stategraph.extend import read_raw, write_raw

from .jax_compat import current_trace

__all__ = ["ManagedTrace", "run_eagerly"]


class ManagedTrace(StateTrace):
    """A state trace that lets the current JAX trace's tracers be written into states.

    It remembers every written state's value from before its first write, so
    that :func:`run_eagerly` can put it back.
    """

    def __init__(self) -> None:
        super().__init__()
        self._jax_trace = current_trace()
        self.originals: dict[int, tuple[State, Any]] = {}

    def _on_write(self, state: State) -> None:
        if id(state) not in self.originals:
            self.originals[id(state)] = (state, read_raw([state])[0])
        super()._on_write(state)


def run_eagerly(
    fun: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    states: Sequence[State],
    values: Sequence[Any],
) -> tuple[Any, ManagedTrace, list[State], list[Any]]:
    """Run ``fun(*args, **kwargs)`` with ``states`` holding ``values`` for the duration.

    Returns:
        ``(output, trace, written states, their final values)``; every state
        holds its value from before the call again.
    """
    before = read_raw(states)
    with ManagedTrace() as trace:
        write_raw(states, values)
        try:
            out = fun(*args, **kwargs)
            written = list(trace.written_states)
            new = read_raw(written)
        finally:
            for state, value in reversed(list(trace.originals.values())):
                write_raw([state], [value])
            write_raw(states, before)
    for path, leaf in jax.tree_util.tree_leaves_with_path(out):
        if isinstance(leaf, State):
            raise TypeError(
                f"a function must not return States, but its output{jax.tree_util.keystr(path)} "
                f"is {leaf!r}. Return `state.value` instead."
            )
    return out, trace, written, new


def _is_pair(out: Any) -> bool:
    return isinstance(out, (tuple, list)) and len(out) == 2


def _pair_error(api: str, out: Any) -> TypeError:
    return TypeError(
        f"{api}: has_aux=True requires the function to return a pair (value, aux), but it "
        f"returned a pytree of structure {jax.tree.structure(out)}. Fix: return `value, aux`, "
        "or pass has_aux=False."
    )


def gradient_eager(gt: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a :class:`~statediff.GradientTransform` call under ``jax.disable_jit()``."""
    from .debug_nan import bad_flag, raise_bad

    name = gt.name
    gt.argnums.check_range(name, len(args))
    gs = gt.grad_states
    grad_states = gs.states
    grad_values = [s.value for s in grad_states]
    gt._check_inputs(grad_values, args)
    given, has_aux = gs.given, gt.has_aux
    box: dict[str, Any] = {}

    def pure(*inputs: Any) -> tuple[Any, tuple[Any, Any, Any]]:
        g_list = gs.flatten(inputs[0]) if given else []
        call_args = inputs[1:] if given else inputs
        out, trace, written, new = run_eagerly(gt.target, call_args, kwargs, grad_states, g_list)
        box.update(trace=trace, written=written)
        if has_aux and not _is_pair(out):
            raise _pair_error(name, out)
        y, aux = (out[0], out[1]) if has_aux else (out, None)
        return y, (y, aux, new)

    inputs = (gs.unflatten(grad_values), *args) if given else args
    fn = gt.transform(pure, argnums=gt._internal_argnums(), has_aux=True, **gt.transform_params)
    d, (y, aux, new) = fn(*inputs)
    gt._check_touched(list(box["trace"].states))
    if gt.debug_nan and bool(bad_flag(d)):
        raise_bad(name, d)
    for state, value in zip(box["written"], new, strict=True):
        state.value = value
    return gt._assemble(d, y, aux)


class EagerCall:
    """The eager twin of :class:`~statediff._src.pure_call.PureCall` (``jax.disable_jit()``).

    Nothing is traced up front: the states the function reads and writes are
    found when JAX's transform calls it.
    """

    def __init__(self, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        from .pure_call import _no_quantity

        self.owner = owner
        self.positions = owner.positions(len(args))
        gs = owner.grad_states
        self._states = gs.states
        self.grad_values = [s.value for s in self._states]
        for i, value in enumerate(self.grad_values):
            _no_quantity(owner.name, owner.describe_state(i), value)
        for p in self.positions:
            _no_quantity(owner.name, owner.describe_arg(p), args[p])
        self._args = args
        self._kwargs = kwargs
        self.written: list[State] = []
        self.primals = (list(self.grad_values), *(args[p] for p in self.positions))

    def __call__(self, g_list: list[Any], *diff: Any) -> tuple[Any, tuple[Any, Any]]:
        """Run the call: ``(state values, *diff args) -> (value, (aux, new states))``."""
        from .pure_call import _check_touched

        owner = self.owner
        call_args = list(self._args)
        for p, v in zip(self.positions, diff, strict=True):
            call_args[p] = v
        out, trace, written, new = run_eagerly(
            owner.target, call_args, self._kwargs, self._states, g_list
        )
        self.written = written
        if owner.check_states:
            _check_touched(owner, list(trace.states))
        if owner.has_aux and not _is_pair(out):
            raise _pair_error(owner.name, out)
        y, aux = (out[0], out[1]) if owner.has_aux else (out, None)
        return y, (aux, new)

    def write(self, new: Sequence[Any]) -> None:
        """Write the written states back with their primal values."""
        for state, value in zip(self.written, new, strict=True):
            state.value = value
