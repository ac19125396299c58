"""Building blocks of the stateful transforms.

Every stateful transform follows one recipe:

1. Lift each user function with :func:`lifted_for` (a cached
   :class:`StatefulFunction`) and trace it for the (abstract) arguments the
   JAX transform will give it: ``sf.trace(*args)`` returns a
   :class:`~statejax.Lifted` with ``read_states``, ``written_states`` and a
   pure ``run_flat``.
2. Join the states of all lifted functions with :class:`StateIO`: the input
   states (read by any, or written by any, so that a function that does not
   write a state can pass its value through) and the output states (written
   by any). ``io.pure(sf, lifted)`` is a pure function
   ``(in_values, *args, **kwargs) -> (out, out_values)``.
3. Inside a *driver* function, read ``io.values()`` (recorded reads), apply the
   JAX transform (``jax.lax.cond``, ``jax.vmap``, ...) to the pure functions,
   and ``io.write(new_values)`` (recorded writes).
4. Wrap the driver in a :class:`StatefulFunction` (cached with
   :func:`cached_driver` for function-style APIs like ``cond``), so that eager
   calls run one compiled function and the Python bodies run once per
   signature, and nesting in other transforms works through the same lifting.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import jax

from stategraph import State

from .plan import Lifted
from .stateful import StatefulFunction
from .weakcache import WeakLRU

__all__ = ["StateIO", "cached_driver", "cast_like", "lifted_for"]

# Lifted user functions, one per (function, api, static argnums); the
# functions are held weakly (see weakcache), so a dropped model is collected.
_LIFTED = WeakLRU(2048)
# Drivers of the function-style transforms, keyed by their user functions.
_DRIVERS = WeakLRU(512)


def lifted_for(
    fun: Callable[..., Any], api: str, static_argnums: Sequence[int] = ()
) -> StatefulFunction:
    """Return the cached :class:`StatefulFunction` lifting ``fun`` (one per function).

    The cache holds ``fun`` weakly (a bound method by its instance and its
    function) and is bounded; the lifted function calls ``fun`` through a weak
    proxy, so neither keeps the user's function or model alive.
    """
    if isinstance(fun, StatefulFunction):
        return fun
    inner = getattr(fun, "stateful", None)
    if isinstance(inner, StatefulFunction):
        return inner
    statics = tuple(static_argnums)
    return _LIFTED.get(
        (api, statics),
        [fun],
        lambda proxies: StatefulFunction(proxies[0], statics, api=api),
    )


def _split_key(key: Any, funs: list[Any]) -> Any:
    """Replace the callables in ``key`` (recursively through tuples) by their positions."""
    if isinstance(key, tuple):
        return tuple(_split_key(k, funs) for k in key)
    if isinstance(key, list):
        return ("<list>", *(_split_key(k, funs) for k in key))
    if callable(key) and not isinstance(key, type):
        funs.append(key)
        return ("<fun>", len(funs) - 1)
    return key


def cached_driver(key: Hashable, build: Callable[[], StatefulFunction]) -> StatefulFunction:
    """Return the driver cached under ``key`` (built once; bounded, weak LRU cache).

    Function-style transforms (``cond(pred, f, g, x)``) are called anew each
    time; keying their driver by the user functions' identities keeps the
    Python bodies from running on every eager call, as JAX does for
    ``jax.lax.cond``. The callables in ``key`` (also inside tuples) are held
    weakly: the entry goes away with them. ``build`` must not keep them
    strongly (lift them with :func:`lifted_for`, or wrap them with
    :func:`~statejax._src.weakcache.weak_callable`). An unhashable key or a
    callable that cannot be held weakly builds a fresh driver, uncached.
    """
    funs: list[Any] = []
    parts = _split_key(key, funs)
    return _DRIVERS.get(parts, funs, lambda _proxies: build())


def _cast_leaf(new: Any, old: Any) -> Any:
    try:
        a_new, a_old = jax.typeof(new), jax.typeof(old)
    except TypeError:
        return new
    dtype_new, dtype_old = getattr(a_new, "dtype", None), getattr(a_old, "dtype", None)
    if dtype_new is None or dtype_old is None:
        return new
    weak_new, weak_old = getattr(a_new, "weak_type", False), getattr(a_old, "weak_type", False)
    if dtype_new != dtype_old or (weak_new and not weak_old):
        return jax.lax.convert_element_type(new, dtype_old)
    return new


def cast_like(new: Any, old: Any) -> Any:
    """Cast the leaves of ``new`` to the dtypes of ``old`` (same tree structure).

    JAX's control flow needs a carried value's type to be identical on the way
    in and out. A written value whose dtype differs from the state's value is
    cast to the old dtype, and a weakly typed write of a strongly typed state
    is made strong, so a state keeps its type through loops and branches. A
    weakly typed state written a strong value stays strong (JAX promotes the
    loop's input). Trees that do not match are returned unchanged.
    """
    try:
        return jax.tree.map(_cast_leaf, new, old)
    except (ValueError, TypeError):
        return new


class StateIO:
    """The joint state inputs and outputs of several lifted functions.

    Attributes:
        in_states: States read or written by any function (first-seen order).
        out_states: States written by any function (first-seen order).
    """

    def __init__(self, lifted: Sequence[Lifted], extra_in: Sequence[State] = ()) -> None:
        ins: dict[int, State] = {}
        outs: dict[int, State] = {}
        for item in lifted:
            for s in item.read_states:
                ins.setdefault(id(s), s)
        for s in extra_in:
            ins.setdefault(id(s), s)
        for item in lifted:
            for s in item.written_states:
                ins.setdefault(id(s), s)
                outs.setdefault(id(s), s)
        self.in_states: list[State] = list(ins.values())
        self.out_states: list[State] = list(outs.values())
        self._in_index = {id(s): i for i, s in enumerate(self.in_states)}

    def values(self) -> list[Any]:
        """Read the input states' values (recorded, so enclosing traces lift them)."""
        return [s.value for s in self.in_states]

    def out_values(self, in_values: Sequence[Any]) -> list[Any]:
        """Select the output states' entries from a list of input values."""
        return [in_values[self._in_index[id(s)]] for s in self.out_states]

    def merge(self, in_values: Sequence[Any], out_values: Sequence[Any]) -> list[Any]:
        """Return ``in_values`` with the output states' entries replaced by ``out_values``.

        The inverse of :meth:`out_values`: loops carry the output states'
        values and close over the rest (the read-only, loop-invariant states).
        """
        merged = list(in_values)
        for state, value in zip(self.out_states, out_values, strict=True):
            merged[self._in_index[id(state)]] = value
        return merged

    def write(self, values: Sequence[Any]) -> None:
        """Write the output states (recorded writes)."""
        for state, value in zip(self.out_states, values, strict=True):
            state.value = value

    def pure(self, sf: StatefulFunction, lifted: Lifted) -> Callable[..., tuple[Any, list[Any]]]:
        """Return ``(in_values, *args, **kwargs) -> (out, out_values)`` for one function.

        Output states that ``lifted`` does not write pass their input value
        through; written values are cast to their input value's type with
        :func:`cast_like`, so the branches of a conditional and the carry of a
        loop agree on every state's type.
        """
        read_pos = [self._in_index[id(s)] for s in lifted.read_states]
        written_ids = [id(s) for s in lifted.written_states]
        out_ids = [id(s) for s in self.out_states]
        out_pos = [self._in_index[i] for i in out_ids]

        def run(in_values: Sequence[Any], *args: Any, **kwargs: Any) -> tuple[Any, list[Any]]:
            leaves = sf.arg_leaves(*args, **kwargs)
            out, written = lifted.run_flat(leaves, [in_values[i] for i in read_pos])
            by_id = dict(zip(written_ids, written, strict=True))
            new = [
                cast_like(by_id[i], in_values[p]) if i in by_id else in_values[p]
                for i, p in zip(out_ids, out_pos, strict=True)
            ]
            return out, new

        return run
