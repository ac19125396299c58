"""``statejax.checkpointed_scan`` / ``checkpointed_for_loop``: loops with log-memory gradients."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .compose import StateIO, cached_driver, lifted_for
from .eager import jit_disabled
from .for_loop import for_loop_tick, for_step
from .nested import check_base, level_sizes, match_types, nested_scan
from .progress import ProgressBar, as_progress_bar, progress_key
from .scan import run_eager_scan, scan_length, scan_tick
from .stateful import StatefulFunction
from .weakcache import weak_callable

__all__ = ["checkpointed_for_loop", "checkpointed_scan", "checkpointed_states"]


def _slice_aval(leaf: Any) -> jax.ShapeDtypeStruct:
    aval = jax.typeof(leaf)
    return jax.ShapeDtypeStruct(aval.shape[1:], aval.dtype, weak_type=aval.weak_type)


def _take(xs: Any, i: Any, n: int) -> Any:
    """Slice ``i`` of every leaf of ``xs`` (clamped: the padding steps read the last one)."""
    k = jnp.minimum(i, n - 1)
    return jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, k, keepdims=False), xs)


def checkpointed_states(
    api: str,
    sf: StatefulFunction,
    init: Any,
    xs: Any,
    length: int | None,
    base: int,
    tick: Callable[..., None] | None = None,
) -> tuple[Any, Any]:
    """Scan a lifted ``f(carry, x)`` as nested checkpointed scans, carrying its states.

    Called inside a driver, like :func:`~statejax._src.scan.scan_states`;
    the steps past ``length`` (the nested loops cover a little more) are
    skipped with ``jax.lax.cond`` and their outputs dropped. The body reads
    its slice of ``xs`` by index, so ``xs`` is neither copied nor saved per
    step for the backward pass.
    """
    n = scan_length(api, xs, length)
    lifted = sf.trace(init, jax.tree.map(_slice_aval, xs))
    out = lifted.out_shapes
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
            f"{api}: f must return a pair (carry, y), but it returns {lifted.out_tree}. "
            "Fix: return `new_carry, y` (y may be None)."
        )
    init = match_types(api, "a carry", init, out[0])
    io = StateIO([lifted])
    run = io.pure(sf, lifted)
    values = io.values()  # read-only states are loop invariants (closed over)
    sizes = level_sizes(n, base)
    total = math.prod(sizes)

    def real(i: Any, c: Any, carried: list[Any], x: Any) -> Any:
        (c, y), new = run(io.merge(values, carried), c, x)
        c = match_types(api, "a carry", c, out[0])
        if tick is not None:
            tick(i, n, c, new, y)
        return (c, new), y

    def step(carry: tuple[Any, ...], _: Any) -> tuple[tuple[Any, ...], Any]:
        # ``xs`` is read by index (not scanned over), so no padded copy of it is made.
        i, c, carried = carry
        x = _take(xs, i, n)
        if total == n:
            (c, carried), y = real(i, c, carried, x)
        else:

            def skip(i: Any, c: Any, carried: list[Any], x: Any) -> Any:
                zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out[1])
                return (c, carried), zeros

            (c, carried), y = jax.lax.cond(i < n, real, skip, i, c, carried, x)
        return (i + 1, c, carried), y

    start = (jnp.zeros((), jnp.int32), init, io.out_values(values))
    (_, carry, carried), ys = nested_scan(step, start, None, sizes)
    if total != n:
        ys = jax.tree.map(lambda y: y[:n], ys)
    io.write(carried)
    return carry, ys


_SCAN = "statejax.checkpointed_scan"
_FOR = "statejax.checkpointed_for_loop"


def _scan_driver(
    f: Callable[..., Any], length: int | None, base: int, bar: ProgressBar | None
) -> StatefulFunction:
    sf = lifted_for(f, _SCAN)
    tick = scan_tick(bar)

    def driver(init: Any, xs: Any) -> Any:
        return checkpointed_states(_SCAN, sf, init, xs, length, base, tick)

    return StatefulFunction(driver, api=_SCAN)


def checkpointed_scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any,
    length: int | None = None,
    base: int = 16,
    pbar: ProgressBar | int | None = None,
) -> tuple[Any, Any]:
    """:func:`statejax.scan` whose reverse-mode memory grows like ``log(length)``.

    As ``brainstate.transform.checkpointed_scan``: the same results as
    ``sj.scan`` (states carried and written back the same way), but the loop
    runs as ``ceil(log_base(length))`` nested scans of at most ``base`` steps,
    each level ``jax.checkpoint``-ed. Differentiating through it stores about
    ``base * log_base(length)`` carries instead of every step's
    intermediates, and recomputes the rest in the backward pass (a little
    more compute, much less memory for long loops). Under
    ``jax.disable_jit()`` the loop runs in Python, as ``sj.scan`` does.

    Args:
        f: The loop body, ``(carry, x) -> (carry, y)``.
        init: The initial carry.
        xs: A pytree of arrays sliced along the leading axis (or ``None``).
        length: The number of iterations; required when ``xs`` is ``None``.
        base: The largest number of steps per nesting level (at least 2).
        pbar: A progress bar: a :class:`statejax.ProgressBar` or an int (the
            update frequency).

    Returns:
        ``(final_carry, stacked_ys)``, as ``sj.scan``.

    Raises:
        ValueError: if ``length`` and ``xs`` disagree, or ``base < 2``.
        TypeError: if ``f`` does not return a pair.

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> h = sg.ShortTermState(jnp.zeros(()), name="h")
        >>> def step(c, x):
        ...     h.value = 0.5 * h.value + x
        ...     return c + x, h.value
        >>> c, ys = sj.checkpointed_scan(step, 0.0, jnp.ones(5), base=2)
        >>> float(c), ys.tolist(), float(h.value)
        (5.0, [1.0, 1.5, 1.75, 1.875, 1.9375], 1.9375)
    """
    if not callable(f):
        raise TypeError(f"{_SCAN}: f must be callable, got {type(f).__name__} {f!r}.")
    base = check_base(_SCAN, base)
    key = progress_key(_SCAN, pbar)
    if jit_disabled():
        bar = as_progress_bar(_SCAN, pbar)
        return run_eager_scan(_SCAN, f, init, xs, length, False, None if bar is None else bar.tick)
    driver = cached_driver(
        ("checkpointed_scan", f, length, base, key),
        lambda: _scan_driver(weak_callable(f), length, base, as_progress_bar(_SCAN, pbar)),
    )
    return driver(init, xs)


def _for_driver(
    f: Callable[..., Any], length: int | None, base: int, bar: ProgressBar | None
) -> StatefulFunction:
    sf = StatefulFunction(for_step(f), api=_FOR)
    tick = for_loop_tick(bar)

    def driver(*xs: Any) -> Any:
        _, ys = checkpointed_states(_FOR, sf, None, xs, length, base, tick)
        return ys

    return StatefulFunction(driver, api=_FOR)


def checkpointed_for_loop(
    f: Callable[..., Any],
    *xs: Any,
    length: int | None = None,
    base: int = 16,
    pbar: ProgressBar | int | None = None,
) -> Any:
    """:func:`statejax.for_loop` whose reverse-mode memory grows like ``log(length)``.

    As ``brainstate.transform.checkpointed_for_loop``: ``f(*x_slices) -> y``
    on each slice, states carried, outputs stacked, run as nested
    checkpointed scans (see :func:`statejax.checkpointed_scan`).

    Args:
        f: The loop body.
        *xs: Pytrees of arrays to loop over.
        length: The number of iterations; required when ``xs`` is empty.
        base: The largest number of steps per nesting level (at least 2).
        pbar: A progress bar: a :class:`statejax.ProgressBar` or an int.

    Returns:
        The outputs of ``f``, stacked along a new leading axis.

    Raises:
        ValueError: if the lengths of ``xs`` disagree or none is given, or
            ``base < 2``.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> total = sg.ShortTermState(jnp.zeros(()), name="total")
        >>> def add(x):
        ...     total.value = total.value + x
        ...     return total.value
        >>> sj.checkpointed_for_loop(add, jnp.arange(4.0), base=2).tolist(), float(total.value)
        ([0.0, 1.0, 3.0, 6.0], 6.0)
    """
    if not callable(f):
        raise TypeError(f"{_FOR}: f must be callable, got {type(f).__name__} {f!r}.")
    base = check_base(_FOR, base)
    key = progress_key(_FOR, pbar)
    if jit_disabled():
        bar = as_progress_bar(_FOR, pbar)
        tick = None if bar is None else bar.tick
        _, ys = run_eager_scan(_FOR, for_step(f), None, xs, length, False, tick)
        return ys
    driver = cached_driver(
        ("checkpointed_for_loop", f, length, base, key),
        lambda: _for_driver(weak_callable(f), length, base, as_progress_bar(_FOR, pbar)),
    )
    return driver(*xs)
