"""``statejax.vmap``: the stateful counterpart of ``jax.vmap``."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax

from stategraph import State
from stategraph.extend import describe, merge_lanes, private_values, read_raw, split_lanes
from stategraph.extend import state_label as _label

from .compose import StateIO, lifted_for
from .input_checks import check_in_axes_prefix
from .jax_compat import BatchTrace, BatchTracer, current_trace, extend_axis_env_nd
from .jit import JittedFunction, as_function
from .stateful import StatefulFunction

__all__ = [
    "StateAxes",
    "abstract_value",
    "normalize_state_axes",
    "state_label",
    "swapped_values",
    "vmap",
]

_API = "statejax.vmap"

# One state's axis: (state, axis). ``StateAxes`` maps ``id(state)`` to it.
StateAxes = dict[int, tuple[State, int]]


def state_label(state: State) -> str:
    """Return ``TypeName 'name'`` (or its path, or ``unnamed TypeName``) for error messages."""
    return _label(state)


def _add(api: str, arg: str, out: StateAxes, item: Any, axis: Any) -> None:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"{api}: {arg} axes must be ints, got {axis!r} ({type(axis).__name__}).")
    if isinstance(item, State):
        items: list[Any] = [item]
    elif isinstance(item, Mapping):
        items = list(item.values())
    elif isinstance(item, (list, tuple, set, frozenset)):
        items = list(item)
    else:
        raise TypeError(
            f"{api}: {arg} takes a State, a sequence of States or a dict "
            f"{{axis: State or sequence of States}}, but got {type(item).__name__} {item!r}."
        )
    for s in items:
        if not isinstance(s, State):
            raise TypeError(
                f"{api}: {arg} must hold States only, but it holds {type(s).__name__} {s!r}."
            )
        prev = out.get(id(s))
        if prev is not None and prev[1] != axis:
            raise ValueError(
                f"{api}: {state_label(s)} is given two axes in {arg} ({prev[1]} and {axis}). "
                "Fix: list each state under one axis."
            )
        out[id(s)] = (s, axis)


def normalize_state_axes(api: str, arg: str, spec: Any) -> StateAxes:
    """Normalize ``in_states`` / ``out_states`` to ``{id(state): (state, axis)}``.

    ``spec`` is ``None``, a State, a sequence (or set) of States (axis 0), a
    mapping ``{axis: State or sequence of States}`` (int keys), or a mapping
    whose values are States (such as :func:`stategraph.states`; axis 0).
    """
    out: StateAxes = {}
    if spec is None:
        return out
    if (
        isinstance(spec, Mapping)
        and spec
        and all(isinstance(k, int) and not isinstance(k, bool) for k in spec)
    ):
        for axis, item in spec.items():
            _add(api, arg, out, item, axis)
        return out
    if isinstance(spec, Mapping) and not all(isinstance(v, State) for v in spec.values()):
        raise TypeError(
            f"{api}: a dict given as {arg} must map int axes to States (or sequences of "
            f"States), or names to States; got keys {list(spec)!r}."
        )
    _add(api, arg, out, spec, 0)
    return out


def _drop_axis(api: str, what: str, leaf: Any, axis: int | None) -> tuple[Any, int | None]:
    """Return (the per-lane ``ShapeDtypeStruct`` of ``leaf``, the mapped size or None)."""
    aval = jax.typeof(leaf)
    shape = tuple(aval.shape)
    if axis is None:
        return jax.ShapeDtypeStruct(shape, aval.dtype, weak_type=aval.weak_type), None
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{api}: {what} is mapped over axis {axis}, but it has rank {ndim} "
            f"(shape {shape}). Fix: pick an axis in [{-ndim}, {ndim}) or use None."
        )
    axis %= ndim
    lane = shape[:axis] + shape[axis + 1 :]
    return jax.ShapeDtypeStruct(lane, aval.dtype, weak_type=aval.weak_type), shape[axis]


@contextlib.contextmanager
def swapped_values(states: list[State], values: list[Any]) -> Iterator[None]:
    """Let ``states`` show ``values`` (placeholders) inside the block, to this thread only.

    The caller must have read the states (recorded) before, so that enclosing
    traces have lifted their real values and never see the placeholders.
    Other threads keep seeing the states' real values (the swap lives in this
    thread's private view, see :func:`stategraph.extend.private_values`).
    """
    with private_values(states, values):
        yield


def abstract_value(value: Any) -> Any:
    """Return ``value`` with every leaf replaced by its ``jax.ShapeDtypeStruct``."""

    def leaf(x: Any) -> Any:
        aval = jax.typeof(x)
        return jax.ShapeDtypeStruct(aval.shape, aval.dtype)

    return jax.tree.map(leaf, value)


def _is_batched(leaf: Any, trace: Any) -> bool:
    return (
        isinstance(leaf, BatchTracer)
        and leaf._trace.tag is trace.tag
        and leaf.batch_dim is not None
    )


def _arg_axes(in_axes: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if isinstance(in_axes, tuple):
        if len(in_axes) != len(args):
            raise ValueError(
                f"{_API}: in_axes must be an int, None, or a tuple with one entry per "
                f"positional argument, but got a tuple of length {len(in_axes)} for "
                f"{len(args)} positional argument(s)."
            )
        return in_axes
    if in_axes is None or (isinstance(in_axes, int) and not isinstance(in_axes, bool)):
        return (in_axes,) * len(args)
    raise TypeError(
        f"{_API}: in_axes must be an int, None or a tuple of per-argument axes, got {in_axes!r}."
    )


def _vmap_driver(
    fun: Callable[..., Any],
    in_axes: Any,
    out_axes: Any,
    axis_name: Any,
    axis_size: int | None,
    in_states: Any,
    out_states: Any,
) -> StatefulFunction:
    sf = lifted_for(fun, _API)
    ins = normalize_state_axes(_API, "in_states", in_states)
    outs = normalize_state_axes(_API, "out_states", out_states)
    # Every declared state is batched both ways: split on input along its
    # in_states axis (or its out_states axis), stacked on output along its
    # out_states axis (or its in_states axis).
    decl: dict[int, tuple[State, int, int]] = {}
    for key, (s, a) in ins.items():
        decl[key] = (s, a, outs[key][1] if key in outs else a)
    for key, (s, b) in outs.items():
        if key not in decl:
            decl[key] = (s, b, b)
    declared = [d[0] for d in decl.values()]

    def driver(*args: Any, **kwargs: Any) -> Any:
        axes = _arg_axes(in_axes, args)
        sizes: list[tuple[str, int]] = []

        def lane_of(what: str) -> Callable[[Any, Any], Any]:
            def per_subtree(axis: Any, sub: Any) -> Any:
                def per_leaf(leaf: Any) -> Any:
                    sds, n = _drop_axis(_API, what, leaf, axis)
                    if n is not None:
                        sizes.append((what, n))
                    return sds

                return jax.tree.map(per_leaf, sub)

            return per_subtree

        for i, (ax, a) in enumerate(zip(axes, args, strict=True)):
            check_in_axes_prefix(_API, i, ax, a)
        lane_args = tuple(
            jax.tree.map(lane_of(f"argument {i}"), ax, a, is_leaf=lambda x: x is None)
            for i, (ax, a) in enumerate(zip(axes, args, strict=True))
        )
        lane_kwargs = {k: lane_of(f"keyword argument {k!r}")(0, v) for k, v in kwargs.items()}
        # Recorded reads: enclosing traces lift the real (batched) values first.
        real = [s.value for s in declared]
        lane_states = []
        for (s, a, _), value in zip(decl.values(), real, strict=True):
            lane_states.append(lane_of(f"{state_label(s)} (declared state)")(a, value))
        size = _batch_size(sizes, axis_size)
        env = [(axis_name, size)] if axis_name is not None else []
        with swapped_values(declared, lane_states), extend_axis_env_nd(env):
            lifted = sf.trace(*lane_args, **lane_kwargs)
        io = StateIO([lifted])
        for s in io.out_states:
            d = decl.get(id(s))
            if d is not None and d[1] != d[2]:
                _check_same_shape(s, real[declared.index(s)], d[1], d[2])
        # Undeclared states of a per-lane kind (random states) get one value per lane.
        lanes = split_lanes([s for s in io.in_states if id(s) not in decl], size)
        in_ax = [decl[id(s)][1] if id(s) in decl else None for s in io.in_states]
        out_ax = [decl[id(s)][2] if id(s) in decl else None for s in io.out_states]
        in_ax = [0 if id(s) in lanes else a for s, a in zip(io.in_states, in_ax, strict=True)]
        out_ax = [0 if id(s) in lanes else a for s, a in zip(io.out_states, out_ax, strict=True)]
        shared = [
            (j, s) for j, s in enumerate(io.out_states) if id(s) not in decl and id(s) not in lanes
        ]
        pure = io.pure(sf, lifted)

        def lane(in_values: list[Any], *a: Any, **k: Any) -> Any:
            out, new = pure(in_values, *a, **k)
            _check_shared(shared, new, size)
            return out, new

        out, new = jax.vmap(
            lane,
            in_axes=(in_ax, *axes),
            out_axes=(out_axes, out_ax),
            axis_name=axis_name,
            axis_size=size,
        )(
            [lanes.get(id(s), v) for s, v in zip(io.in_states, io.values(), strict=True)],
            *args,
            **kwargs,
        )
        io.write(merge_lanes(io.out_states, new, lanes))
        return out

    functools.update_wrapper(driver, fun, updated=())
    return StatefulFunction(driver, api=_API)


def _check_shared(shared: list[tuple[int, State]], new: list[Any], size: int) -> None:
    """Raise if an undeclared (shared) state is written a per-lane value (inside the vmap)."""
    trace = current_trace()
    if not shared or not isinstance(trace, BatchTrace):
        return
    for j, s in shared:
        if any(_is_batched(x, trace) for x in jax.tree.leaves(new[j])):
            shown = describe(abstract_value(read_raw([s])[0]))
            raise ValueError(
                f"{_API}: {state_label(s)} ({shown}) is written "
                f"a value that differs across the {size} lanes, but the state is not "
                "declared, so all lanes share one value. Fix: declare it in `out_states` "
                "(its value must then hold one entry per lane along the axis), or write a "
                "value that is the same in every lane."
            )


def _batch_size(sizes: list[tuple[str, int]], axis_size: int | None) -> int:
    found = {n for _, n in sizes}
    if axis_size is not None:
        found.add(int(axis_size))
    if len(found) > 1:
        shown = ", ".join(f"{what}: {n}" for what, n in sizes)
        if axis_size is not None:
            shown += f", axis_size: {axis_size}"
        raise ValueError(
            f"{_API}: the mapped axes must all have the same size, but got {shown}. "
            "Fix: make the batch axes agree (or map the odd one with None)."
        )
    if not found:
        raise ValueError(
            f"{_API}: nothing is mapped (every in_axes is None and no in_states or "
            "out_states are given), so the batch size is unknown. Fix: pass axis_size."
        )
    return found.pop()


def _check_same_shape(state: State, value: Any, in_axis: int, out_axis: int) -> None:
    for leaf in jax.tree.leaves(value):
        shape = tuple(jax.typeof(leaf).shape)
        lane = list(shape)
        n = lane.pop(in_axis % len(shape))
        lane.insert(out_axis % len(shape), n)
        if tuple(lane) != shape:
            raise ValueError(
                f"{_API}: {state_label(state)} ({describe(value)}) is split along axis "
                f"{in_axis} (in_states) and stacked along axis {out_axis} (out_states), "
                f"which would change its shape from {shape} to {tuple(lane)}; a state keeps "
                "its shape. Fix: use the same axis in in_states and out_states."
            )


def vmap(
    fun: Callable[..., Any] | None = None,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_name: Any = None,
    axis_size: int | None = None,
    in_states: Any = None,
    out_states: Any = None,
) -> JittedFunction | Callable[[Callable[..., Any]], JittedFunction]:
    """Stateful counterpart of ``jax.vmap``.

    States the function touches are of two kinds:

    - **Declared** states (in ``in_states`` or ``out_states``) are batched:
      their value holds one entry per lane along the given axis. Each lane
      reads its own slice; if the function writes the state, the per-lane
      values are stacked back along the axis. A state in ``in_states`` that is
      written is written back batched along its ``in_states`` axis, and a state
      only in ``out_states`` is split along its ``out_states`` axis on input, so
      a state always keeps its shape. A state in both may use two axes only if
      its shape stays the same.
    - **Undeclared** states are shared by all lanes: they may be read, and
      written only with a value that is the same in every lane (one that does
      not depend on the mapped inputs). A per-lane write to an undeclared
      state raises ``ValueError`` at trace time and leaves the state unchanged.

    The function is traced once per signature, on the per-lane (unbatched)
    shapes of the arguments and declared states; eager calls run one cached
    compiled function. Nests with ``statejax.jit``, ``statejax.vmap`` and the
    other stateful transforms in any order.

    Args:
        fun: The function to map. Omit it to use ``vmap`` as a decorator
            factory: ``@sj.vmap(in_axes=(0, None))``.
        in_axes: As ``jax.vmap``: an int, None, or a tuple with one entry (a
            pytree prefix) per positional argument. Keyword arguments are
            mapped over axis 0.
        out_axes: As ``jax.vmap``, for the function's output.
        axis_name: Name of the mapped axis for collectives (``jax.lax.psum``).
        axis_size: The batch size, needed when nothing is mapped.
        in_states: Batched states split across the lanes: a State, a sequence
            of States (axis 0), or a dict ``{axis: State or sequence of
            States}``; a dict of States such as :func:`stategraph.states`
            means axis 0 for all.
        out_states: Batched states whose per-lane written values are stacked,
            in the same forms as ``in_states``.

    Returns:
        The mapped function (with the methods of
        :class:`~statejax.StatefulFunction`, as ``statejax.jit`` returns).

    Raises:
        ValueError: if mapped sizes disagree, a declared state has no axis of
            the batch size, or an undeclared state is written per lane.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> h = sg.ShortTermState(jnp.zeros((3, 2)), name="h")   # one row per lane
        >>> total = sg.ShortTermState(jnp.zeros(()), name="total")   # shared
        >>> @sj.vmap(in_states=h)
        ... def step(x):
        ...     h.value = h.value + x
        ...     total.value = total.value + 1.0   # same in every lane
        ...     return h.value.sum()
        >>> step(jnp.arange(3.0)).tolist(), h.value[:, 0].tolist(), float(total.value)
        ([0.0, 2.0, 4.0], [0.0, 1.0, 2.0], 1.0)
    """

    def wrap(f: Callable[..., Any]) -> Any:
        if not callable(f):
            raise TypeError(f"{_API}: expected a callable, got {type(f).__name__} {f!r}.")
        sf = _vmap_driver(f, in_axes, out_axes, axis_name, axis_size, in_states, out_states)
        return as_function(sf)

    if fun is None:
        return wrap
    return wrap(fun)
