"""``statejax.for_loop``: a stateful loop over the leading axis of arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .compose import cached_driver
from .progress import ProgressBar, as_progress_bar, progress_key
from .scan import scan_states
from .stateful import StatefulFunction
from .weakcache import weak_callable

__all__ = ["for_loop"]

_API = "statejax.for_loop"


def _for_driver(
    f: Callable[..., Any],
    length: int | None,
    reverse: bool,
    unroll: int | bool,
    bar: ProgressBar | None,
) -> StatefulFunction:
    f = weak_callable(f)  # the cached driver must not keep the user's function alive

    def step(carry: None, x: tuple[Any, ...]) -> tuple[None, Any]:
        return carry, f(*x)

    step.__name__ = getattr(f, "__name__", "step")
    sf = StatefulFunction(step, api=_API)
    tick = None if bar is None else bar.tick

    def driver(*xs: Any) -> Any:
        _, ys = scan_states(_API, sf, None, xs, length, reverse, unroll, tick)
        return ys

    return StatefulFunction(driver, api=_API)


def for_loop(
    f: Callable[..., Any],
    *xs: Any,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    progress_bar: bool | int | ProgressBar = False,
) -> Any:
    """Run ``f`` on each slice of ``xs`` and stack the results (a stateful loop).

    ``f(*x_slices) -> y`` may read and write states, which are carried through
    the loop as in :func:`statejax.scan` and hold their final values
    afterwards. Like ``brainstate.transform.for_loop``.

    Args:
        f: The loop body; called with one slice (along the leading axis) of
            each of ``xs``.
        *xs: Pytrees of arrays to loop over.
        length: The number of iterations; required when ``xs`` is empty.
        reverse: Loop from the last slice to the first (the outputs keep the
            order of ``xs``).
        unroll: How many iterations to unroll per loop step (``True``: all).
        progress_bar: Show a tqdm progress bar: ``True`` (about 20 updates),
            an int (update every that many iterations) or a configured
            :class:`statejax.ProgressBar`. Works inside ``sj.jit`` (an ordered
            ``jax.debug.callback``; not inside ``vmap``). Needs tqdm
            (``pip install tqdm``; it is a dependency of statejax).

    Returns:
        The outputs of ``f``, stacked along a new leading axis.

    Raises:
        ImportError: if ``progress_bar`` is set and tqdm is not installed.
        ValueError: if the lengths of ``xs`` disagree or none is given.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> total = sg.ShortTermState(jnp.zeros(()), name="total")
        >>> def add(x, w):
        ...     total.value = total.value + x * w
        ...     return total.value
        >>> sj.for_loop(add, jnp.arange(4.0), jnp.full(4, 2.0)).tolist(), float(total.value)
        ([0.0, 2.0, 6.0, 12.0], 12.0)
    """
    if not callable(f):
        raise TypeError(f"{_API}: f must be callable, got {type(f).__name__} {f!r}.")
    key = ("for_loop", f, length, bool(reverse), unroll, progress_key(_API, progress_bar))

    def build() -> StatefulFunction:
        bar = as_progress_bar(_API, progress_bar)
        return _for_driver(f, length, bool(reverse), unroll, bar)

    driver = cached_driver(key, build)
    return driver(*xs)
