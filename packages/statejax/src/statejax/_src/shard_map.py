"""``statejax.shard_map``: the stateful counterpart of ``jax.shard_map``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
from jax.sharding import PartitionSpec

from stategraph import State
from stategraph.extend import describe, read_raw

from .compose import StateIO
from .jit import JittedFunction, as_function
from .stateful import StatefulFunction
from .vmap import abstract_value, state_label, swapped_values

__all__ = ["shard_map"]

_API = "statejax.shard_map"


def _state_specs(arg: str, specs: Any) -> dict[int, tuple[State, Any]]:
    if specs is None:
        return {}
    if not isinstance(specs, Mapping):
        raise TypeError(
            f"{_API}: {arg} must be a dict {{State: PartitionSpec}} (states not listed are "
            f"replicated, P()), but got {type(specs).__name__} {specs!r}."
        )
    out: dict[int, tuple[State, Any]] = {}
    for state, spec in specs.items():
        if not isinstance(state, State):
            raise TypeError(
                f"{_API}: the keys of {arg} must be States, but got "
                f"{type(state).__name__} {state!r}."
            )
        out[id(state)] = (state, spec)
    return out


def _arg_specs(in_specs: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if isinstance(in_specs, PartitionSpec):
        return (in_specs,) * len(args)
    if isinstance(in_specs, list):
        in_specs = tuple(in_specs)
    if isinstance(in_specs, tuple):
        if len(in_specs) != len(args):
            raise ValueError(
                f"{_API}: in_specs must be a PartitionSpec or a tuple with one entry per "
                f"positional argument, but got {len(in_specs)} entries for {len(args)} "
                "positional argument(s)."
            )
        return in_specs
    raise TypeError(
        f"{_API}: in_specs must be a PartitionSpec or a tuple of per-argument specs "
        f"(pytree prefixes), got {in_specs!r}."
    )


def _spec_axes(spec: Any) -> frozenset[Any]:
    names: set[Any] = set()
    for part in jax.tree.leaves(spec, is_leaf=lambda x: isinstance(x, PartitionSpec)):
        if not isinstance(part, PartitionSpec):
            continue
        for entry in part:
            if entry is None:
                continue
            names.update(entry if isinstance(entry, tuple) else (entry,))
    return frozenset(names)


def _local_shape(mesh: Any, spec: PartitionSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    sizes = dict(mesh.shape)
    local = list(shape)
    for dim, entry in enumerate(tuple(spec)[: len(shape)]):
        if entry is None:
            continue
        for name in entry if isinstance(entry, tuple) else (entry,):
            local[dim] //= sizes.get(name, 1)
    return tuple(local)


def _check_same_block(mesh: Any, state: State, value: Any, spec_in: Any, spec_out: Any) -> None:
    """Raise if a state's per-shard block would differ between its in and out specs."""
    if mesh is None or not (
        isinstance(spec_in, PartitionSpec) and isinstance(spec_out, PartitionSpec)
    ):
        return
    for leaf in jax.tree.leaves(value):
        shape = tuple(jax.typeof(leaf).shape)
        a, b = _local_shape(mesh, spec_in, shape), _local_shape(mesh, spec_out, shape)
        if a != b:
            raise ValueError(
                f"{_API}: {state_label(state)} ({describe(abstract_value(value))}) has per-shard "
                f"blocks of shape {a} under its state_in_specs entry {spec_in} but {b} under "
                f"its state_out_specs entry {spec_out}; inside the function a state keeps its "
                "shape, so both specs must give blocks of the same shape. Fix: use the same "
                "spec, or gather / slice the value into a new state outside the shard_map."
            )


def _varying(leaf: Any) -> frozenset[Any]:
    aval = jax.typeof(leaf)
    vma = getattr(aval, "vma", None)
    if vma is None:
        mat = getattr(aval, "mat", None)
        vma = getattr(mat, "varying", frozenset())
    return frozenset(vma)


def _check_replicated(states: list[State], specs: list[Any], values: list[Any]) -> None:
    """Raise if a state is written a value varying over mesh axes its spec does not shard."""
    for s, spec, value in zip(states, specs, values, strict=True):
        allowed = _spec_axes(spec)
        for leaf in jax.tree.leaves(value):
            extra = _varying(leaf) - allowed
            if extra:
                raise ValueError(
                    f"{_API}: {state_label(s)} ({describe(abstract_value(read_raw([s])[0]))}) is "
                    f"written a value that varies across mesh axes {sorted(extra)}, but its "
                    f"out spec is {spec} (states not listed in state_out_specs are "
                    "replicated). Fix: give it a spec that shards it over those axes in "
                    "`state_out_specs` (and `state_in_specs`), or write a replicated value "
                    "(for example reduce it with jax.lax.psum / pmean)."
                )


def _inner(fun: Callable[..., Any]) -> StatefulFunction:
    # A private lifting per shard_map: its trace carries the varying-axes types
    # of this mesh and these specs, which must not be shared with other uses.
    sf = getattr(fun, "stateful", fun)
    if isinstance(sf, StatefulFunction) and not sf.static_argnums and not sf.static_argnames:
        fun = sf.fun
    return StatefulFunction(fun, api=_API)


def _shard_map_driver(
    fun: Callable[..., Any],
    mesh: Any,
    in_specs: Any,
    out_specs: Any,
    state_in_specs: Any,
    state_out_specs: Any,
    check_vma: bool,
    axis_names: Any,
) -> StatefulFunction:
    sf = _inner(fun)
    ins = _state_specs("state_in_specs", state_in_specs)
    outs = _state_specs("state_out_specs", state_out_specs)
    # A state keeps its shape: each side's spec defaults to the other side's.
    decl: dict[int, tuple[State, Any, Any]] = {}
    for key, (s, spec) in ins.items():
        decl[key] = (s, spec, outs[key][1] if key in outs else spec)
    for key, (s, spec) in outs.items():
        decl.setdefault(key, (s, spec, spec))
    declared = [d[0] for d in decl.values()]
    extra = {} if axis_names is None else {"axis_names": frozenset(axis_names)}

    def smap(f: Callable[..., Any], ins_: Any, outs_: Any) -> Any:
        return jax.shard_map(
            f, mesh=mesh, in_specs=ins_, out_specs=outs_, check_vma=check_vma, **extra
        )

    def driver(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError(
                f"{_API}: keyword arguments are not supported (as in jax.shard_map), got "
                f"{sorted(kwargs)}. Fix: pass them positionally."
            )
        arg_specs = _arg_specs(in_specs, args)
        # Recorded reads: enclosing traces lift the real (global) values first.
        real = [s.value for s in declared]
        for (s, spec_in, spec_out), value in zip(decl.values(), real, strict=True):
            if spec_in is not spec_out:
                _check_same_block(mesh, s, value, spec_in, spec_out)
        box: dict[str, Any] = {}

        def probe(local_args: tuple[Any, ...], local_states: list[Any]) -> tuple[()]:
            # Trace the user's function inside the shard_map's context, on the
            # per-shard values (so collectives and varying axes are typed right).
            with swapped_values(declared, local_states):
                box["lifted"] = sf.trace(*local_args)
            return ()

        jax.make_jaxpr(smap(probe, (arg_specs, [d[1] for d in decl.values()]), ()))(args, real)
        lifted = box["lifted"]
        io = StateIO([lifted])
        replicated = PartitionSpec()
        in_sp = [decl[id(s)][1] if id(s) in decl else replicated for s in io.in_states]
        out_sp = [decl[id(s)][2] if id(s) in decl else replicated for s in io.out_states]
        pure = io.pure(sf, lifted)

        def body(in_values: list[Any], *a: Any) -> Any:
            out, new = pure(in_values, *a)
            if check_vma:
                _check_replicated(io.out_states, out_sp, new)
            return out, new

        out, new = smap(body, (in_sp, *arg_specs), (out_specs, out_sp))(io.values(), *args)
        io.write(new)
        return out

    functools.update_wrapper(driver, fun, updated=())
    return StatefulFunction(driver, api=_API)


def shard_map(
    fun: Callable[..., Any] | None = None,
    mesh: Any = None,
    in_specs: Any = None,
    out_specs: Any = None,
    state_in_specs: Mapping[State, Any] | None = None,
    state_out_specs: Mapping[State, Any] | None = None,
    *,
    check_vma: bool = True,
    axis_names: Any = None,
) -> JittedFunction | Callable[[Callable[..., Any]], JittedFunction]:
    """Stateful counterpart of ``jax.shard_map``.

    The function runs once per shard, on per-shard blocks of the arguments and
    of the states. The states it reads are extra inputs and the states it
    writes extra outputs of the ``jax.shard_map``, with the partition specs of
    ``state_in_specs`` and ``state_out_specs``; a state not listed there is
    replicated (``P()``): every shard sees its whole value and may write it
    only with a value that is the same on every shard. A state listed on one
    side only uses the same spec on the other side, so it keeps its shape; a
    state given two different specs must get per-shard blocks of the same
    shape from both (say ``P(("x", "y"))`` in and ``P(("y", "x"))`` out).

    The function is traced once per signature, inside the shard_map's
    context (collectives such as ``jax.lax.psum`` over mesh axes work); eager
    calls run one cached compiled function.

    Args:
        fun: The per-shard function. Omit it to use ``shard_map`` as a
            decorator factory: ``@sj.shard_map(mesh=mesh, in_specs=..., out_specs=...)``.
        mesh: The ``jax.sharding.Mesh`` (or ``None`` for the context mesh).
        in_specs: A ``PartitionSpec`` for all positional arguments, or a tuple
            with one spec (a pytree prefix) per positional argument.
        out_specs: Specs of the output (a pytree prefix), as in ``jax.shard_map``.
        state_in_specs: ``{State: PartitionSpec}`` for the states read (default
            ``P()``); a spec may be a pytree prefix of the state's value.
        state_out_specs: ``{State: PartitionSpec}`` for the states written
            (default: the state's ``state_in_specs`` entry, else ``P()``).
        check_vma: As ``jax.shard_map``: check (and type) which values vary
            across shards. With it, writing a varying value into a state with a
            replicated spec raises ``ValueError`` at trace time.
        axis_names: As ``jax.shard_map``: the mesh axes the function is manual
            over (default: all).

    Returns:
        The mapped function (with the methods of
        :class:`~statejax.StatefulFunction`, as ``statejax.jit`` returns).

    Raises:
        TypeError: for specs of the wrong kind, or keyword arguments.
        ValueError: if a state with a replicated spec is written a value that
            varies across shards (``check_vma=True``).

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> from jax.sharding import PartitionSpec as P
        >>> mesh = jax.make_mesh((1,), ("x",), axis_types=(jax.sharding.AxisType.Auto,))
        >>> total = sg.ShortTermState(jnp.zeros(()), name="total")
        >>> @sj.shard_map(mesh=mesh, in_specs=P("x"), out_specs=P("x"))
        ... def add(x):
        ...     total.value = total.value + jax.lax.psum(x.sum(), "x")
        ...     return x * 2
        >>> add(jnp.arange(4.0)).tolist(), float(total.value)
        ([0.0, 2.0, 4.0, 6.0], 6.0)
    """
    if out_specs is None:
        raise TypeError(f"{_API}: out_specs is required (as in jax.shard_map).")
    if in_specs is None:
        raise TypeError(
            f"{_API}: in_specs is required: a PartitionSpec or a tuple with one per argument."
        )

    def wrap(f: Callable[..., Any]) -> Any:
        if not callable(f):
            raise TypeError(f"{_API}: expected a callable, got {type(f).__name__} {f!r}.")
        sf = _shard_map_driver(
            f,
            mesh,
            in_specs,
            out_specs,
            state_in_specs,
            state_out_specs,
            bool(check_vma),
            axis_names,
        )
        return as_function(sf)

    if fun is None:
        return wrap
    return wrap(fun)
