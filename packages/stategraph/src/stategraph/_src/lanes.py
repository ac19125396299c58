"""The per-lane protocol: how a state kind takes part in a map over lanes.

A mapping transform (``statejax.vmap``, ``vmap_new_states``, ``map``) gives
each lane its own slice of the *declared* states and lets the others be
shared by all lanes. A state class may instead say how it is split per lane
by implementing two methods:

- ``split_lanes(n)``: return the state's value for ``n`` lanes, stacked on a
  new leading axis (it may update the state itself: a random state advances
  its key once and returns ``n`` new keys);
- ``merge_lanes(lanes)``: given the per-lane values the mapped function left
  (stacked on the leading axis), return the value the state holds after the
  map (a random state keeps its advanced key and drops the lanes' keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .state import State

__all__ = ["PerLaneState", "merge_lanes", "split_lanes"]


@runtime_checkable
class PerLaneState(Protocol):
    """A state kind that splits itself across the lanes of a map (see the module docs)."""

    def split_lanes(self, n: int) -> Any:
        """Return the value for ``n`` lanes, stacked on a new leading axis."""

    def merge_lanes(self, lanes: Any) -> Any:
        """Return the value after the map, given the lanes' final values."""


def split_lanes(states: Sequence[State], n: int) -> dict[int, Any]:
    """Return ``{id(state): per-lane value}`` for the states that implement the protocol.

    Call it inside the transform's driver (a recorded read and write of each
    such state), for the states the mapped function touches that are not
    declared batched.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import split_lanes
        >>> rng, s = sg.RandomState(0), sg.State(1.0)
        >>> lanes = split_lanes([rng, s], 4)
        >>> list(lanes) == [id(rng)], lanes[id(rng)].shape
        (True, (4,))
    """
    out: dict[int, Any] = {}
    for state in states:
        if callable(getattr(type(state), "split_lanes", None)):
            out[id(state)] = state.split_lanes(n)  # type: ignore[attr-defined]
    return out


def merge_lanes(states: Sequence[State], values: Sequence[Any], lanes: dict[int, Any]) -> list[Any]:
    """Return ``values`` with each per-lane state's entry replaced by its ``merge_lanes``.

    ``states`` and ``values`` are the written states and their new (batched)
    values; ``lanes`` is what :func:`split_lanes` returned.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import merge_lanes, split_lanes
        >>> rng = sg.RandomState(0)
        >>> lanes = split_lanes([rng], 3)
        >>> merge_lanes([rng], [lanes[id(rng)]], lanes)[0] is rng.value
        True
    """
    return [
        state.merge_lanes(value) if id(state) in lanes else value  # type: ignore[attr-defined]
        for state, value in zip(states, values, strict=True)
    ]
