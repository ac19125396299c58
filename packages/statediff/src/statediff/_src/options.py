"""Validating ``grad_states`` and ``argnums`` the way users wrote them."""

from __future__ import annotations

import weakref
from typing import Any

import jax
import numpy as np

from stategraph import State
from stategraph.extend import name_from_path

__all__ = ["GradStates", "Argnums"]


def _is_state(x: Any) -> bool:
    return isinstance(x, State)


def _dotted(path: tuple[Any, ...]) -> str | None:
    """``layers.0.w`` for a path through dicts (``None`` if no dict key is on it)."""
    if not any(isinstance(k, jax.tree_util.DictKey) for k in path):
        return None
    parts = [str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path]
    return ".".join(parts)


class GradStates:
    """The states to differentiate, in the container the user gave.

    Attributes:
        given: Whether ``grad_states`` was given at all.
        states: The states, flattened in the container's pytree order.
        treedef: The container's structure, with each State as one leaf.
    """

    def __init__(self, api: str, grad_states: Any, weak: bool = False) -> None:
        self.given = grad_states is not None
        self._refs: tuple[weakref.ref, ...] | None = None
        if not self.given:
            self._states: list[State] = []
            self.treedef = jax.tree.structure(None)
            return
        leaves, treedef = jax.tree.flatten(grad_states, is_leaf=_is_state)
        paths = jax.tree_util.tree_leaves_with_path(grad_states, is_leaf=_is_state)
        for (path, leaf), _ in zip(paths, leaves, strict=True):
            if not isinstance(leaf, State):
                where = jax.tree_util.keystr(path) or "grad_states"
                raise TypeError(
                    f"{api}: grad_states must be a State, a sequence of States or a dict of "
                    f"States (nested containers allowed), but {where} is "
                    f"{type(leaf).__name__} {leaf!r}. Fix: pass the State objects themselves "
                    "(e.g. `grad_states=model.w`, not `model.w.value`)."
                )
        if not leaves:
            raise ValueError(
                f"{api}: grad_states={grad_states!r} holds no State. Fix: pass at least one "
                "State, or leave grad_states=None and use argnums."
            )
        first: dict[int, str] = {}
        for path, leaf in paths:
            where = jax.tree_util.keystr(path) or "grad_states"
            if id(leaf) in first:
                raise ValueError(
                    f"{api}: grad_states holds {leaf!r} twice (at {first[id(leaf)]} and "
                    f"{where}); its derivative would be split between the two places. "
                    "Fix: list each State once."
                )
            first[id(leaf)] = where
            dotted = _dotted(path)
            if dotted is not None:  # an unnamed state is shown by its key in messages
                name_from_path(leaf, dotted)
        self.treedef = treedef
        if weak:  # held by a cache: the states may be garbage-collected
            self._refs = tuple(weakref.ref(s) for s in leaves)
            self._states = []
        else:
            self._states = leaves

    @property
    def states(self) -> list[State]:
        """The states, flattened in the container's pytree order."""
        if self._refs is None:
            return self._states
        states = [r() for r in self._refs]
        if any(s is None for s in states):
            raise ReferenceError("a state of grad_states was garbage-collected")
        return states  # type: ignore[return-value]

    def unflatten(self, values: list[Any]) -> Any:
        """Put per-state values back into the user's container."""
        return jax.tree.unflatten(self.treedef, values)

    def flatten(self, tree: Any) -> list[Any]:
        """Split a container of per-state values into a list (inverse of unflatten)."""
        return self.treedef.flatten_up_to(tree)


class Argnums:
    """Positional arguments to differentiate, remembering how the user wrote them.

    Attributes:
        given: Whether argnums were given (or defaulted to 0).
        positions: The positions as a tuple.
        is_int: Whether the user gave a single int (bare result, as JAX).
        text: The user's own spelling, quoted in error messages.
    """

    def __init__(self, api: str, argnums: Any, default_zero: bool) -> None:
        self.text = repr(argnums)
        if argnums is None:
            if default_zero:
                argnums = 0
                self.text = "0 (the default)"
            else:
                self.given, self.positions, self.is_int = False, (), False
                return
        self.given = True
        if isinstance(argnums, bool):
            raise ValueError(self._bad(api, "it is a bool"))
        if isinstance(argnums, (int, np.integer)):
            self.is_int, items = True, (int(argnums),)
        else:
            self.is_int = False
            try:
                items = tuple(argnums)
            except TypeError:
                raise TypeError(
                    f"{api}: argnums must be an int or a sequence of ints, got "
                    f"{type(argnums).__name__} {argnums!r}."
                ) from None
            if not items:
                raise ValueError(self._bad(api, "it is empty"))
        for i in items:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise ValueError(self._bad(api, f"{i!r} is not an int"))
            if i < 0:
                raise ValueError(self._bad(api, f"{i} is negative"))
        if len(set(items)) != len(items):
            raise ValueError(self._bad(api, "it repeats a position"))
        self.positions = tuple(int(i) for i in items)

    def _bad(self, api: str, why: str) -> str:
        return (
            f"{api}: argnums={self.text} is invalid: {why}. Rule: argnums is a non-negative "
            "int or a non-empty sequence of distinct non-negative ints, counting positional "
            "arguments from 0. Fix: e.g. argnums=0 or argnums=(0, 2)."
        )

    def check_range(self, api: str, n_args: int) -> None:
        """Raise ``ValueError`` if a position is not below the number of arguments."""
        bad = [i for i in self.positions if i >= n_args]
        if bad:
            raise ValueError(
                f"{api}: argnums={self.text} refers to positional argument {bad[0]}, but the "
                f"function was called with {n_args} positional argument(s). Fix: pass the "
                "argument positionally or change argnums."
            )
