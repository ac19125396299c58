"""``statejax.jit``: the stateful counterpart of ``jax.jit``."""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from .caches import add_child
from .input_checks import normalize_donate_argnums
from .signature import normalize_argnums, resolve_static
from .stateful import StatefulFunction

__all__ = ["JittedFunction", "as_function", "jit"]

_METHODS = (
    "clear_cache",
    "compile",
    "eval_shape",
    "jaxpr",
    "lower",
    "out_shapes",
    "pure",
    "read_states",
    "trace",
    "written_states",
)


class _JittedType(type):
    """``isinstance(f, JittedFunction)`` also holds for the plain function ``jit`` returns."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        return (
            cls is JittedFunction
            and callable(obj)
            and isinstance(getattr(obj, "stateful", None), StatefulFunction)
        )


class JittedFunction(metaclass=_JittedType):
    """What :func:`jit` returns: the compiled stateful callable.

    For a plain function, :func:`jit` returns the generated hot path itself
    (a Python function, called through the interpreter's fastest call
    protocol) carrying the attributes below, and ``isinstance(f,
    sj.JittedFunction)`` holds for it. For a method defined in a class body
    it returns an instance of this class. This class adds the descriptor
    that binds the instance: ``self`` is not an argument of the compiled
    function; each instance gets its own compiled function (a plain one),
    and the instance is held weakly. Either way the object carries the
    methods of its :class:`~statejax.StatefulFunction` (``trace``, ``lower``,
    ``compile``, ``eval_shape``, ``pure``, ``jaxpr``, ``read_states``,
    ``written_states``, ``out_shapes``, ``clear_cache``), the object itself as
    ``stateful`` and ``stateful_fun``, and the user's function as
    ``origin_fun``.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> class Counter:
        ...     def __init__(self):
        ...         self.n = sg.ShortTermState(jnp.zeros(()), name="n")
        ...     @sj.jit
        ...     def step(self, x):
        ...         self.n.value = self.n.value + x
        ...         return self.n.value
        >>> isinstance(Counter.step, sj.JittedFunction)
        True
        >>> c = Counter()
        >>> float(c.step(2.0)), float(c.step(2.0))
        (2.0, 4.0)
    """

    stateful: StatefulFunction
    _rebind: Callable[[Callable[..., Any]], Any] | None

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        rebind = self._rebind
        if rebind is None:
            return functools.partial(self, obj)
        key = id(obj)
        hit = self._bound.get(key)
        if hit is not None and hit[0]() is obj:
            return hit[1]
        try:
            ref = weakref.ref(obj, lambda _, k=key, b=self._bound: b.pop(k, None))
        except TypeError:  # not weak-referenceable: bind by argument
            return functools.partial(self, obj)
        fun = self.stateful.fun

        def method(*args: Any, **kwargs: Any) -> Any:
            return fun(ref(), *args, **kwargs)

        functools.update_wrapper(method, fun)
        del method.__wrapped__
        try:  # the bound function's signature: ``fun``'s without ``self``
            sig = inspect.signature(fun)
            method.__signature__ = sig.replace(  # type: ignore[attr-defined]
                parameters=list(sig.parameters.values())[1:]
            )
        except (TypeError, ValueError):
            pass
        bound = rebind(method)
        add_child(self.stateful, bound.stateful)  # clear_cache of the class's jit reaches it
        self._bound[key] = (ref, bound)
        return bound

    def __repr__(self) -> str:
        return f"<statejax.jit of {getattr(self.stateful.fun, '__qualname__', self.stateful.fun)}>"


def _is_class_body_method(fun: Callable[..., Any]) -> bool:
    """Whether ``fun`` was defined in a class body (``Cls.name`` or ``self`` first)."""
    if inspect.ismethod(fun) or not inspect.isfunction(fun):
        return False
    parts = fun.__qualname__.split(".")
    if len(parts) >= 2 and parts[-2] != "<locals>":
        return True
    names = fun.__code__.co_varnames[: fun.__code__.co_argcount]
    return bool(names) and names[0] == "self"


def _attach(obj: Any, sf: StatefulFunction) -> None:
    for name in _METHODS:
        setattr(obj, name, getattr(sf, name))
    obj.stateful = sf
    obj.stateful_fun = sf
    obj.origin_fun = sf.fun


def as_function(
    sf: StatefulFunction, rebind: Callable[[Callable[..., Any]], Any] | None = None
) -> Any:
    """Return ``sf``'s generated hot path, carrying ``sf``'s methods.

    A plain function (the hot path itself), unless ``rebind`` is given and
    ``sf.fun`` was defined in a class body: then a :class:`JittedFunction`
    whose descriptor binds the instance.

    Args:
        sf: The stateful function.
        rebind: Builds the same transform for a method bound to an instance
            (``rebind(bound_function)``); ``None`` passes ``self`` as argument 0.
    """
    call = sf._call
    if rebind is None or not _is_class_body_method(sf.fun):
        functools.update_wrapper(call, sf.fun)
        _attach(call, sf)
        return call
    cls = type(
        getattr(sf.fun, "__name__", "jitted"),
        (JittedFunction,),
        {"__call__": staticmethod(call), "__module__": getattr(sf.fun, "__module__", None)},
    )
    obj = cls()
    functools.update_wrapper(obj, sf.fun, updated=())  # type: ignore[arg-type]
    _attach(obj, sf)
    obj._rebind = rebind
    obj._bound = {}  # type: ignore[attr-defined]
    return obj


def jit(
    fun: Callable[..., Any] | None = None,
    *,
    static_argnums: int | Sequence[int] = (),
    static_argnames: str | Sequence[str] = (),
    donate_argnums: int | Sequence[int] = (),
    donate_argnames: str | Sequence[str] | None = None,
    donate_states: bool = False,
    in_shardings: Any = None,
    out_shardings: Any = None,
    name: str | None = None,
    **jit_kwargs: Any,
) -> JittedFunction | Callable[[Callable[..., Any]], JittedFunction]:
    """Stateful counterpart of ``jax.jit``.

    The function may read and write ``state.value``; the states it writes are
    written back after every call, and a state changed outside between calls
    is seen by the next call. Tracing happens once per signature; calls then
    cost about as much as ``jax.jit`` on the equivalent pure function.

    Args:
        fun: The function to compile. Omit it to use ``jit`` as a decorator
            factory: ``@sj.jit(static_argnums=1)``.
        static_argnums: Positions of static (hashable) arguments.
        static_argnames: Names of static keyword arguments.
        donate_argnums: Positions of arguments whose buffers may be donated.
        donate_argnames: Names of arguments whose buffers may be donated. As in
            ``jax.jit`` (and ``brainstate.transform.jit``), a parameter named
            here or numbered in ``donate_argnums`` is donated whether it is
            passed by position or by name.
        donate_states: Donate the buffers of the states the function writes
            (they are replaced by the new values anyway). Read-only states are
            never donated. If a call fails at run time after its buffers were
            donated (a failing callback or check, an XLA error), those states
            have no value left: reading them, or calling a function that uses
            them, raises :class:`~stategraph.errors.DonatedStateError` until
            they are written again, for example with ``stategraph.restore``
            from a copy of a ``stategraph.snapshot`` taken before the call
            (``jax.tree.map(jnp.copy, snapshot)``; donation deletes the
            buffers a plain snapshot refers to).
        in_shardings: Shardings of the positional arguments (as ``jax.jit``;
            a single sharding applies to every argument). The states take
            none: each keeps the sharding of its value (an ordinary one-device
            array is placed by the compiler).
        out_shardings: Shardings of the output (as ``jax.jit``).
        name: Name of the compiled program (``jit_<name>`` in JAX's
            lowering, profiles and logs); by default the function's name.
        **jit_kwargs: Passed to ``jax.jit`` (``keep_unused``, ``device``,
            ``backend``, ``inline``, ``compiler_options``, ...).

    Returns:
        A function with ``fun``'s signature (a generated one-frame hot path),
        carrying the methods of its :class:`~statejax.StatefulFunction`
        (``.trace``, ``.lower``, ``.eval_shape``, ``.pure``, ``.jaxpr``,
        ``.read_states``, ``.written_states``, ``.out_shapes``,
        ``.clear_cache``, ``.compile``), the object itself as ``.stateful``
        and ``.stateful_fun``, and ``fun`` as ``.origin_fun``.
        ``.lower(...)`` and ``.eval_shape(...)`` describe the user's output only;
        ``.compile(...)`` is ``.lower(...).compile()``. Under
        ``jax.disable_jit()`` a call runs ``fun`` op by op, reading and
        writing the states eagerly, as ``jax.jit`` does.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> h = sg.ShortTermState(jnp.zeros(2), name="h")
        >>> @sj.jit
        ... def step(x):
        ...     h.value = 0.5 * h.value + x
        ...     return h.value.sum()
        >>> float(step(jnp.ones(2))), float(step(jnp.ones(2)))
        (2.0, 3.0)
    """
    if isinstance(donate_argnames, str):
        donate_argnames = (donate_argnames,)
    donate_names = tuple(donate_argnames or ())
    for n in donate_names:
        if not isinstance(n, str):
            raise TypeError(
                "statejax.jit: donate_argnames must be a string or a sequence of strings, "
                f"got {donate_argnames!r}."
            )

    def wrap(f: Callable[..., Any]) -> Any:
        kw = dict(jit_kwargs)
        donated = ()
        if donate_argnums not in ((), None):
            donated = normalize_donate_argnums("statejax.jit", f, donate_argnums)
        nums, names = resolve_static(f, donated, donate_names)
        if nums:
            kw["donate_argnums"] = nums
        if names:
            kw["donate_argnames"] = names
        if in_shardings is not None:
            kw["in_shardings"] = in_shardings
        if out_shardings is not None:
            kw["out_shardings"] = out_shardings
        sf = StatefulFunction(
            f,
            static_argnums,
            static_argnames,
            jit_kwargs=kw,
            donate_states=donate_states,
            name=name,
            api="statejax.jit",
        )
        statics = normalize_argnums("statejax.jit", static_argnums)
        if 0 in statics:  # `self` declared static by hand: keep passing it
            return as_function(sf)

        def rebind(method: Callable[..., Any]) -> Any:
            return wrap_bound(method, statics, kw)

        return as_function(sf, rebind)

    def wrap_bound(method: Callable[..., Any], statics: tuple[int, ...], kw: dict) -> Any:
        kw = dict(kw)
        donated = normalize_argnums("statejax.jit", kw.pop("donate_argnums", ()))
        if any(i > 0 for i in donated):
            kw["donate_argnums"] = tuple(i - 1 for i in donated if i > 0)
        shardings = kw.pop("in_shardings", None)
        if isinstance(shardings, tuple) and shardings:
            kw["in_shardings"] = shardings[1:]
        elif shardings is not None:
            kw["in_shardings"] = shardings
        sf = StatefulFunction(
            method,
            tuple(i - 1 for i in statics if i > 0),
            static_argnames,
            jit_kwargs=kw,
            donate_states=donate_states,
            name=name,
            api="statejax.jit",
        )
        return as_function(sf)

    if fun is None:
        return wrap
    return wrap(fun)
