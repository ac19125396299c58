"""``statejax.for_loop``: a stateful loop over the leading axis of arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .compose import cached_driver
from .eager import jit_disabled
from .progress import ProgressBar, as_progress_bar, pick_progress, progress_key
from .scan import run_eager_scan, scan_states
from .stateful import StatefulFunction
from .weakcache import weak_callable

__all__ = ["for_loop", "for_loop_tick", "for_step"]

_API = "statejax.for_loop"


def for_step(f: Callable[..., Any]) -> Callable[[None, tuple[Any, ...]], tuple[None, Any]]:
    """Return the scan body ``(None, x) -> (None, f(*x))`` of a for loop."""

    def step(carry: None, x: tuple[Any, ...]) -> tuple[None, Any]:
        return carry, f(*x)

    step.__name__ = getattr(f, "__name__", "step")
    return step


def for_loop_tick(bar: ProgressBar | None) -> Callable[..., None] | None:
    """Return the ``tick`` of :func:`~statejax._src.scan.scan_states` for a for loop's bar.

    A for loop has no carry of its own: the bar's ``carry`` is the value of
    the state the body writes (a tuple when it writes several).
    """
    if bar is None:
        return None

    def tick(i: Any, n: int, c: Any, new: Any, y: Any) -> None:
        new = list(new)
        bar.tick(i, n, new[0] if len(new) == 1 else tuple(new), y)

    return tick


def _for_driver(
    f: Callable[..., Any],
    length: int | None,
    reverse: bool,
    unroll: int | bool,
    bar: ProgressBar | None,
) -> StatefulFunction:
    f = weak_callable(f)  # the cached driver must not keep the user's function alive
    sf = StatefulFunction(for_step(f), api=_API)
    tick = for_loop_tick(bar)

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
    pbar: ProgressBar | int | None = None,
    progress_bar: bool | int | ProgressBar = False,
) -> Any:
    """Run ``f`` on each slice of ``xs`` and stack the results (a stateful loop).

    ``f(*x_slices) -> y`` may read and write states, which are carried through
    the loop as in :func:`statejax.scan` and hold their final values
    afterwards. Like ``brainstate.transform.for_loop``. Under
    ``jax.disable_jit()`` the loop runs in Python on concrete values (as
    ``jax.lax.scan`` does), all or nothing.

    Args:
        f: The loop body; called with one slice (along the leading axis) of
            each of ``xs``.
        *xs: Pytrees of arrays to loop over.
        length: The number of iterations; required when ``xs`` is empty.
        reverse: Loop from the last slice to the first (the outputs keep the
            order of ``xs``).
        unroll: How many iterations to unroll per loop step (``True``: all).
        pbar: Show a tqdm progress bar (brainstate's argument): an int (update
            every that many iterations) or a configured
            :class:`statejax.ProgressBar` (``True``: about 20 updates). Works
            inside ``sj.jit`` (an ordered ``jax.debug.callback``; not inside
            ``vmap``). Needs tqdm (a dependency of statejax).
        progress_bar: The former name of ``pbar`` (same values); give one.

    Returns:
        The outputs of ``f``, stacked along a new leading axis.

    Raises:
        ImportError: if ``pbar`` is set and tqdm is not installed.
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
    progress = pick_progress(_API, pbar, progress_bar)
    pkey = progress_key(_API, progress)
    if jit_disabled():
        bar = as_progress_bar(_API, progress)
        tick = None if bar is None else bar.tick
        _, ys = run_eager_scan(_API, for_step(f), None, xs, length, bool(reverse), tick)
        return ys
    key = ("for_loop", f, length, bool(reverse), unroll, pkey)

    def build() -> StatefulFunction:
        return _for_driver(f, length, bool(reverse), unroll, as_progress_bar(_API, progress))

    driver = cached_driver(key, build)
    return driver(*xs)
