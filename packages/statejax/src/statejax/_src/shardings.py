"""The ``in_shardings`` of the compiled runner behind ``sj.jit(in_shardings=...)``.

The runner takes ``(read-only state values, read-and-written state values,
*args)``; the user's ``in_shardings`` describe ``args`` only. The state
positions get no constraint (``None``), chosen once, when a plan is compiled
(never per call): as for an argument of ``jax.jit`` without ``in_shardings``, a
state whose value is sharded keeps its sharding, an ordinary ``jnp`` array (on
one device, uncommitted) is placed by the compiler, and a written state comes
back with the sharding the compiler gives it, which the next call accepts.
Pinning a state to its current sharding instead would clash with the user's
device set ("incompatible devices") for an ordinary array, and with the next
call's value once the compiler gave the written value another sharding.

A state committed to one device (``jax.device_put(x, device)``), which JAX
refuses next to a mesh, is moved once to the replicated sharding of the
user's mesh (its value is unchanged).

A single ``Sharding`` (not a tuple) applies to every dynamic positional
argument, as in ``jax.jit``.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec, Sharding

from stategraph import State
from stategraph.extend import read_raw, write_raw

__all__ = ["runner_in_shardings"]


def _user_mesh(in_shardings: Any) -> Any:
    """The mesh of the first ``NamedSharding`` in the user's ``in_shardings``, or ``None``."""
    for leaf in jax.tree.leaves(in_shardings, is_leaf=lambda x: isinstance(x, Sharding)):
        if isinstance(leaf, NamedSharding):
            return leaf.mesh
    return None


def _committed_to_one_device(x: Any) -> bool:
    if not isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer):
        return False
    sharding = getattr(x, "sharding", None)
    return (
        bool(getattr(x, "committed", False))
        and isinstance(sharding, Sharding)
        and len(sharding.device_set) == 1
    )


def _replicate(x: jax.Array, replicated: NamedSharding) -> jax.Array:
    # Built from the host value on every process: a device_put from one device to a mesh
    # spanning other processes would be a cross-host transfer, which CPU backends lack.
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, replicated, lambda index: host[index])


def _replicate_committed(states: list[State], mesh: Any) -> None:
    """Move state leaves committed to one device to the mesh, replicated (value unchanged)."""
    replicated = NamedSharding(mesh, PartitionSpec())
    for state in states:
        value = read_raw([state])[0]
        leaves = jax.tree.leaves(value)
        if any(_committed_to_one_device(x) for x in leaves):
            moved = jax.tree.map(
                lambda x: _replicate(x, replicated) if _committed_to_one_device(x) else x, value
            )
            write_raw([state], [moved])


def runner_in_shardings(
    in_shardings: Any,
    states: list[State],
    n_dynamic_args: int,
) -> tuple[Any, ...]:
    """Return the ``in_shardings`` of the runner ``(*state_values, *args)``.

    Args:
        in_shardings: What the user gave ``sj.jit`` (one sharding, or a tuple/list with
            one entry per dynamic positional argument).
        states: The plan's read states, in read order.
        n_dynamic_args: How many non-static positional arguments the traced call has
            (used to repeat a single sharding; a later call with another number of
            positional arguments gets ``jax.jit``'s own error about ``in_shardings``).
    """
    if isinstance(in_shardings, (tuple, list)):
        user = tuple(in_shardings)
    else:  # one Sharding (or PartitionSpec) for every argument, as jax.jit
        user = (in_shardings,) * n_dynamic_args
    mesh = _user_mesh(user)
    if mesh is not None:
        _replicate_committed(states, mesh)
    return (*([None] * len(states)), *user)
