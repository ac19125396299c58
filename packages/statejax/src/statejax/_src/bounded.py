"""``statejax.bounded_while_loop``: a while loop that reverse-mode differentiation goes through."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .compose import StateIO, cached_driver, lifted_for
from .eager import Rollback, jit_disabled
from .nested import check_base, level_sizes, match_types, nested_scan
from .stateful import StatefulFunction
from .weakcache import weak_callable

__all__ = ["bounded_while_loop"]

_API = "statejax.bounded_while_loop"


def _bounded_driver(
    cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any], max_steps: int, base: int
) -> StatefulFunction:
    sf_cond = lifted_for(cond_fun, _API)
    sf_body = lifted_for(body_fun, _API)

    def driver(init_val: Any) -> Any:
        lc = sf_cond.trace(init_val)
        if lc.written_states:
            names = ", ".join(repr(s) for s in lc.written_states)
            raise ValueError(
                f"{_API}: cond_fun must not write states, but it writes {names}. cond_fun may "
                "only read states. Fix: move the write into body_fun."
            )
        pred_shape = lc.out_shapes
        if not isinstance(pred_shape, jax.ShapeDtypeStruct) or pred_shape.shape != ():
            raise TypeError(
                f"{_API}: cond_fun must return a boolean scalar, got {pred_shape}."
            )
        lb = sf_body.trace(init_val)
        init = match_types(_API, "a loop value", init_val, lb.out_shapes)
        io = StateIO([lc, lb])
        run_cond, run_body = io.pure(sf_cond, lc), io.pure(sf_body, lb)
        values = io.values()  # read-only states are loop invariants (closed over)
        if max_steps == 0:
            return init

        def keep_going(carry: tuple[Any, ...]) -> Any:
            i, val, carried = carry
            pred, _ = run_cond(io.merge(values, carried), val)
            return jnp.logical_and(pred, i < max_steps)

        def step(carry: tuple[Any, ...], _: Any) -> tuple[tuple[Any, ...], None]:
            def go(carry: tuple[Any, ...]) -> tuple[Any, ...]:
                i, val, carried = carry
                new_val, new = run_body(io.merge(values, carried), val)
                return i + 1, match_types(_API, "a loop value", new_val, lb.out_shapes), new

            return jax.lax.cond(keep_going(carry), go, lambda c: c, carry), None

        sizes = level_sizes(max_steps, base)
        assert math.prod(sizes) >= max_steps
        start = (jnp.zeros((), jnp.int32), init, io.out_values(values))
        (_, val, carried), _ = nested_scan(step, start, None, sizes, keep_going)
        io.write(carried)
        return val

    return StatefulFunction(driver, api=_API)


def _check_max_steps(max_steps: Any) -> int:
    if isinstance(max_steps, bool):
        raise TypeError(f"{_API}: max_steps must be a non-negative int, got {max_steps!r}.")
    try:
        max_steps = operator.index(max_steps)
    except TypeError:
        raise TypeError(
            f"{_API}: max_steps must be a non-negative Python int (the bound is static), got "
            f"{type(max_steps).__name__}. Fix: pass e.g. max_steps=1000."
        ) from None
    if max_steps < 0:
        raise ValueError(f"{_API}: max_steps must be non-negative, got {max_steps}.")
    return max_steps


def _eager(cond_fun: Any, body_fun: Any, init_val: Any, max_steps: int) -> Any:
    with Rollback():
        val = jax.tree.map(jnp.asarray, init_val)
        for _ in range(max_steps):
            if not cond_fun(val):
                break
            val = jax.tree.map(jnp.asarray, body_fun(val))
        return val


def bounded_while_loop(
    cond_fun: Callable[[Any], Any],
    body_fun: Callable[[Any], Any],
    init_val: Any,
    *,
    max_steps: int,
    base: int = 16,
) -> Any:
    """A stateful while loop of at most ``max_steps`` steps that ``grad`` goes through.

    As ``brainstate.transform.bounded_while_loop``: the result is what
    ``sj.while_loop(cond_fun, body_fun, init_val)`` gives when it ends within
    ``max_steps`` steps; otherwise the loop stops after ``max_steps``. Built
    from nested, checkpointed scans (``ceil(log_base(max_steps))`` levels of
    at most ``base`` steps; a block is skipped as soon as ``cond_fun`` is
    false at its start), so reverse-mode differentiation (``sd.grad``)
    works, with memory growing like ``log(max_steps)``. States are carried
    as in ``sj.while_loop``: ``body_fun`` may write them, ``cond_fun`` may
    only read them. Under ``vmap`` each lane stops on its own condition (the
    finished lanes are masked). Under ``jax.disable_jit()`` the loop runs in
    Python.

    Args:
        cond_fun: ``val -> bool scalar``; the loop runs while it is true.
        body_fun: ``val -> val``; returns the same types as it receives.
        init_val: The initial loop value.
        max_steps: The bound on the number of steps (a non-negative int).
        base: Larger: fewer levels (faster compilation), a little more run
            time and memory. At least 2.

    Returns:
        The final loop value.

    Raises:
        TypeError: if ``max_steps`` or ``base`` is not an int, or ``cond_fun``
            does not return a scalar.
        ValueError: if ``max_steps < 0``, ``base < 2``, or ``cond_fun``
            writes a state.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> steps = sg.ShortTermState(jnp.zeros(()), name="steps")
        >>> def body(v):
        ...     steps.value = steps.value + 1
        ...     return v * 2
        >>> float(sj.bounded_while_loop(lambda v: v < 1000, body, 1.0, max_steps=5))
        32.0
        >>> float(steps.value)
        5.0
    """
    for name, fun in (("cond_fun", cond_fun), ("body_fun", body_fun)):
        if not callable(fun):
            raise TypeError(f"{_API}: {name} must be callable, got {type(fun).__name__} {fun!r}.")
    max_steps = _check_max_steps(max_steps)
    base = check_base(_API, base)
    if jit_disabled():
        try:
            return _eager(cond_fun, body_fun, init_val, max_steps)
        except jax.errors.ConcretizationTypeError:
            pass  # a traced condition (say, under vmap): use the compiled loop
    driver = cached_driver(
        ("bounded_while_loop", cond_fun, body_fun, max_steps, base),
        lambda: _bounded_driver(weak_callable(cond_fun), weak_callable(body_fun), max_steps, base),
    )
    return driver(init_val)
