"""Lifting a stateful Python function into a pure, cached, compiled JAX function."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import jax

from stategraph import State
from stategraph.extend import open_traces, read_raw, write_raw

from . import caches
from .donation import DonationGuard
from .fastpath import (
    MISS,
    make_call_function,
    plan_function,
    receiver_view,
    reset,
    set_plan,
    simple_parameters,
)
from .input_checks import check_pure_values, check_static_in_signature
from .jax_compat import is_eager
from .plan import Lifted, StatePlan, trace_lifted
from .rebinds import find_bindings, revalidate
from .runner import run_plan, staged
from .shardings import runner_in_shardings
from .signature import (
    abstract_key,
    check_arguments,
    check_hashable,
    check_no_states,
    normalize_argnums,
    resolve_static,
    split_static,
)
from .stateful_methods import BrainstateMethods
from .weak import canonicalize_weak

__all__ = ["StatefulFunction"]

# How many plans besides the current one keep a generated fast path.
_MAX_ALTERNATES = 8



class StatefulFunction(BrainstateMethods):
    """Lift a function that reads and writes States into a pure JAX function.

    The function is traced once per abstract signature (tree structure,
    shapes, dtypes and weak types of the dynamic arguments; values of the
    static ones). The trace records the states it reads and writes, in
    first-access order, and gives a closed jaxpr whose inputs are (argument
    leaves, read state leaves) and outputs (output leaves, written state
    leaves). Calling the object runs the function statefully through one
    compiled function: the hot path gathers the state values, lets JAX's own
    dispatch check the signature, and writes the written states back.

    What the cache assumes (as JAX assumes about closures): for a given
    signature, the function touches the same states every time. States are
    held by weak reference: a state that was garbage-collected causes a
    retrace; a state whose shape or dtype changed outside causes a retrace.
    Replacing a state by another one that is still alive elsewhere is not
    detected: call :meth:`clear_cache` after restructuring a model.

    All or nothing: if tracing or execution raises, every state keeps the
    value it had before the call and the failed trace is not cached.

    Args:
        fun: The stateful function.
        static_argnums: Positions of arguments that are hashable Python values
            (a retrace per new value), as in ``jax.jit``.
        static_argnames: Names of keyword arguments that are static.
        jit_kwargs: Extra keyword arguments for the underlying ``jax.jit``.
        api: Name used in error messages.
        call_signature: For a wrapper ``fun(*args, **kwargs)`` that forwards
            its arguments to another function: that function, whose simple
            positional signature (if it has one) the compiled call then takes
            (no ``*args``/``**kwargs`` packing per call; see
            ``statejax._src.fastpath``).
        trace_inline: Under an enclosing stateful trace (``sj.jit``, ``sj.vmap``,
            ``sj.scan``, ...), run ``fun`` straight in that trace, as a plain
            function would run, instead of tracing it to its own cached jaxpr
            and staging that (which copies every equation once more). For a
            wrapper that is traced anew per enclosing trace anyway (the
            derivative drivers of ``statediff``); ignored with ``jit_kwargs``
            or ``donate_states``.
        **brainstate_options: brainstate's ``name=`` and ``return_only_write=``
            (see :class:`~statejax._src.stateful_methods.BrainstateMethods`).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> count = sg.ShortTermState(jnp.zeros(()), name="count")
        >>> def step(x):
        ...     count.value = count.value + 1
        ...     return x * 2
        >>> f = sj.StatefulFunction(step)
        >>> float(f(3.0)), float(count.value)
        (6.0, 1.0)
        >>> lifted = f.trace(3.0)
        >>> [s.name for s in lifted.read_states], [s.name for s in lifted.written_states]
        (['count'], ['count'])
        >>> out, (new_count,) = f.pure([count.value], 3.0)   # touches no state
        >>> float(new_count), float(count.value)
        (2.0, 1.0)
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (),
        *,
        jit_kwargs: dict[str, Any] | None = None,
        donate_states: bool = False,
        name: str | None = None,
        api: str = "StatefulFunction",
        call_signature: Callable[..., Any] | None = None,
        trace_inline: bool = False,
        **brainstate_options: Any,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"{api}: expected a callable, got {type(fun).__name__} {fun!r}.")
        self.fun = fun
        self.api = api
        self._set_brainstate_options(**brainstate_options)  # name=, return_only_write=, ...
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        # As jax.jit: a static parameter is static whether passed by position or by name.
        self.static_argnums, self.static_argnames = resolve_static(
            fun, normalize_argnums(api, static_argnums), tuple(static_argnames)
        )
        check_static_in_signature(api, fun, self.static_argnums, self.static_argnames)
        self.donate_states = bool(donate_states)
        self.name = name
        self._jit_kwargs = dict(jit_kwargs or {})
        self._trace_inline = bool(trace_inline) and not self._jit_kwargs and not donate_states
        self._lock = threading.RLock()
        functools.update_wrapper(self, fun, updated=())
        shown = fun if call_signature is None else call_signature
        name = getattr(shown, "__name__", "fun")
        static = self.static_argnums or self.static_argnames
        self._call = make_call_function(
            self._call_slow,
            name,
            self._check_arguments,
            self._call_other,
            None if static else simple_parameters(shown),
        )
        caches.register(self)
        self._clear_own()

    # ------------------------------------------------------------- the cache
    def clear_cache(self) -> None:
        """Forget every traced signature and compiled function, through every layer of nesting.

        The stateful functions traced inside this one (the lifted function of
        a ``vmap``, the branches of a ``cond``, an inner ``jit``, ...) are
        cleared too, so the next call traces everything again with the
        states the functions reach now. Everything of the forgotten plans
        (compiled code, generated fast paths, closed-over constants) is
        released.
        """
        caches.clear_tree(self)

    def _clear_own(self) -> None:
        """Forget this function's own traced signatures and compiled functions."""
        with self._lock:
            self._lifted: dict[Any, Lifted] = {}
            self._plan: StatePlan | None = None
            # Plans other than the current one, most recently used last, each
            # with its own generated fast function (see ``fastpath``).
            self._alternates: dict[StatePlan, Callable[..., Any]] = {}
            reset(self._call)

    def _plans(self) -> list[StatePlan]:
        """The plans this function knows (the current one first)."""
        plans = [] if self._plan is None else [self._plan]
        return plans + [p for p in self._alternates if p is not self._plan]

    def _compile_plan(self, plan: StatePlan, n_args: int = 0) -> None:
        """Give a new plan its compiled runner.

        ``n_args``: the number of dynamic positional arguments of the traced call.
        """
        # The runner takes (*state values, *args): one positional argument per
        # state, which JAX's C++ dispatch handles faster than lists.
        kw = dict(self._jit_kwargs)
        n = plan.n_read
        static = tuple(i + n for i in self.static_argnums)
        donate = tuple(i + n for i in normalize_argnums(self.api, kw.pop("donate_argnums", ())))
        if self.donate_states:
            donate = (*(i for i, w in enumerate(plan.rw_mask) if w), *donate)
        in_shardings = kw.pop("in_shardings", None)
        if in_shardings is not None:
            read = plan.read_states() or []
            kw["in_shardings"] = runner_in_shardings(in_shardings, read, n_args)
        out_shardings = kw.pop("out_shardings", None)
        if out_shardings is not None:
            kw["out_shardings"] = (out_shardings, *([None] * plan.n_write))
        # A plan may answer a signature of another plan with an empty result
        # (``None``) only when that call gives nothing away: no donated buffer.
        plan.can_miss = not donate and not kw.get("donate_argnames") and out_shardings is None
        runner = functools.partial(run_plan, self, plan)
        functools.update_wrapper(runner, self.fun, updated=())
        if self.name is not None:
            runner.__name__ = runner.__qualname__ = self.name
        # The runner takes (*state values, *args): JAX must not see ``fun``'s own
        # signature through ``__wrapped__``, or it rejects the shifted argnums.
        del runner.__wrapped__
        plan.jitted = jax.jit(
            runner,
            static_argnums=static or None,
            static_argnames=self.static_argnames or None,
            donate_argnums=donate or None,
            **kw,
        )
        if self.donate_states and any(plan.rw_mask):
            plan.jitted = DonationGuard(plan.jitted, plan, self.api)

    def _n_args(self, args: tuple[Any, ...]) -> int:
        """The number of dynamic positional arguments in ``args``."""
        return len(args) - sum(i < len(args) for i in self.static_argnums)

    def _split(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return split_static(args, kwargs, self.static_argnums, self.static_argnames)

    def _rebuilder(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not self.static_argnums and not self.static_argnames:
            return lambda a, k: (a, k)

        def rebuild(d_args: tuple[Any, ...], d_kwargs: dict[str, Any]) -> Any:
            full = tuple(args[i] if i in self.static_argnums else a for i, a in enumerate(d_args))
            kw = dict(d_kwargs)
            kw.update({k: kwargs[k] for k in self.static_argnames if k in kwargs})
            return full, kw

        return rebuild

    def arg_leaves(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Return the dynamic argument leaves of a call, in the jaxpr's input order.

        With :meth:`Lifted.run_flat <statejax.Lifted.run_flat>`, this is how
        other transforms evaluate a traced signature purely.
        """
        dyn_args, dyn_kwargs, _ = self._split(args, kwargs)
        return jax.tree.leaves((dyn_args, dyn_kwargs))

    def _key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        dyn_args, dyn_kwargs, statics = self._split(args, kwargs)
        try:
            key = (abstract_key((dyn_args, dyn_kwargs)), statics)
        except TypeError:
            self._check_arguments(args, kwargs)
            raise
        if statics:
            check_hashable(self.api, statics)
        return key

    def _check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        check_arguments(self.api, args, kwargs, self.static_argnums, self.static_argnames)

    def _valid(self, lifted: Lifted, states: list[State] | None) -> bool:
        if states is None or lifted.plan.written_states() is None:
            return False
        return lifted.fits(read_raw(states))

    def trace(self, *args: Any, **kwargs: Any) -> Lifted:
        """Return the traced signature for these arguments (tracing if needed).

        Args:
            *args: Arguments as for a call (arrays or ``jax.ShapeDtypeStruct``).
            **kwargs: Keyword arguments as for a call.

        Returns:
            The :class:`~statejax.Lifted` for this signature: ``jaxpr``,
            ``read_states``, ``written_states``, ``out_shapes``.
        """
        check_no_states(self.api, args, kwargs)
        caches.note_use(self)
        key = self._key(args, kwargs)
        with self._lock:
            lifted = self._lifted.get(key)
            if lifted is not None and self._valid(lifted, lifted.plan.read_states()):
                # A state on a recorded path from the function's roots was rebound:
                # the caches are cleared and the function is traced again.
                if not revalidate(self, lifted):
                    return lifted
            dyn_args, dyn_kwargs, _ = self._split(args, kwargs)
            with caches.tracing(self):
                rebuild = self._rebuilder(args, kwargs)
                plans = self._plans()
                lifted = trace_lifted(self.api, self.fun, dyn_args, dyn_kwargs, rebuild, plans)
            lifted.bindings = find_bindings(self.fun, lifted.read_states + lifted.written_states)
            if lifted.plan.jitted is None:
                n_static = sum(i < len(args) for i in self.static_argnums)
                self._compile_plan(lifted.plan, len(args) - n_static)
            self._forget_dead()
            self._lifted[key] = lifted
            return lifted

    def _forget_dead(self) -> None:
        """Drop the signatures and plans whose states were garbage-collected."""
        dead = [k for k, v in self._lifted.items() if not v.plan.alive()]
        for k in dead:
            del self._lifted[k]
        for plan in [p for p in self._alternates if not p.alive()]:
            del self._alternates[plan]

    # ------------------------------------------------------------ pure calls
    def pure(
        self, state_values: Sequence[Any], *args: Any, **kwargs: Any
    ) -> tuple[Any, tuple[Any, ...]]:
        """Run the function purely: ``(state_values, *args) -> (output, written values)``.

        ``state_values`` are values for ``self.trace(*args).read_states`` in
        that order; the written values are for ``written_states``. No state is
        read or changed, so this composes with every JAX transform.
        """
        lifted = self.trace(*args, **kwargs)
        check_pure_values(self.api, lifted.read_states, lifted, state_values)
        return lifted.run_flat(self.arg_leaves(*args, **kwargs), list(state_values))

    def jaxpr(self, *args: Any, **kwargs: Any) -> jax.extend.core.ClosedJaxpr:
        """Return the closed jaxpr for this signature."""
        return self.trace(*args, **kwargs).jaxpr

    def read_states(self, *args: Any, **kwargs: Any) -> list[State]:
        """Return the states read for this signature, in first-read order."""
        return self.trace(*args, **kwargs).read_states

    def written_states(self, *args: Any, **kwargs: Any) -> list[State]:
        """Return the states written for this signature, in first-write order."""
        return self.trace(*args, **kwargs).written_states

    def out_shapes(self, *args: Any, **kwargs: Any) -> Any:
        """Return the output as a pytree of ``jax.ShapeDtypeStruct``."""
        return self.trace(*args, **kwargs).out_shapes

    # -------------------------------------------------------------- calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def receiver_call(self, name: str | None = None) -> Callable[..., Any] | None:
        """This function's compiled call with a leading parameter that it ignores, or ``None``.

        For a class whose instances each own one stateful function: made the
        ``__call__`` of an instance's own class, ``obj(*args)`` runs
        ``self(*args)`` in one Python frame, where a ``__call__`` that
        forwards costs two. ``None`` when the call does not take plain
        positional parameters (see ``call_signature``). ``name`` is what
        Python's own errors call it (default: the function's name).

        Example:
            >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
            >>> count = sg.ShortTermState(jnp.array(0.0))
            >>> def step(dx):
            ...     count.value = count.value + dx
            ...     return count.value
            >>> sf = sj.StatefulFunction(step)
            >>> Counter = type("Counter", (), {"__call__": sf.receiver_call("Counter.__call__")})
            >>> float(Counter()(2.0)), float(count.value)
            (2.0, 2.0)
        """
        with self._lock:
            try:
                view = receiver_view(self._call, "_sj_receiver", name)
            except ValueError:
                return None
            if self._plan is not None:
                set_plan(self._call, self._plan)
        return view

    def _install(self, plan: StatePlan) -> None:
        """Make ``plan`` reachable from the generated hot path."""
        with self._lock:
            current = self._plan
            if current is plan or plan in self._alternates:
                return
            if current is None or not current.alive():
                self._plan = plan
                set_plan(self._call, plan)
                self._forget_dead()
                return
            self._alternates[plan] = plan_function(plan, self._call_slow, self._check_arguments)
            while len(self._alternates) > _MAX_ALTERNATES:
                del self._alternates[next(iter(self._alternates))]

    def _call_other(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The current plan answered that this signature is another plan's: run that one."""
        for fast in list(self._alternates.values()):
            res = fast(args, kwargs)
            if res is not MISS:
                return res
        return self._call_slow(args, kwargs)

    def _call_slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if jax.config.jax_disable_jit:
            # As jax.jit under jax.disable_jit(): run the Python body op by op,
            # reading and writing the states eagerly.
            return self.fun(*args, **kwargs)
        traces = open_traces()
        if traces and self._trace_inline:
            return self.fun(*args, **kwargs)  # the enclosing trace records its reads and writes
        managed = bool(traces) or not is_eager()
        lifted = self.trace(*args, **kwargs)
        if not managed:
            # The states' values are typed by their dtypes from now on (see ``weak``).
            canonicalize_weak(lifted)
        plan = lifted.plan
        read = plan.read_states()
        written_states = plan.written_states()
        assert read is not None and written_states is not None
        if not managed:
            self._install(plan)
            values = read_raw(read)
            res = plan.jitted(*values, *args, **kwargs)
            if res is None:
                # This plan's runner once answered this signature for another
                # plan; that answer is cached by JAX: compile the plan afresh.
                with self._lock:
                    self._compile_plan(plan, self._n_args(args))
                    if self._plan is plan:
                        set_plan(self._call, plan)
                    elif plan in self._alternates:
                        self._alternates[plan] = plan_function(
                            plan, self._call_slow, self._check_arguments
                        )
                res = plan.jitted(*values, *args, **kwargs)
            write_raw(written_states, res[1:])
            return res[0]
        values = [s.value for s in read]  # recorded: enclosing traces lift them
        if not self._jit_kwargs and not self.donate_states and lifted.fits(values):
            # Under an enclosing trace, stage the traced jaxpr as one equation here:
            # ``plan.jitted`` would trace the runner again only to stage the same jaxpr.
            res = staged(self, lifted, args, kwargs, values)
        else:
            res = plan.jitted(*values, *args, **kwargs)
        before = read_raw(written_states)
        try:
            for state, value in zip(written_states, res[1:], strict=True):
                state.value = value  # recorded and checked
        except BaseException:
            write_raw(written_states, before)  # all or nothing: undo the earlier writes
            raise
        return res[0]

    # ----------------------------------------------------------- AOT helpers
    def lower(self, *args: Any, **kwargs: Any) -> StatefulLowered:
        """Lower for these arguments, as ``jax.jit(...).lower`` (user output only)."""
        lifted = self.trace(*args, **kwargs)
        plan = lifted.plan
        values = read_raw(plan.read_states() or [])
        lowered = plan.jitted.lower(*values, *args, **kwargs)
        return StatefulLowered(lowered, lifted)

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """Lower and compile for these arguments, as ``jax.jit(...).lower(...).compile()``.

        The compiled object takes the read states' values (in
        ``trace(...).read_states`` order) followed by the arguments, and
        returns ``(output, *written values)``; nothing runs, no state changes.
        """
        return self.lower(*args, **kwargs).compile()

    def eval_shape(self, *args: Any, **kwargs: Any) -> Any:
        """Return the output shapes for these arguments; no state changes."""
        return self.trace(*args, **kwargs).out_shapes

    def __repr__(self) -> str:
        name = getattr(self.fun, "__qualname__", repr(self.fun))
        return f"{type(self).__name__}({name}, signatures={len(self._lifted)})"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self, obj)


class StatefulLowered:
    """A lowered stateful function; ``out_info`` describes the user's output only."""

    def __init__(self, lowered: Any, lifted: Lifted) -> None:
        self._lowered = lowered
        self.lifted = lifted

    @property
    def out_info(self) -> Any:
        """Shapes and dtypes of the user's output (written states excluded)."""
        return self._lowered.out_info[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lowered, name)
