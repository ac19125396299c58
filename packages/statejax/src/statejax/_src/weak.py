"""Weak types and state values: a state's value is typed by its dtype.

JAX marks values made from Python scalars as *weakly typed*
(``jnp.asarray(1.0)``, ``jnp.full(n, 0.0)``): they take the dtype of what
they meet. ``jax.jit`` keys its cache on that flag, so a model whose states
start weak-typed and are written back strong would compile twice. The
compiled stateful call (``statejax.jit``) therefore makes the values of the
states it reads strongly typed on its first call (same dtype, same
numbers, the flag dropped) and writes strongly typed values back: a state
then promotes like an array of its dtype, whatever made its first value,
and a model compiles once per signature. (The trace of that first call
is kept: it saw the weak values, which matters only where a weak value
meets a narrower dtype, say a weak ``float32`` state and a ``bfloat16``
argument; later traces see the strong value.)
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from stategraph.extend import read_raw, write_raw

from .plan import Lifted
from .signature import aval_key

__all__ = ["canonicalize_weak", "strong_types"]


def _strong(x: Any) -> Any:
    if not (getattr(x, "weak_type", False) and isinstance(x, jax.Array)):
        return x
    if isinstance(x, jax.core.Tracer) or not x.is_fully_addressable:
        return jax.lax.convert_element_type(x, x.dtype)
    # A concrete array: copy it through NumPy, which compiles nothing. An
    # uncommitted array stays uncommitted (free to join any mesh).
    if not getattr(x, "committed", True):
        return jax.device_put(np.asarray(x))
    return jax.device_put(np.asarray(x), x.sharding)


def _has_weak_array(value: Any) -> bool:
    return any(
        isinstance(leaf, jax.Array) and getattr(leaf, "weak_type", False)
        for leaf in jax.tree.leaves(value)
    )


def canonicalize_weak(lifted: Lifted) -> bool:
    """Make the weakly typed array values of ``lifted``'s read states strong.

    Called outside every trace only. Returns whether a state changed.
    """
    if not any(key[2] for key in lifted.state_avals):
        return False
    states = lifted.plan.read_states() or []
    weak = [s for s in states if _has_weak_array(read_raw([s])[0])]
    if not weak:
        return False
    write_raw(weak, [jax.tree.map(_strong, v) for v in read_raw(weak)])
    # The kept trace now describes the strong values (its jaxpr evaluates
    # them as it did the weak ones), so the next call finds it.
    leaves = jax.tree.leaves(read_raw(states))
    lifted.state_avals = tuple(aval_key(jax.typeof(x)) for x in leaves)
    return True


def strong_types(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the weak type of every leaf of the written values (inside the trace)."""
    return tuple(jax.tree.map(_strong, v) for v in values)
