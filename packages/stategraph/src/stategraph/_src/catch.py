"""Collecting the states created inside a block of code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from . import context
from .state import State

__all__ = ["NewStates", "catch_new_states"]


class NewStates:
    """The states created inside a :func:`catch_new_states` block, in creation order."""

    def __init__(self, tag: str | None) -> None:
        self.tag = tag
        self.states: list[State] = []

    def _on_create(self, state: State) -> None:
        if self.tag is not None and state.tag is None:
            state.tag = self.tag
        self.states.append(state)

    def __iter__(self) -> Iterator[State]:
        return iter(self.states)

    def __len__(self) -> int:
        return len(self.states)

    def __repr__(self) -> str:
        return f"NewStates(tag={self.tag!r}, states={self.states!r})"


@contextmanager
def catch_new_states(tag: str | None = None) -> Iterator[NewStates]:
    """Collect the states created inside the block (optionally tagging them).

    Args:
        tag: If given, every new state without a tag gets this tag, so it can be
            selected later with ``sg.states(obj, tag)``.

    Yields:
        A :class:`NewStates` collection, filled while the block runs.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> with sg.catch_new_states("init") as new:
        ...     a = sg.State(jnp.zeros(2))
        ...     b = sg.ParamState(jnp.ones(3))
        >>> len(new), a.tag
        (2, {'init'})
    """
    if tag is not None and not isinstance(tag, str):
        raise TypeError(f"catch_new_states(tag=...): the tag must be a str or None, got {tag!r}.")
    catcher = NewStates(tag)
    context.LOCAL.catchers.append(catcher)
    context.ACTIVE.add(1)
    try:
        yield catcher
    finally:
        context.ACTIVE.add(-1)
        context.LOCAL.catchers.remove(catcher)
