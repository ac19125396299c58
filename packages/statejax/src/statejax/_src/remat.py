"""``statejax.checkpoint`` / ``statejax.remat``: stateful ``jax.checkpoint``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

from .compose import StateIO
from .jit import JittedFunction, as_function
from .signature import normalize_argnums
from .stateful import StatefulFunction

__all__ = ["checkpoint", "remat"]

_API = "statejax.checkpoint"


def _checkpoint_driver(
    fun: Callable[..., Any],
    prevent_cse: bool,
    policy: Callable[..., bool] | None,
    static_argnums: tuple[int, ...],
) -> StatefulFunction:
    sf = StatefulFunction(fun, static_argnums, api=_API)
    # The pure function takes the state values first: shift the user's static positions.
    shifted = tuple(i + 1 for i in static_argnums)

    def driver(*args: Any, **kwargs: Any) -> Any:
        lifted = sf.trace(*args, **kwargs)
        io = StateIO([lifted])
        pure = jax.checkpoint(
            io.pure(sf, lifted), prevent_cse=prevent_cse, policy=policy, static_argnums=shifted
        )
        out, new = pure(io.values(), *args, **kwargs)
        io.write(new)
        return out

    functools.update_wrapper(driver, fun, updated=())
    # The compiled runner takes (*state values, *args): JAX must not see fun's
    # own signature through ``__wrapped__``, or it rejects the shifted argnums.
    del driver.__wrapped__
    return StatefulFunction(driver, static_argnums, api=_API)


def checkpoint(
    fun: Callable[..., Any] | None = None,
    prevent_cse: bool = True,
    policy: Callable[..., bool] | None = None,
    static_argnums: int | Sequence[int] = (),
) -> JittedFunction | Callable[[Callable[..., Any]], JittedFunction]:
    """Stateful counterpart of ``jax.checkpoint`` (also called ``remat``).

    The function may read and write states. Under differentiation its
    intermediate values are recomputed in the backward pass instead of being
    stored (as ``policy`` allows); the states it writes are written back after
    every call. Works eagerly (one cached compiled function per signature)
    and nested in every other stateful transform.

    Args:
        fun: The function. Omit it to use ``checkpoint`` as a decorator
            factory: ``@sj.checkpoint(policy=...)``.
        prevent_cse: Prevent common-subexpression elimination of the
            recomputation (as ``jax.checkpoint``; ``False`` is fine inside
            ``scan``).
        policy: Which intermediates may be saved, e.g.
            ``jax.checkpoint_policies.dots_saveable``.
        static_argnums: Positions of hashable arguments that are static.

    Returns:
        A function with ``fun``'s signature, carrying the methods of its
        :class:`~statejax.StatefulFunction` (``.trace``, ``.pure``,
        ``.jaxpr``, ...) and the object itself as ``.stateful``.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> w = sg.ParamState(jnp.full(2, 3.0), name="w")
        >>> calls = sg.ShortTermState(jnp.zeros(()), name="calls")
        >>> @sj.checkpoint
        ... def layer(x):
        ...     calls.value = calls.value + 1
        ...     return jnp.sin(w.value * x).sum()
        >>> round(float(layer(1.0)), 4), float(calls.value)
        (0.2822, 1.0)
        >>> jaxpr, states = sj.make_jaxpr(layer)(1.0)
        >>> "remat" in str(jaxpr)    # JAX's checkpoint primitive
        True
    """
    if fun is None:
        return functools.partial(
            checkpoint, prevent_cse=prevent_cse, policy=policy, static_argnums=static_argnums
        )
    if not callable(fun):
        raise TypeError(f"{_API}: expected a callable, got {type(fun).__name__} {fun!r}.")
    if policy is not None and not callable(policy):
        raise TypeError(
            f"{_API}: policy must be a callable (see jax.checkpoint_policies) or None, "
            f"got {type(policy).__name__} {policy!r}."
        )
    argnums = normalize_argnums(_API, static_argnums)
    wrapped = as_function(_checkpoint_driver(fun, bool(prevent_cse), policy, argnums))
    wrapped.__wrapped__ = fun  # inspect.signature shows fun's own signature
    return wrapped


remat = checkpoint
