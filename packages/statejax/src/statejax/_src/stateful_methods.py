"""brainstate's ``StatefulFunction`` methods, mixed into :class:`statejax.StatefulFunction`.

brainstate 0.5.4 users drive a ``StatefulFunction`` with ``make_jaxpr`` and
the ``get_*`` queries, and evaluate it with ``jaxpr_call`` /
``jaxpr_call_auto``. These methods give the same results, built on the
project's own traces (:meth:`~statejax.StatefulFunction.trace`).

brainstate's layout, used by :meth:`BrainstateMethods.get_jaxpr`,
:meth:`~BrainstateMethods.jaxpr_call` and :func:`make_jaxpr`: ``states`` are
all the states the function touches (those read, in first-read order, then
those only written, in first-write order); the jaxpr's inputs are the
argument leaves then the leaves of every state's value; its outputs are the
output leaves then the leaves of the written states' new values (in
``states`` order; with ``return_only_write=False``, of every state's value).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax

from stategraph import State
from stategraph.extend import read_raw

from .plan import Lifted

__all__ = ["BrainstateMethods", "make_jaxpr", "state_shapes", "states_of"]

# Lifted -> {return_only_write: closed jaxpr in brainstate's layout}; dies with the trace.
_LAYOUTS: weakref.WeakKeyDictionary[Lifted, dict[bool, Any]] = weakref.WeakKeyDictionary()


def states_of(lifted: Lifted) -> list[State]:
    """All states of a trace: those read, then those only written."""
    read = lifted.read_states
    return read + [s for s in lifted.written_states if all(s is not r for r in read)]


def state_shapes(lifted: Lifted) -> dict[State, Any]:
    """Map every state to its value's ``ShapeDtypeStruct`` pytree after the call."""
    tail = iter(lifted.jaxpr.out_avals[lifted.n_out :])
    written: dict[int, Any] = {}
    for s, tree in zip(lifted.written_states, lifted.written_trees, strict=True):
        written[id(s)] = jax.tree.unflatten(
            tree, [_struct(next(tail)) for _ in range(tree.num_leaves)]
        )
    return {
        s: written[id(s)] if id(s) in written else jax.tree.map(_abstract, read_raw([s])[0])
        for s in states_of(lifted)
    }


def _layout_jaxpr(lifted: Lifted, return_only_write: bool) -> Any:
    """The trace as a closed jaxpr in brainstate's layout (cached with the trace)."""
    per = _LAYOUTS.setdefault(lifted, {})
    hit = per.get(return_only_write)
    if hit is not None:
        return hit
    states = states_of(lifted)
    n_read = len(lifted.read_states)
    written_ids = {id(s): i for i, s in enumerate(lifted.written_states)}
    arg_avals = lifted.jaxpr.in_avals[: len(lifted.jaxpr.in_avals) - len(lifted.state_avals)]
    state_values = read_raw(states)

    def pure(arg_leaves: list[Any], values: list[Any]) -> Any:
        out, new = lifted.run_flat(arg_leaves, values[:n_read])
        if return_only_write:
            tail = [new[written_ids[id(s)]] for s in states if id(s) in written_ids]
        else:
            tail = [
                new[written_ids[id(s)]] if id(s) in written_ids else v
                for s, v in zip(states, values, strict=True)
            ]
        return jax.tree.leaves(out), jax.tree.leaves(tail)

    abstract_args = [
        jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in arg_avals
    ]
    abstract_states = jax.tree.map(_abstract, state_values)

    def flat(*leaves: Any) -> list[Any]:
        n = len(abstract_args)
        values = jax.tree.unflatten(jax.tree.structure(abstract_states), list(leaves[n:]))
        out, tail = pure(list(leaves[:n]), values)
        return [*out, *tail]

    closed = jax.make_jaxpr(flat)(*abstract_args, *jax.tree.leaves(abstract_states))
    per[return_only_write] = closed
    return closed


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


class BrainstateMethods:
    """brainstate 0.5.4's ``StatefulFunction`` API, for :class:`statejax.StatefulFunction`.

    ``return_only_write`` (a constructor option, ``True`` as brainstate's
    default) selects whether :meth:`get_jaxpr`, :meth:`jaxpr_call` and
    :meth:`get_out_shapes` report only the written states (``None`` for the
    others) or every state; ``name`` is kept as an attribute. brainstate's
    ``axis_env`` and ``ir_optimizations`` are not provided.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> w = sg.ParamState(jnp.ones(2), name="w")
        >>> h = sg.ShortTermState(jnp.zeros(2), name="h")
        >>> def step(x):
        ...     h.value = h.value + w.value * x
        ...     return h.value.sum()
        >>> sf = sj.StatefulFunction(step).make_jaxpr(2.0)
        >>> [s.name for s in sf.get_states(2.0)], [s.name for s in sf.get_write_states(2.0)]
        (['h', 'w'], ['h'])
        >>> new_values, out = sf.jaxpr_call([h.value, w.value], 2.0)
        >>> new_values, out
        ((Array([2., 2.], dtype=float32), None), Array(4., dtype=float32))
        >>> float(sf.jaxpr_call_auto(2.0)), h.value
        (4.0, Array([2., 2.], dtype=float32))
    """

    return_only_write: bool = True
    name: str | None = None

    def _set_brainstate_options(
        self,
        name: str | None = None,
        return_only_write: bool = True,
        axis_env: Any = None,
        ir_optimizations: Any = None,
    ) -> None:
        """Take brainstate's constructor options ``name`` and ``return_only_write``."""
        for option, value in (("axis_env", axis_env), ("ir_optimizations", ir_optimizations)):
            if value is not None:
                raise NotImplementedError(
                    f"{getattr(self, 'api', 'StatefulFunction')}: brainstate's {option}= is "
                    f"not provided (got {value!r}); see the migration page. Fix: drop it "
                    "(XLA optimises the compiled code; collectives need their axis from an "
                    "enclosing sj.vmap or sj.shard_map)."
                )
        if name is not None:
            self.name = str(name)
        self.return_only_write = bool(return_only_write)

    # These are defined by StatefulFunction.
    trace: Callable[..., Lifted]
    _lifted: dict[Any, Lifted]
    _key: Callable[..., Any]
    api: str

    def _cached(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], compile_if_miss: bool
    ) -> Lifted:
        if compile_if_miss:
            return self.trace(*args, **kwargs)
        key = self._key(args, kwargs)
        lifted = self._lifted.get(key)
        if lifted is None:
            raise ValueError(
                f"{self.api}: no trace is cached for these arguments (signature {key!r}; "
                f"{len(self._lifted)} cached). Fix: call make_jaxpr(*args, **kwargs) first, or "
                "pass compile_if_miss=True."
            )
        return lifted

    def make_jaxpr(self, *args: Any, **kwargs: Any) -> BrainstateMethods:
        """Trace the function for these arguments (if not cached yet) and return ``self``.

        Example:
            >>> import jax.numpy as jnp, statejax as sj
            >>> sf = sj.StatefulFunction(lambda x: x * 2).make_jaxpr(1.0)
            >>> sf.get_out_shapes(1.0)[0]
            ShapeDtypeStruct(shape=(), dtype=float32, weak_type=True)
        """
        self.trace(*args, **kwargs)
        return self

    def get_jaxpr(self, *args: Any, compile_if_miss: bool = True, **kwargs: Any) -> Any:
        """Return the closed jaxpr in brainstate's layout (see the module docstring).

        Inputs: argument leaves, then every state's value leaves (in
        :meth:`get_states` order). Outputs: output leaves, then the written
        states' new values (every state's, with ``return_only_write=False``).

        Raises:
            ValueError: ``compile_if_miss=False`` and no trace is cached.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> w = sg.ParamState(jnp.ones(2), name="w")
            >>> jaxpr = sj.StatefulFunction(lambda x: w.value * x).get_jaxpr(2.0)
            >>> len(jaxpr.in_avals), len(jaxpr.out_avals)
            (2, 1)
        """
        lifted = self._cached(args, kwargs, compile_if_miss)
        return _layout_jaxpr(lifted, self.return_only_write)

    def get_out_shapes(self, *args: Any, compile_if_miss: bool = True, **kwargs: Any) -> Any:
        """Return ``(output shapes, state shapes)`` as brainstate does.

        The state part is a tuple over :meth:`get_states`: the
        ``jax.ShapeDtypeStruct`` of each written state's new value and
        ``None`` for the others (every state's, with ``return_only_write=False``).

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> h = sg.ShortTermState(jnp.zeros(2), name="h")
            >>> def f(x):
            ...     h.value = h.value + x
            ...     return x
            >>> sj.StatefulFunction(f).get_out_shapes(1.0)[1]
            (ShapeDtypeStruct(shape=(2,), dtype=float32),)
        """
        lifted = self._cached(args, kwargs, compile_if_miss)
        closed = _layout_jaxpr(lifted, self.return_only_write)
        n_out = lifted.n_out
        tail = iter(closed.out_avals[n_out:])
        written = {
            id(s): t for s, t in zip(lifted.written_states, lifted.written_trees, strict=True)
        }
        shapes = []
        for s in states_of(lifted):
            if id(s) in written:
                tree = written[id(s)]
            elif not self.return_only_write:
                tree = jax.tree.structure(read_raw([s])[0])
            else:
                shapes.append(None)
                continue
            leaves = [next(tail) for _ in range(tree.num_leaves)]
            shapes.append(jax.tree.unflatten(tree, [_struct(a) for a in leaves]))
        return lifted.out_shapes, tuple(shapes)

    def get_out_treedef(self, *args: Any, compile_if_miss: bool = True, **kwargs: Any) -> Any:
        """Return the tree structure of ``(output, state values)`` (see :meth:`get_out_shapes`).

        Example:
            >>> import statejax as sj
            >>> sj.StatefulFunction(lambda x: (x, x)).get_out_treedef(1.0)
            PyTreeDef(((*, *), ()))
        """
        return jax.tree.structure(
            self.get_out_shapes(*args, compile_if_miss=compile_if_miss, **kwargs)
        )

    def get_states(self, *args: Any, compile_if_miss: bool = True, **kwargs: Any) -> tuple:
        """Return every state the function touches: those read, then those only written.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> w = sg.ParamState(jnp.ones(2), name="w")
            >>> [s.name for s in sj.StatefulFunction(lambda: w.value).get_states()]
            ['w']
        """
        return tuple(states_of(self._cached(args, kwargs, compile_if_miss)))

    def get_read_states(self, *args: Any, compile_if_miss: bool = True, **kwargs: Any) -> tuple:
        """Return the states read and never written (as brainstate), in first-read order.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> w = sg.ParamState(jnp.ones(2), name="w")
            >>> [s.name for s in sj.StatefulFunction(lambda: w.value).get_read_states()]
            ['w']
        """
        lifted = self._cached(args, kwargs, compile_if_miss)
        written = {id(s) for s in lifted.written_states}
        return tuple(s for s in lifted.read_states if id(s) not in written)

    def get_write_states(self, *args: Any, compile_if_miss: bool = True, **kwargs: Any) -> tuple:
        """Return the states written, in :meth:`get_states` order.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> h = sg.ShortTermState(jnp.zeros(()), name="h")
            >>> def f():
            ...     h.value = h.value + 1
            >>> [s.name for s in sj.StatefulFunction(f).get_write_states()]
            ['h']
        """
        lifted = self._cached(args, kwargs, compile_if_miss)
        written = {id(s) for s in lifted.written_states}
        return tuple(s for s in states_of(lifted) if id(s) in written)

    def get_arg_cache_key(self, *args: Any, compile_if_miss: bool = False, **kwargs: Any) -> Any:
        """Return the hashable key under which the trace for these arguments is cached.

        The key holds the abstract signature (tree structures, shapes, dtypes
        and weak types) of the dynamic arguments and the values of the static
        ones. With ``compile_if_miss=True`` the function is also traced.

        Example:
            >>> import statejax as sj
            >>> sf = sj.StatefulFunction(lambda x: x)
            >>> sf.get_arg_cache_key(1.0) == sf.get_arg_cache_key(2.0)
            True
        """
        if compile_if_miss:
            self.trace(*args, **kwargs)
        return self._key(args, kwargs)

    def jaxpr_call(self, state_vals: Sequence[Any], *args: Any, **kwargs: Any) -> tuple:
        """Evaluate the function purely on given state values: ``(new state values, output)``.

        ``state_vals`` holds one value per state of :meth:`get_states`; the
        result's first part is a tuple over the same states with the written
        states' new values and ``None`` for the others (their given values,
        with ``return_only_write=False``). No state is read or changed, so this
        composes with every JAX transform.

        Raises:
            ValueError: ``state_vals`` does not hold one value per state.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> h = sg.ShortTermState(jnp.zeros(()), name="h")
            >>> def f(x):
            ...     h.value = h.value + x
            ...     return h.value * 2
            >>> sj.StatefulFunction(f).jaxpr_call([jnp.float32(5.0)], 1.0)
            ((Array(6., dtype=float32),), Array(12., dtype=float32))
            >>> float(h.value)
            0.0
        """
        lifted = self.trace(*args, **kwargs)
        states = states_of(lifted)
        state_vals = list(state_vals)
        if len(state_vals) != len(states):
            raise ValueError(
                f"{self.api}.jaxpr_call: got {len(state_vals)} state value(s), but the function "
                f"touches {len(states)} state(s) ({', '.join(map(repr, states)) or 'none'}). "
                "Fix: pass one value per state of get_states(*args), in that order."
            )
        n_read = len(lifted.read_states)
        leaves = self.arg_leaves(*args, **kwargs)  # type: ignore[attr-defined]
        out, new = lifted.run_flat(leaves, state_vals[:n_read])
        written = {id(s): v for s, v in zip(lifted.written_states, new, strict=True)}
        keep = not self.return_only_write
        tail = tuple(
            written[id(s)] if id(s) in written else (v if keep else None)
            for s, v in zip(states, state_vals, strict=True)
        )
        return tail, out

    def jaxpr_call_auto(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function with the states' current values and write the written ones back.

        The same as calling the object (one compiled call per signature; all
        or nothing on failure).

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> h = sg.ShortTermState(jnp.zeros(()), name="h")
            >>> def f(x):
            ...     h.value = h.value + x
            ...     return h.value
            >>> float(sj.StatefulFunction(f).jaxpr_call_auto(2.0)), float(h.value)
            (2.0, 2.0)
        """
        return self(*args, **kwargs)  # type: ignore[operator]


def _struct(aval: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def make_jaxpr(
    fun: Callable[..., Any],
    static_argnums: int | Sequence[int] = (),
    static_argnames: str | Sequence[str] = (),
    return_shape: bool = False,
    return_only_write: bool = False,
) -> Callable[..., Any]:
    """Return a function giving the jaxpr of a stateful ``fun`` and its states (as brainstate).

    The returned function, called with example arguments (arrays or
    ``jax.ShapeDtypeStruct``), returns ``(closed_jaxpr, states)``, or
    ``(closed_jaxpr, states, out_shapes)`` with ``return_shape=True``.
    ``states`` are every state ``fun`` touches (those read, in first-read
    order, then those only written); the jaxpr's inputs are the argument
    leaves then every state's value leaves; its outputs are the output leaves
    then every state's final value (``return_only_write=False``, brainstate's
    default) or only the written states' new values (``True``), in ``states``
    order. No state is changed.

    Args:
        fun: The stateful function.
        static_argnums: Positions of static arguments, as in ``jax.jit``.
        static_argnames: Names of static keyword arguments.
        return_shape: Also return the output's ``jax.ShapeDtypeStruct`` pytree.
        return_only_write: Output only the written states' values.

    Returns:
        A function with ``fun``'s signature.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> w = sg.ParamState(jnp.ones(3), name="w")
        >>> h = sg.ShortTermState(jnp.zeros(3), name="h")
        >>> def f(x):
        ...     h.value = w.value * x
        ...     return h.value.sum()
        >>> jaxpr, states = sj.make_jaxpr(f)(2.0)
        >>> [s.name for s in states], len(jaxpr.in_avals), len(jaxpr.out_avals)
        (['w', 'h'], 3, 3)
        >>> jaxpr, states = sj.make_jaxpr(f, return_only_write=True)(2.0)
        >>> len(jaxpr.out_avals)
        2
    """
    from .stateful import StatefulFunction

    sf = StatefulFunction(fun, static_argnums, static_argnames, api="statejax.make_jaxpr")
    only_write = bool(return_only_write)

    @functools.wraps(fun)
    def make(*args: Any, **kwargs: Any) -> Any:
        lifted = sf.trace(*args, **kwargs)
        closed = _layout_jaxpr(lifted, only_write)
        if return_shape:
            return closed, states_of(lifted), lifted.out_shapes
        return closed, states_of(lifted)

    return make
