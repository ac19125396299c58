"""The ``in_shardings`` of the compiled runner behind ``sj.jit(in_shardings=...)``.

The runner takes ``(read-only state values, read-and-written state values,
*args)``; the user's ``in_shardings`` describe ``args`` only, so the state
positions get shardings chosen here, once, when a plan is compiled (never per
call):

- a state leaf whose value spans several devices keeps its sharding;
- a state leaf on one device (an ordinary ``jnp`` array) gets the replicated
  sharding of the user's mesh (when the user gave a ``NamedSharding``), or no
  constraint: giving it its own one-device sharding would clash with the
  user's device set ("incompatible devices").

A single ``Sharding`` (not a tuple) applies to every dynamic positional
argument, as in ``jax.jit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec, Sharding

__all__ = ["runner_in_shardings"]


def _user_mesh(in_shardings: Any) -> Any:
    """The mesh of the first ``NamedSharding`` in the user's ``in_shardings``, or ``None``."""
    for leaf in jax.tree.leaves(in_shardings, is_leaf=lambda x: isinstance(x, Sharding)):
        if isinstance(leaf, NamedSharding):
            return leaf.mesh
    return None


def _state_leaf_sharding(value: Any, mesh: Any) -> Any:
    sharding = getattr(value, "sharding", None)
    if isinstance(sharding, Sharding) and len(sharding.device_set) > 1:
        return sharding
    if mesh is not None:
        return NamedSharding(mesh, PartitionSpec())
    return None


def runner_in_shardings(
    in_shardings: Any,
    state_values: Sequence[Any],
    split: Any,
    n_dynamic_args: int,
) -> tuple[Any, ...]:
    """Return the ``in_shardings`` of the runner ``(ro_values, rw_values, *args)``.

    Args:
        in_shardings: What the user gave ``sj.jit`` (one sharding, or a tuple/list with
            one entry per dynamic positional argument).
        state_values: The current values of the plan's read states, in read order.
        split: The plan's ``split`` (read-order values -> (read-only, read-and-written)).
        n_dynamic_args: How many non-static positional arguments the traced call has.
    """
    if isinstance(in_shardings, (tuple, list)):
        user = tuple(in_shardings)
    else:  # one Sharding (or PartitionSpec) for every argument, as jax.jit
        user = (in_shardings,) * n_dynamic_args
    mesh = _user_mesh(user)
    per_state = [jax.tree.map(lambda x: _state_leaf_sharding(x, mesh), v) for v in state_values]
    ro, rw = split(per_state)
    return (ro, rw, *user)
