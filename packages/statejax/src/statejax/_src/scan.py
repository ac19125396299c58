"""``statejax.scan``: the stateful counterpart of ``jax.lax.scan``."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .compose import StateIO, cached_driver, lifted_for
from .eager import Rollback, jit_disabled
from .input_checks import check_carry, fun_label, promote_weak_init
from .progress import ProgressBar, as_progress_bar, progress_key
from .stateful import StatefulFunction

__all__ = ["run_eager_scan", "scan", "scan_length", "scan_states", "scan_tick"]

_API = "statejax.scan"


def scan_length(api: str, xs: Any, length: int | None) -> int:
    """Return the number of iterations of a scan over ``xs``, validating it."""
    if length is not None:
        try:
            length = operator.index(length)
        except TypeError:
            raise TypeError(
                f"{api}: length must be a Python int or None, got {type(length).__name__} "
                f"{length!r}."
            ) from None
        if length < 0:
            raise ValueError(f"{api}: length must be non-negative, got {length}.")
    sizes: dict[int, str] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(xs):
        aval = jax.typeof(leaf)
        where = f"xs{jax.tree_util.keystr(path)}"
        if aval.ndim == 0:
            raise ValueError(
                f"{api}: every leaf of xs is sliced along its leading axis, but {where} is a "
                f"scalar ({aval.str_short()}). Fix: give it a leading axis, or close over it."
            )
        sizes.setdefault(aval.shape[0], where)
    if length is None:
        if not sizes:
            raise ValueError(
                f"{api}: xs has no arrays, so the number of iterations is unknown. "
                "Fix: pass length=..."
            )
        if len(sizes) > 1:
            shown = ", ".join(f"{w} has {n}" for n, w in sizes.items())
            raise ValueError(f"{api}: the leaves of xs have different leading sizes ({shown}).")
        return next(iter(sizes))
    wrong = {n: w for n, w in sizes.items() if n != length}
    if wrong:
        shown = ", ".join(f"{w} has {n}" for n, w in wrong.items())
        raise ValueError(
            f"{api}: length={length} but the leading axis of xs differs ({shown}). "
            "Fix: drop length, or slice xs to that length."
        )
    return length


def _slice_aval(leaf: Any) -> jax.ShapeDtypeStruct:
    aval = jax.typeof(leaf)
    return jax.ShapeDtypeStruct(aval.shape[1:], aval.dtype, weak_type=aval.weak_type)


def scan_states(
    api: str,
    sf: StatefulFunction,
    init: Any,
    xs: Any,
    length: int | None,
    reverse: bool,
    unroll: int | bool,
    tick: Callable[..., None] | None = None,
) -> tuple[Any, Any]:
    """Run ``jax.lax.scan`` over a lifted ``f(carry, x) -> (carry, y)``, carrying its states.

    Called inside a driver: reads the states (recorded), writes the written
    ones back (recorded). ``tick(i, n, carry, new_state_values, y)``, if
    given, is called inside the loop body after each step, with the iteration
    counter (a traced int32) and the static length.
    """
    n = scan_length(api, xs, length)
    lifted = sf.trace(init, jax.tree.map(_slice_aval, xs))
    out = lifted.out_shapes
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
            f"{api}: f must return a pair (carry, y), but it returns {lifted.out_tree}. "
            "Fix: return `new_carry, y` (y may be None)."
        )
    promoted = promote_weak_init(init, out[0])
    if promoted is not init:  # a weakly typed init takes the body's carry dtype, as in JAX
        init = promoted
        lifted = sf.trace(init, jax.tree.map(_slice_aval, xs))
        out = lifted.out_shapes
    where = "the carry that f returns (the first element of its output)"
    check_carry(api, fun_label(sf.fun), where, init, out[0])
    io = StateIO([lifted])
    run = io.pure(sf, lifted)
    values = io.values()  # read-only states are loop invariants (closed over)

    def body(carry: tuple[Any, ...], x: Any) -> tuple[tuple[Any, ...], Any]:
        i, c, carried = carry
        (c, y), new = run(io.merge(values, carried), c, x)
        if tick is not None:
            tick(i, n, c, new, y)
        return (None if i is None else i + 1, c, new), y

    counter = None if tick is None else jnp.zeros((), jnp.int32)
    (_, carry, carried), ys = jax.lax.scan(
        body,
        (counter, init, io.out_values(values)),
        xs,
        length=n,
        reverse=reverse,
        unroll=unroll,
    )
    io.write(carried)
    return carry, ys


def scan_tick(bar: ProgressBar | None) -> Callable[..., None] | None:
    """Return the ``tick`` of :func:`scan_states` drawing ``bar`` (``carry``: the scan's carry)."""
    if bar is None:
        return None

    def tick(i: Any, n: int, c: Any, new: Any, y: Any) -> None:
        bar.tick(i, n, c, y)

    return tick


def run_eager_scan(
    api: str,
    f: Callable[[Any, Any], Any],
    init: Any,
    xs: Any,
    length: int | None,
    reverse: bool,
    tick: Callable[..., None] | None = None,
) -> tuple[Any, Any]:
    """Under ``jax.disable_jit()``: loop in Python (as ``jax.lax.scan``), writing states directly.

    ``tick(i, n, carry, y)`` (if given) reports each step. All or nothing:
    every state written is put back if an iteration raises.
    """
    n = scan_length(api, xs, length)
    if n == 0:
        raise ValueError(
            f"{api}: a zero-length loop is not supported under jax.disable_jit() (the output "
            "types are unknown without tracing), as in jax.lax.scan."
        )
    counter = [0]

    def body(c: Any, x: Any) -> Any:
        c, y = f(c, x)
        if tick is not None:
            tick(jnp.asarray(counter[0], jnp.int32), n, c, y)
        counter[0] += 1
        return c, y

    with Rollback():
        return jax.lax.scan(body, init, xs, length=n, reverse=reverse)


def _scan_driver(
    f: Callable[[Any, Any], Any],
    length: int | None,
    reverse: bool,
    unroll: int | bool,
    bar: ProgressBar | None,
) -> StatefulFunction:
    sf = lifted_for(f, _API)
    tick = scan_tick(bar)

    def driver(init: Any, xs: Any) -> Any:
        return scan_states(_API, sf, init, xs, length, reverse, unroll, tick)

    return StatefulFunction(driver, api=_API)


def scan(
    f: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    pbar: ProgressBar | int | None = None,
) -> tuple[Any, Any]:
    """Stateful counterpart of ``jax.lax.scan``.

    ``f(carry, x) -> (carry, y)`` may read and write states. The states it
    writes are carried through the loop (as part of the carry) and hold their
    final values afterwards; the states it only reads are loop invariants.
    Eager calls run one cached compiled function; ``f`` is traced once per
    signature.

    Args:
        f: The loop body, ``(carry, x) -> (carry, y)``.
        init: The initial carry (a pytree of arrays).
        xs: A pytree of arrays sliced along the leading axis (or ``None``).
        length: The number of iterations; required when ``xs`` is ``None``.
        reverse: Scan from the end of ``xs`` to the beginning.
        unroll: How many iterations to unroll per loop step (``True``: all).
        pbar: A progress bar (as ``brainstate.transform.scan``): a
            :class:`statejax.ProgressBar`, or an int (the update frequency).

    Under ``jax.disable_jit()`` the loop runs in Python, calling ``f`` on
    concrete values (as ``jax.lax.scan`` does), so ``print`` and ``float``
    work in ``f``; a state written before an iteration raises is put back.

    Returns:
        ``(final_carry, stacked_ys)``, as ``jax.lax.scan``.

    Raises:
        ValueError: if ``length`` and ``xs`` disagree, or neither gives a length.
        TypeError: if ``f`` does not return a pair.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> h = sg.ShortTermState(jnp.zeros(()), name="h")
        >>> def step(c, x):
        ...     h.value = 0.5 * h.value + x
        ...     return c + x, h.value
        >>> c, ys = sj.scan(step, 0.0, jnp.ones(3))
        >>> float(c), ys.tolist(), float(h.value)
        (3.0, [1.0, 1.5, 1.75], 1.75)
    """
    if not callable(f):
        raise TypeError(f"{_API}: f must be callable, got {type(f).__name__} {f!r}.")
    key = progress_key(_API, pbar)
    if jit_disabled():
        bar = as_progress_bar(_API, pbar)
        tick = None if bar is None else bar.tick
        return run_eager_scan(_API, f, init, xs, length, bool(reverse), tick)
    driver = cached_driver(
        ("scan", f, length, bool(reverse), unroll, key),
        lambda: _scan_driver(f, length, bool(reverse), unroll, as_progress_bar(_API, pbar)),
    )
    return driver(init, xs)
