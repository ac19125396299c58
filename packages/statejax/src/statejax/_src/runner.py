"""The function ``jax.jit`` traces for a stateful function's plan, and staging a traced call.

:func:`run_plan` is what a plan's ``jax.jit`` runner evaluates per signature;
:func:`staged` stages a traced signature (a :class:`~statejax.Lifted`) on a
call's arguments and state values as one equation, which is also how a call
under an enclosing trace runs without tracing through ``jax.jit`` again.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax

from .fastpath import Stale
from .jax_compat import bind_closed_jaxpr
from .plan import Lifted, StatePlan
from .weak import strong_types

if TYPE_CHECKING:
    from .stateful import StatefulFunction

__all__ = ["run_plan", "staged"]


def run_plan(sf: StatefulFunction, plan: StatePlan, *flat: Any, **kwargs: Any) -> Any:
    """The function JAX traces per signature: evaluate the matching jaxpr.

    ``flat`` is the read states' values (one positional argument each) then
    the call's positional arguments. Returns ``(output, *written values)``, or
    ``None`` for a signature that belongs to another plan (see ``fastpath``).
    """
    if jax.config.jax_disable_jit:
        raise Stale  # the slow path runs the Python body eagerly
    values, args = list(flat[: plan.n_read]), flat[plan.n_read :]
    if plan.read_states() is None or plan.written_states() is None:
        raise Stale
    with sf._lock:
        key = sf._key(args, kwargs)
        lifted = sf._lifted.get(key)
        # A state whose structure or type changed outside needs a new trace too.
        fits = lifted is not None and lifted.plan is plan and lifted.fits(values)
        if not fits:
            # JAX saw a new signature: trace again with the states' current values.
            lifted = sf.trace(*args, **kwargs)
            if lifted.plan is not plan:
                if plan.can_miss:
                    return None
                raise Stale
    return staged(sf, lifted, args, kwargs, values)  # type: ignore[arg-type]


def staged(
    sf: StatefulFunction, lifted: Lifted, args: tuple, kwargs: dict, values: list[Any]
) -> tuple[Any, ...]:
    """Stage ``lifted`` on the call's arguments and state values: ``(output, *written)``."""
    stage = functools.partial(_stage, name=sf.name or getattr(sf.fun, "__name__", "fun"))
    out, written = lifted.run_flat(sf.arg_leaves(*args, **kwargs), values, stage)
    return (out, *strong_types(written))


def _stage(closed: Any, leaves: list[Any], name: str) -> list[Any]:
    # Stage the traced jaxpr as one equation, unless its input avals differ
    # from the call's (the first call's weak state values were made strong
    # after tracing) or it closes over tracers of an enclosing trace: then
    # evaluate it equation by equation.
    # Under jax_debug_nans / jax_debug_infs JAX re-runs a failing call op by op
    # to find the operation: evaluate, so that the error is JAX's FloatingPointError.
    debugging = jax.config.jax_debug_nans or jax.config.jax_debug_infs
    if not debugging and not any(isinstance(c, jax.core.Tracer) for c in closed.consts) and all(
        getattr(jax.typeof(x), "weak_type", False) == a.weak_type
        for x, a in zip(leaves, closed.in_avals, strict=True)
    ):
        return bind_closed_jaxpr(closed, leaves, name)
    return jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *leaves)

