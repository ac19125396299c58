"""``statejax.map``: apply a function over the leading axis, sequentially or in batches."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from stategraph.extend import PerLaneState

from .compose import cached_driver, lifted_for
from .for_loop import for_loop
from .scan import scan_length
from .stateful import StatefulFunction
from .vmap import state_label, vmap
from .weakcache import weak_callable

__all__ = ["map"]

_API = "statejax.map"


def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool):
        raise ValueError(f"{_API}: batch_size must be a positive int or None, got {batch_size!r}.")
    try:
        batch_size = operator.index(batch_size)
    except TypeError:
        raise ValueError(
            f"{_API}: batch_size must be a positive int or None, got "
            f"{type(batch_size).__name__} {batch_size!r}."
        ) from None
    if batch_size < 1:
        raise ValueError(f"{_API}: batch_size must be a positive int or None, got {batch_size}.")
    return batch_size


def _slice_aval(leaf: Any) -> jax.ShapeDtypeStruct:
    aval = jax.typeof(leaf)
    return jax.ShapeDtypeStruct(aval.shape[1:], aval.dtype, weak_type=aval.weak_type)


def _batched_driver(f: Callable[..., Any], batch_size: int) -> StatefulFunction:
    sf = lifted_for(f, _API)

    def driver(*xs: Any) -> Any:
        n = scan_length(_API, xs, None)
        lifted = sf.trace(*jax.tree.map(_slice_aval, xs))
        # Per-lane kinds (random states) are split by sj.vmap: each lane draws its own numbers.
        writes = [s for s in lifted.written_states if not isinstance(s, PerLaneState)]
        if writes:
            names = ", ".join(state_label(s) for s in writes)
            raise ValueError(
                f"{_API}: with batch_size, f runs batched (vmapped), so it must not write "
                f"states, but it writes {names}. Fix: drop batch_size (the sequential map "
                "carries state writes), or use sj.vmap with in_states/out_states."
            )
        mapped = vmap(f)
        full, rest = divmod(n, batch_size)
        parts = []
        if full:
            head = jax.tree.map(
                lambda x: x[: full * batch_size].reshape((full, batch_size, *x.shape[1:])), xs
            )
            ys = for_loop(lambda *block: mapped(*block), *head)
            parts.append(jax.tree.map(lambda y: y.reshape((full * batch_size, *y.shape[2:])), ys))
        if rest:
            parts.append(mapped(*jax.tree.map(lambda x: x[full * batch_size :], xs)))
        if len(parts) == 1:
            return parts[0]
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), *parts)

    return StatefulFunction(driver, api=_API)


def map(f: Callable[..., Any], *xs: Any, batch_size: int | None = None) -> Any:  # noqa: A001
    """Apply ``f`` over the leading axis of ``xs`` and stack the results.

    As ``brainstate.transform.map`` (and ``jax.lax.map``). Without
    ``batch_size`` it runs sequentially (a stateful loop, as
    :func:`statejax.for_loop`: low memory, and ``f`` may read and write
    states, carried from one element to the next). With ``batch_size`` it
    runs ``f`` vectorised (``sj.vmap``) over blocks of ``batch_size``
    elements one block after the other, and the remainder (``len % batch_size``
    elements) as one last smaller block: more throughput, more memory. The
    batched form may read states but not write them (as brainstate), since
    the elements of a block run at once; random states are the exception:
    each element draws its own numbers and the key advances once per block.
    Eager calls run one cached compiled function per signature.

    Args:
        f: The function of one slice of each of ``xs``.
        *xs: Pytrees of arrays with a common leading length.
        batch_size: Elements per vectorised block (``None``: sequential).

    Returns:
        The outputs of ``f``, stacked along a new leading axis.

    Raises:
        ValueError: if the leading lengths of ``xs`` differ or none is
            given, ``batch_size`` is not a positive int, or ``f`` writes a
            state while ``batch_size`` is given.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> scale = sg.ParamState(jnp.asarray(2.0), name="scale")
        >>> xs = jnp.arange(5.0)
        >>> sj.map(lambda x: x * scale.value, xs, batch_size=2).tolist()
        [0.0, 2.0, 4.0, 6.0, 8.0]
        >>> seen = sg.ShortTermState(jnp.zeros(()), name="seen")
        >>> def count(x):
        ...     seen.value = seen.value + 1
        ...     return x + seen.value
        >>> sj.map(count, xs).tolist(), float(seen.value)
        ([1.0, 3.0, 5.0, 7.0, 9.0], 5.0)
    """
    if not callable(f):
        raise TypeError(f"{_API}: f must be callable, got {type(f).__name__} {f!r}.")
    batch_size = _check_batch_size(batch_size)
    if not xs:
        raise ValueError(f"{_API}: give at least one array to map over (*xs is empty).")
    if batch_size is None:
        return for_loop(f, *xs)
    driver = cached_driver(
        ("map", f, batch_size), lambda: _batched_driver(weak_callable(f), batch_size)
    )
    return driver(*xs)
