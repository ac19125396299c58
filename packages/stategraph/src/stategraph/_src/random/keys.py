"""Turning seeds, raw ``PRNGKey`` arrays and typed keys into typed PRNG keys."""

from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["fresh_seed", "is_typed_key", "to_key"]


def is_typed_key(x: Any) -> bool:
    """Whether ``x`` is a typed PRNG key array (made by ``jax.random.key``)."""
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def fresh_seed() -> int:
    """An unpredictable seed (from NumPy's global generator, as brainstate does)."""
    return int(np.random.randint(0, 2**31 - 1))


def to_key(api: str, seed_or_key: Any) -> Any:
    """Return a typed key for an int seed, a typed key or a raw ``uint32[2]`` key.

    Raises:
        TypeError: for anything else (the message shows what was received).
    """
    x = seed_or_key
    if is_typed_key(x):
        return x
    if isinstance(x, bool):
        raise TypeError(f"{api}: a seed must be an int or a PRNG key, got the bool {x!r}.")
    if isinstance(x, (int, np.integer)):
        return jax.random.key(operator.index(x))
    dtype = getattr(x, "dtype", None)
    shape = tuple(getattr(x, "shape", ()))
    if dtype is not None and jnp.issubdtype(dtype, jnp.integer):
        if shape == ():
            return jax.random.key(x)
        if shape == (2,) and jnp.dtype(dtype) == jnp.uint32:
            return jax.random.wrap_key_data(x)
        if shape[-1:] == (2,) and jnp.dtype(dtype) == jnp.uint32:
            return jax.random.wrap_key_data(x)
    shown = f"{type(x).__name__}" + (f" of dtype {dtype} and shape {shape}" if dtype else "")
    raise TypeError(
        f"{api}: expected an int seed, a typed key (jax.random.key(0)) or a raw key "
        f"(jax.random.PRNGKey(0), uint32[2]), got {shown}. Fix: pass one of those."
    )
