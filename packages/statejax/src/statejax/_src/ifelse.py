"""``statejax.ifelse``: multi-way ``if``/``elif``/``else`` over states."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from .checks import jit_error_if
from .eager import concrete
from .switch import switch

__all__ = ["ifelse"]

_API = "statejax.ifelse"


def _conditions(conditions: Any, n: int, xp: Any = jnp) -> Any:
    """Return the conditions as one bool vector of length ``n``, validating them.

    ``xp`` is ``numpy`` for concrete conditions (decided on the host, no
    device work) and ``jax.numpy`` for traced ones.
    """
    if isinstance(conditions, (list, tuple)):
        items = [xp.asarray(c) for c in conditions]
        for i, c in enumerate(items):
            if c.ndim != 0:
                raise ValueError(
                    f"{_API}: every condition must be a scalar, but conditions[{i}] has shape "
                    f"{tuple(c.shape)}. Fix: reduce it (e.g. with .all() or .any())."
                )
        cond = xp.stack(items) if items else xp.zeros((0,), bool)
    else:
        try:
            cond = xp.asarray(conditions)
        except TypeError:
            raise TypeError(
                f"{_API}: conditions must be a sequence of boolean scalars or a 1-D boolean "
                f"array, got {type(conditions).__name__} {conditions!r}."
            ) from None
        if cond.ndim != 1:
            raise ValueError(
                f"{_API}: conditions as an array must be 1-D (one entry per branch), got shape "
                f"{tuple(cond.shape)}."
            )
    if cond.shape[0] != n:
        raise ValueError(
            f"{_API}: the number of conditions ({cond.shape[0]}) must equal the number of "
            f"branches ({n})."
        )
    if not (np.issubdtype(cond.dtype, np.bool_) or np.issubdtype(cond.dtype, np.integer)):
        raise TypeError(
            f"{_API}: conditions must be booleans, got dtype {cond.dtype}. Fix: compare, e.g. "
            "x > 0."
        )
    return cond.astype(bool)


def _not_exactly_one(cond: Any) -> None:
    raise ValueError(
        f"{_API}: with check_cond=True exactly one condition must be True, but got "
        f"{np.asarray(cond).astype(int).tolist()}. Fix: make the conditions mutually "
        "exclusive and exhaustive, or pass check_cond=False (the first true condition wins, "
        "the last branch when none is true)."
    )


def ifelse(
    conditions: Sequence[Any] | Any,
    branches: Sequence[Callable[..., Any]],
    *operands: Any,
    check_cond: bool = True,
) -> Any:
    """Run the branch whose condition holds: a multi-way, stateful ``if``/``elif``/``else``.

    As ``brainstate.transform.ifelse``. The conditions are evaluated
    together: with ``check_cond=True`` (the default) exactly one must be
    true, else the call raises ``ValueError`` (right away for concrete
    conditions; inside ``sj.jit`` when the compiled code runs, as a
    ``jax.errors.JaxRuntimeError``, writing no state). With
    ``check_cond=False`` the first true condition wins, and the last branch
    runs when none is true. Branches may read and write states, as in
    :func:`statejax.switch` (on which it is built, so it nests and batches
    the same way: under ``vmap`` with per-lane conditions every branch runs
    and the results are selected per lane).

    Args:
        conditions: A sequence of boolean scalars, or a 1-D boolean array,
            one per branch.
        branches: At least two functions of ``*operands`` returning the
            same types.
        *operands: Arguments of the branches.
        check_cond: Check that exactly one condition holds.

    Returns:
        The chosen branch's output.

    Raises:
        ValueError: if the numbers of conditions and branches differ, there
            are fewer than two branches, or (``check_cond``) not exactly one
            condition holds.
        TypeError: if a branch is not callable or the conditions are not
            booleans.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> seen = sg.ShortTermState(jnp.zeros(()), name="seen")
        >>> def grade(a):
        ...     def big():
        ...         seen.value = seen.value + 1
        ...         return 2.0
        ...     return sj.ifelse([a > 5, (a > 0) & (a <= 5), a <= 0],
        ...                      [big, lambda: 1.0, lambda: 0.0])
        >>> float(grade(jnp.asarray(7.0))), float(grade(jnp.asarray(-1.0))), float(seen.value)
        (2.0, 0.0, 1.0)
    """
    if callable(branches) or not isinstance(branches, Sequence):
        raise TypeError(
            f"{_API}: branches must be a sequence of callables, got {type(branches).__name__}."
        )
    branches = tuple(branches)
    if len(branches) < 2:
        raise ValueError(
            f"{_API}: at least two branches are needed, got {len(branches)}. Fix: use "
            "sj.cond for if/else, or call the function directly."
        )
    for i, b in enumerate(branches):
        if not callable(b):
            raise TypeError(f"{_API}: branches[{i}] must be callable, got {type(b).__name__}.")
    if concrete(conditions):  # decide on the host: one compiled switch call, no device work
        flags = _conditions(conditions, len(branches), np).tolist()
        if check_cond and sum(flags) != 1:
            _not_exactly_one(flags)
        index = flags.index(True) if any(flags) else len(branches) - 1
        return switch(index, branches, *operands)
    cond = _conditions(conditions, len(branches))
    if check_cond:
        jit_error_if(jnp.sum(cond.astype(jnp.int32)) != 1, _not_exactly_one, cond)
    # The first true condition, or the last branch when none holds.
    index = jnp.where(jnp.any(cond), jnp.argmax(cond), len(branches) - 1)
    return switch(index, branches, *operands)

