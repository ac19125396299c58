"""``statejax.cond``: the stateful counterpart of ``jax.lax.cond``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from .compose import StateIO, cached_driver, lifted_for
from .eager import Rollback, concrete, jit_disabled
from .input_checks import check_branches, check_pred
from .stateful import StatefulFunction

__all__ = ["cond"]


def _cond_driver(true_fun: Callable[..., Any], false_fun: Callable[..., Any]) -> StatefulFunction:
    sf_true = lifted_for(true_fun, "statejax.cond")
    sf_false = lifted_for(false_fun, "statejax.cond")

    def driver(pred: Any, *operands: Any) -> Any:
        lt = sf_true.trace(*operands)
        lf = sf_false.trace(*operands)
        check_branches(
            "statejax.cond",
            ["true_fun", "false_fun"],
            [sf_true.fun, sf_false.fun],
            [lt.out_shapes, lf.out_shapes],
        )
        io = StateIO([lt, lf])
        out, new = jax.lax.cond(
            pred, io.pure(sf_true, lt), io.pure(sf_false, lf), io.values(), *operands
        )
        io.write(new)
        return out

    return StatefulFunction(driver, api="statejax.cond")


def cond(
    pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any], *operands: Any
) -> Any:
    """Stateful counterpart of ``jax.lax.cond``.

    Both branches may read and write states; a state written by either branch
    holds the chosen branch's value afterwards (the other branch passes it
    through unchanged). Eager calls run one cached compiled function; the
    branch bodies are traced once per signature. Under ``jax.disable_jit()``
    with a concrete ``pred``, the chosen branch runs directly in Python (as
    ``jax.lax.cond`` does).

    Args:
        pred: Scalar boolean (or integer) predicate.
        true_fun: Called with ``*operands`` when ``pred`` is true.
        false_fun: Called with ``*operands`` otherwise.
        *operands: Arguments of the branches.

    Returns:
        The output of the chosen branch (both must return the same types).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> n = sg.ShortTermState(jnp.zeros(()), name="n")
        >>> def up(x):
        ...     n.value = n.value + x
        ...     return x
        >>> def down(x):
        ...     n.value = n.value - x
        ...     return -x
        >>> float(sj.cond(True, up, down, 2.0)), float(n.value)
        (2.0, 2.0)
        >>> float(sj.cond(False, up, down, 5.0)), float(n.value)
        (-5.0, -3.0)
    """
    check_pred("statejax.cond", pred)
    if jit_disabled() and concrete(pred):  # as jax.lax.cond: run the chosen branch in Python
        with Rollback():
            return true_fun(*operands) if pred else false_fun(*operands)
    driver = cached_driver(("cond", true_fun, false_fun), lambda: _cond_driver(true_fun, false_fun))
    return driver(pred, *operands)
