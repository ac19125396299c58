"""``statejax.switch``: the stateful counterpart of ``jax.lax.switch``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from .compose import StateIO, cached_driver, lifted_for
from .eager import Rollback, concrete, jit_disabled
from .input_checks import check_branches, check_index
from .stateful import StatefulFunction

__all__ = ["switch"]

_API = "statejax.switch"


def _switch_driver(branches: tuple[Callable[..., Any], ...]) -> StatefulFunction:
    lifted_fns = [lifted_for(b, _API) for b in branches]

    def driver(index: Any, *operands: Any) -> Any:
        traced = [sf.trace(*operands) for sf in lifted_fns]
        check_branches(
            _API,
            [f"branches[{i}]" for i in range(len(traced))],
            [sf.fun for sf in lifted_fns],
            [lt.out_shapes for lt in traced],
        )
        io = StateIO(traced)
        pures = [io.pure(sf, lt) for sf, lt in zip(lifted_fns, traced, strict=True)]
        out, new = jax.lax.switch(index, pures, io.values(), *operands)
        io.write(new)
        return out

    return StatefulFunction(driver, api=_API)


def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """Stateful counterpart of ``jax.lax.switch``.

    Applies ``branches[index](*operands)``; ``index`` is clamped to
    ``[0, len(branches) - 1]`` as in ``jax.lax.switch``. Every branch may read
    and write states; a state written by any branch holds the chosen branch's
    value afterwards (the others pass it through unchanged). Eager calls run
    one cached compiled function; the branch bodies are traced once per
    signature. Under ``jax.disable_jit()`` with a concrete ``index``, the
    chosen branch runs directly in Python.

    Args:
        index: Scalar integer selecting the branch.
        branches: A non-empty sequence of functions of ``*operands``, all
            returning the same types.
        *operands: Arguments of the branches.

    Returns:
        The output of the chosen branch.

    Raises:
        ValueError: if ``branches`` is empty.
        TypeError: if ``branches`` is not a sequence of callables.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> acc = sg.ShortTermState(jnp.zeros(()), name="acc")
        >>> def add(x):
        ...     acc.value = acc.value + x
        ...     return x
        >>> def mul(x):
        ...     acc.value = acc.value * x
        ...     return 2 * x
        >>> float(sj.switch(0, [add, mul], 3.0)), float(acc.value)
        (3.0, 3.0)
        >>> float(sj.switch(7, [add, mul], 3.0)), float(acc.value)   # clamped to 1
        (6.0, 9.0)
    """
    if callable(branches) or not isinstance(branches, Sequence):
        raise TypeError(
            f"{_API}: branches must be a sequence of callables, got {type(branches).__name__}. "
            "Fix: pass a list, e.g. sj.switch(i, [f, g], x)."
        )
    branches = tuple(branches)
    if not branches:
        raise ValueError(f"{_API}: branches must be a non-empty sequence, got an empty one.")
    for i, b in enumerate(branches):
        if not callable(b):
            raise TypeError(
                f"{_API}: branches[{i}] must be callable, got {type(b).__name__} {b!r}."
            )
    check_index(_API, index)
    if jit_disabled() and concrete(index):  # run the chosen branch in Python
        i = min(max(int(index), 0), len(branches) - 1)
        with Rollback():
            return branches[i](*operands)
    driver = cached_driver(("switch", branches), lambda: _switch_driver(branches))
    return driver(index, *operands)
