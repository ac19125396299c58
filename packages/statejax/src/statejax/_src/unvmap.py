"""``statejax.unvmap``: reduce a value across every enclosing ``vmap`` lane."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["unvmap"]

_API = "statejax.unvmap"


def _reducer(op: str) -> Any:
    reduce = {"any": jnp.any, "all": jnp.all, "max": jnp.max}[op]

    @jax.custom_batching.custom_vmap
    def unbatched(x: Any) -> Any:
        return reduce(x)

    @unbatched.def_vmap
    def _rule(axis_size: int, in_batched: list[bool], x: Any) -> tuple[Any, bool]:
        # The value of every lane is in ``x`` (batched along axis 0, or shared):
        # reduce over all of it, and give every lane the same (unbatched) result.
        return unbatched(x), False

    return unbatched


@jax.custom_batching.custom_vmap
def _unbatch(x: Any) -> Any:
    return x


@_unbatch.def_vmap
def _unbatch_rule(axis_size: int, in_batched: list[bool], x: Any) -> tuple[Any, bool]:
    return _unbatch(x), False  # the whole (batched) array, shared by every lane


_REDUCERS = {op: _reducer(op) for op in ("any", "all", "max")}


def unvmap(x: Any, op: str = "any") -> jax.Array:
    """Combine a value across all lanes of the enclosing ``vmap`` transforms.

    As ``brainstate.transform.unvmap``: inside ``vmap`` (``sj.vmap`` or
    ``jax.vmap``, at any depth), every lane gets the same, unbatched result,
    computed from the values of all lanes; outside ``vmap`` the reduction
    applies to ``x`` itself. ``op='any'`` / ``'all'`` / ``'max'`` reduce over
    every element of every lane to a scalar; ``op='none'`` gives each lane the
    whole batched array (the lanes stacked along the leading axes), unreduced.
    Typical use: a condition that must be one scalar for a host callback or
    ``jax.lax.cond`` even when the code is batched.

    Args:
        x: One array (not a pytree).
        op: ``'any'`` (default), ``'all'``, ``'max'`` or ``'none'``.

    Returns:
        The reduced (unbatched) value.

    Raises:
        ValueError: if ``op`` is not one of the four.
        TypeError: if ``x`` is a pytree with several leaves or not an array.

    Example:
        >>> import jax, jax.numpy as jnp, statejax as sj
        >>> bool(sj.unvmap(jnp.array([False, True])))
        True
        >>> jax.vmap(lambda v: sj.unvmap(v > 2.0, op="any"))(jnp.arange(4.0)).tolist()
        [True, True, True, True]
        >>> jax.vmap(lambda v: sj.unvmap(v, op="max"))(jnp.arange(4.0)).tolist()
        [3.0, 3.0, 3.0, 3.0]
    """
    if not isinstance(op, str) or op not in ("any", "all", "max", "none"):
        raise ValueError(
            f"{_API}: op must be 'any', 'all', 'max' or 'none', got {op!r}."
        )
    leaves = jax.tree.leaves(x)
    if len(leaves) != 1 or leaves[0] is not x:
        if isinstance(x, (bool, int, float, complex)):
            x = jnp.asarray(x)
        else:
            raise TypeError(
                f"{_API}: x must be one array, got {type(x).__name__} with {len(leaves)} "
                "leaves. Fix: call unvmap on each leaf (jax.tree.map)."
            )
    x = jnp.asarray(x)
    if op == "none":
        return _unbatch(x)
    return _REDUCERS[op](x)
