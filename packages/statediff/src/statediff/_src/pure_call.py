"""A stateful call as a pure function of the states and arguments it differentiates.

``jvp``, ``vjp`` and ``linearize`` hand JAX's own transform a pure function of
``(grad state values, *differentiated arguments)`` and need the rest of the
call (other states, other arguments, written states) held fixed around it.
:class:`DiffTransform` holds what the user configured; :class:`PureCall` is
one call of it, built inside a driver (a :class:`statejax.StatefulFunction`
whose body runs once per signature).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

from stategraph import State
from statejax import StatefulFunction

from .jax_compat import DISABLE_JIT
from .options import Argnums, GradStates
from .output_checks import shown_tree
from .quantity import find_quantity

__all__ = ["DiffTransform", "PureCall", "make_call"]


class DiffTransform:
    """Configuration shared by the stateful ``jvp``, ``vjp`` and ``linearize``.

    Inputs are the states in ``grad_states`` and the positional arguments in
    ``argnums``. With neither given, every positional argument is an input
    (as in ``jax.jvp`` / ``jax.vjp`` / ``jax.linearize``); with only
    ``grad_states`` given, no argument is.

    Args:
        target: The stateful function.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positions of the arguments to differentiate.
        has_aux: ``target`` returns ``(value, aux)``.
        check_states: Raise if a state in ``grad_states`` is never touched.
        name: API name used in error messages.
        weak_states: Hold the states of ``grad_states`` by weak reference
            (for transforms kept in a cache).
        positional_calls: Every call passes its arguments by position (as the
            run-now functions do): the compiled call then takes ``target``'s
            own signature when it is a plain positional one, which saves
            packing ``*args, **kwargs`` per call. Left False, a keyword
            argument stays a keyword argument (a constant).
    """

    def __init__(
        self,
        target: Callable[..., Any],
        grad_states: Any = None,
        argnums: Any = None,
        has_aux: bool = False,
        check_states: bool = True,
        name: str = "statediff.DiffTransform",
        *,
        weak_states: bool = False,
        positional_calls: bool = False,
    ) -> None:
        if not callable(target):
            raise TypeError(f"{name}: expected a callable, got {type(target).__name__} {target!r}.")
        self.target = target
        self.name = name
        self.grad_states = GradStates(name, grad_states, weak=weak_states)
        self.argnums = Argnums(name, argnums, default_zero=False)
        self.has_aux = bool(has_aux)
        self.check_states = bool(check_states)
        self._lifted = StatefulFunction(target, api=name)
        shown = target if positional_calls else None
        self._driver = StatefulFunction(
            self._drive, api=name, call_signature=shown, trace_inline=True
        )
        functools.update_wrapper(self, target, updated=())

    def _drive(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Under jax.disable_jit() the compiled call's slow path runs _drive, the Python body.
        return self._driver._call(*args, **kwargs)

    def clear_cache(self) -> None:
        """Forget every traced signature and compiled function, through every layer of nesting.

        Call it after rebinding a model's attribute to another State that was
        already alive; the next call traces the function again.
        """
        self._driver.clear_cache()
        self._lifted.clear_cache()

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self) -> str:
        return f"{self.name}({getattr(self.target, '__qualname__', self.target)!r})"

    def positions(self, n_args: int) -> tuple[int, ...]:
        """Return the positions of the differentiated arguments for ``n_args`` arguments."""
        if self.argnums.given:
            self.argnums.check_range(self.name, n_args)
            return self.argnums.positions
        if self.grad_states.given:
            return ()
        return tuple(range(n_args))

    def assemble(self, parts: tuple[Any, ...] | list[Any]) -> Any:
        """Shape per-input results ``(state list, *per-argument)`` into the public contract.

        ``(var_grads, arg_grads)`` when both ``grad_states`` and ``argnums``
        are given; ``var_grads`` (the ``grad_states`` container) or
        ``arg_grads`` (bare for an int ``argnums``, else a tuple) alone
        otherwise; a tuple over all positional arguments by default.
        """
        var = self.grad_states.unflatten(list(parts[0])) if self.grad_states.given else None
        arg: Any = parts[1] if self.argnums.is_int else tuple(parts[1:])
        if self.grad_states.given and self.argnums.given:
            return var, arg
        if self.grad_states.given:
            return var
        return arg

    def describe_state(self, i: int) -> str:
        """Name the ``i``-th state of ``grad_states`` for error messages."""
        return f"state {self.grad_states.states[i]!r}"

    def describe_arg(self, position: int) -> str:
        """Name a differentiated positional argument for error messages."""
        if self.argnums.given:
            return f"positional argument {position} (argnums={self.argnums.text})"
        return f"positional argument {position}"


class PureCall:
    """One call of a :class:`DiffTransform`'s function, split for differentiation.

    Create it inside a driver: it traces the function for the arguments,
    reads the states (recorded reads, so that enclosing traces lift them),
    and exposes the call as a pure function.

    Attributes:
        primals: ``(grad state values as a list, *differentiated arguments)``,
            the inputs of :meth:`__call__`.
        positions: Positions of the differentiated arguments.
        grad_values: The values of the states in ``grad_states``.
        written: The states the function writes, in the order of ``new``.
    """

    def __init__(self, owner: DiffTransform, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        name = owner.name
        self.owner = owner
        self.positions = owner.positions(len(args))
        lifted = owner._lifted.trace(*args, **kwargs)
        read = lifted.read_states
        self.written = lifted.written_states
        if owner.has_aux and not _is_pair(lifted.out_tree):
            raise TypeError(
                f"{name}: has_aux=True requires the function to return a pair (value, aux), "
                f"but it returned {shown_tree(lifted.out_shapes)}. Fix: return "
                "`value, aux`, or pass has_aux=False."
            )
        if owner.check_states:
            only_written = [s for s in self.written if all(s is not r for r in read)]
            _check_touched(owner, [*read, *only_written])
        gs = owner.grad_states
        self._grad_index = {id(s): i for i, s in enumerate(gs.states)}
        self.grad_values = [s.value for s in gs.states]  # recorded reads
        self._others = {id(s): s.value for s in read if id(s) not in self._grad_index}
        self._read = read
        self._lifted = lifted
        self._args = args
        self._kwargs = kwargs
        for i, value in enumerate(self.grad_values):
            _no_quantity(name, owner.describe_state(i), value)
        for p in self.positions:
            _no_quantity(name, owner.describe_arg(p), args[p])
        self.primals = (list(self.grad_values), *(args[p] for p in self.positions))

    def __call__(self, g_list: list[Any], *diff: Any) -> tuple[Any, tuple[Any, Any]]:
        """Run the call purely: ``(state values, *diff args) -> (value, (aux, new states))``."""
        owner = self.owner
        call_args = list(self._args)
        for p, v in zip(self.positions, diff, strict=True):
            call_args[p] = v
        index = self._grad_index
        state_values = [
            g_list[index[id(s)]] if id(s) in index else self._others[id(s)] for s in self._read
        ]
        sf = owner._lifted
        leaves = sf.arg_leaves(*call_args, **self._kwargs)
        out, new = self._lifted.run_flat(leaves, state_values)
        y, aux = (out[0], out[1]) if owner.has_aux else (out, None)
        where = find_quantity(y)
        if where is not None:
            raise TypeError(
                f"{owner.name}: the function's value{where} is a physical Quantity; without "
                "units support its unit would be silently dropped or mangled. Fix: pass "
                "unit_aware=True (needs `pip install statediff-units`)."
            )
        return y, (aux, new)

    def write(self, new: tuple[Any, ...]) -> None:
        """Write the written states back with their primal values (recorded writes)."""
        for state, value in zip(self.written, new, strict=True):
            state.value = value


def make_call(owner: DiffTransform, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A :class:`PureCall`, or its eager twin under ``jax.disable_jit()``."""
    if DISABLE_JIT.value:
        from .eager import EagerCall

        return EagerCall(owner, args, kwargs)
    return PureCall(owner, args, kwargs)


def _no_quantity(api: str, what: str, value: Any) -> None:
    where = find_quantity(value)
    if where is not None:
        raise TypeError(
            f"{api}: {what}{where} is a physical Quantity; without units support its unit "
            "would be silently dropped or mangled. Fix: pass unit_aware=True (needs "
            "`pip install statediff-units`)."
        )


def _check_touched(owner: DiffTransform, touched: list[State]) -> None:
    ids = {id(s) for s in touched}
    missing = [s for s in owner.grad_states.states if id(s) not in ids]
    if missing:
        names = ", ".join(repr(s) for s in missing)
        seen = ", ".join(repr(s) for s in touched) or "no state at all"
        raise ValueError(
            f"{owner.name}: grad_states holds {names}, which the function never reads or "
            f"writes (it touched: {seen}). Its derivative would be zero. Fix: pass the "
            "states the function uses, or check_states=False to get zeros."
        )


def _is_pair(treedef: Any) -> bool:
    if treedef.num_nodes == 1:
        return False
    node = jax.tree.unflatten(treedef, [0] * treedef.num_leaves)
    return isinstance(node, (tuple, list)) and len(treedef.children()) == 2
