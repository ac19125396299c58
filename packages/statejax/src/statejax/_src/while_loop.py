"""``statejax.while_loop``: the stateful counterpart of ``jax.lax.while_loop``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .compose import StateIO, cached_driver, lifted_for
from .eager import Rollback, jit_disabled
from .input_checks import check_carry, fun_label, promote_weak_init
from .stateful import StatefulFunction

__all__ = ["run_eager_while", "while_loop"]

_API = "statejax.while_loop"


def _while_driver(
    cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any]
) -> StatefulFunction:
    sf_cond = lifted_for(cond_fun, _API)
    sf_body = lifted_for(body_fun, _API)

    def driver(init_val: Any) -> Any:
        promoted = promote_weak_init(init_val, sf_body.trace(init_val).out_shapes)
        init_val = promoted  # a weakly typed init takes body_fun's dtype, as in JAX
        lc = sf_cond.trace(init_val)
        if lc.written_states:
            names = ", ".join(repr(s) for s in lc.written_states)
            raise ValueError(
                f"{_API}: cond_fun must not write states, but it writes {names}. cond_fun may "
                "only read states (it runs one more time than body_fun, so its writes have no "
                "well-defined value). Fix: move the write into body_fun."
            )
        lb = sf_body.trace(init_val)
        check_carry(_API, fun_label(sf_body.fun), "body_fun's output", init_val, lb.out_shapes)
        io = StateIO([lc, lb])
        run_cond, run_body = io.pure(sf_cond, lc), io.pure(sf_body, lb)
        values = io.values()  # read-only states are loop invariants (closed over)

        def cond(carry: tuple[Any, list[Any]]) -> Any:
            val, carried = carry
            pred, _ = run_cond(io.merge(values, carried), val)
            return pred

        def body(carry: tuple[Any, list[Any]]) -> tuple[Any, list[Any]]:
            val, carried = carry
            return run_body(io.merge(values, carried), val)

        val, carried = jax.lax.while_loop(cond, body, (init_val, io.out_values(values)))
        io.write(carried)
        return val

    return StatefulFunction(driver, api=_API)


def run_eager_while(
    cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any], init_val: Any
) -> Any:
    """Under ``jax.disable_jit()``: loop in Python (as ``jax.lax.while_loop``), all or nothing."""
    with Rollback():
        val = jax.tree.map(jnp.asarray, init_val)
        while cond_fun(val):
            val = jax.tree.map(jnp.asarray, body_fun(val))
        return val


def while_loop(
    cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any], init_val: Any
) -> Any:
    """Stateful counterpart of ``jax.lax.while_loop``.

    ``body_fun`` may read and write states: the states it writes are carried
    through the loop and hold their final values afterwards; the states it
    only reads are loop invariants. ``cond_fun`` may read states (it sees the
    carried values of the current iteration) but must not write any. Eager
    calls run one cached compiled function; the bodies are traced once per
    signature. Under ``jax.disable_jit()`` the loop runs in Python on
    concrete values (as ``jax.lax.while_loop`` does).

    Args:
        cond_fun: ``val -> bool scalar``; the loop runs while it is true.
        body_fun: ``val -> val``; returns the same types as it receives.
        init_val: The initial loop value (a pytree of arrays).

    Returns:
        The final loop value.

    Raises:
        ValueError: if ``cond_fun`` writes a state.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> total = sg.ShortTermState(jnp.zeros(()), name="total")
        >>> def body(i):
        ...     total.value = total.value + i
        ...     return i + 1
        >>> int(sj.while_loop(lambda i: total.value < 10, body, 0)), float(total.value)
        (5, 10.0)
    """
    for name, fun in (("cond_fun", cond_fun), ("body_fun", body_fun)):
        if not callable(fun):
            raise TypeError(f"{_API}: {name} must be callable, got {type(fun).__name__} {fun!r}.")
    if jit_disabled():
        try:
            return run_eager_while(cond_fun, body_fun, init_val)
        except jax.errors.ConcretizationTypeError:
            pass  # as jax.lax.while_loop: a traced condition falls back to the loop primitive
    driver = cached_driver(
        ("while_loop", cond_fun, body_fun), lambda: _while_driver(cond_fun, body_fun)
    )
    return driver(init_val)
