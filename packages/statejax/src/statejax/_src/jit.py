"""``statejax.jit``: the stateful counterpart of ``jax.jit``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from .stateful import StatefulFunction

__all__ = ["as_function", "jit"]

_METHODS = (
    "clear_cache",
    "eval_shape",
    "jaxpr",
    "lower",
    "out_shapes",
    "pure",
    "read_states",
    "trace",
    "written_states",
)


def as_function(sf: StatefulFunction) -> Any:
    """Return ``sf``'s generated call function, carrying ``sf``'s methods."""
    fn = sf._call
    functools.update_wrapper(fn, sf.fun, updated=())
    for name in _METHODS:
        setattr(fn, name, getattr(sf, name))
    fn.stateful = sf  # type: ignore[attr-defined]
    return fn


def jit(
    fun: Callable[..., Any] | None = None,
    *,
    static_argnums: int | Sequence[int] = (),
    static_argnames: str | Sequence[str] = (),
    donate_argnums: int | Sequence[int] = (),
    donate_states: bool = False,
    in_shardings: Any = None,
    out_shardings: Any = None,
    **jit_kwargs: Any,
) -> Any:
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
        donate_states: Donate the buffers of the states the function writes
            (they are replaced by the new values anyway). Read-only states are
            never donated.
        in_shardings: Shardings of the positional arguments (as ``jax.jit``).
        out_shardings: Shardings of the output (as ``jax.jit``).
        **jit_kwargs: Passed to ``jax.jit`` (``keep_unused``, ``device``,
            ``backend``, ``inline``, ``compiler_options``, ...).

    Returns:
        A function with ``fun``'s signature (a generated one-frame hot path),
        carrying the methods of its :class:`~statejax.StatefulFunction`
        (``.trace``, ``.lower``, ``.eval_shape``, ``.pure``, ``.jaxpr``,
        ``.read_states``, ``.written_states``, ``.out_shapes``,
        ``.clear_cache``) and the object itself as ``.stateful``.
        ``.lower(...)`` and ``.eval_shape(...)`` describe the user's output only.

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
    if jit_kwargs.get("donate_argnames"):
        raise ValueError(
            "statejax.jit: donate_argnames is not supported; use donate_argnums "
            f"(got donate_argnames={jit_kwargs['donate_argnames']!r})."
        )

    def wrap(f: Callable[..., Any]) -> Any:
        kw = dict(jit_kwargs)
        if donate_argnums not in ((), None):
            kw["donate_argnums"] = donate_argnums
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
            api="statejax.jit",
        )
        return as_function(sf)

    if fun is None:
        return wrap
    return wrap(fun)
