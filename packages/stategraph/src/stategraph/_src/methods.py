"""brainstate's State methods: copies, restores, tags, element counts, references."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from . import context
from .access import visible as _visible
from .structure import describe, has_tracer

if TYPE_CHECKING:
    from .state import State
    from .treefy import TreefyState

__all__ = ["StateMethods", "normalize_tag"]

_MISSING: Any = object()
# Entries of a state's __dict__ that belong to the object, not to its value or metadata.
_OWN = ("_hooks_manager", "_path", "_level")


def normalize_tag(api: str, tag: Any) -> set[str] | None:
    """Return ``tag`` (``None``, a str or an iterable of str) as a set of str, or ``None``."""
    if tag is None:
        return None
    if isinstance(tag, str):
        return {tag}
    if isinstance(tag, Iterable):
        tags = set(tag)
        if all(isinstance(t, str) for t in tags):
            return tags
    raise TypeError(
        f"{api}: a tag must be a str, an iterable of str or None, got "
        f"{type(tag).__name__} {tag!r}. Fix: pass tag='my_tag'."
    )


class StateMethods:
    """Methods of :class:`~stategraph.State` with brainstate's semantics (mixed in)."""

    __slots__ = ()

    # ------------------------------------------------------------------ tags
    @property
    def tag(self: State) -> set[str] | None:
        """The state's tags, a set of str (``None`` when it has none).

        Filters given a tag string (``sg.states(obj, "fast")``) match a state
        whose tags contain it.
        """
        return self._metadata.get("tag")

    @tag.setter
    def tag(self: State, tag: Any) -> None:
        self._metadata["tag"] = normalize_tag(f"{type(self).__name__}.tag", tag)

    def add_tag(self: State, *tags: str) -> None:
        """Add one or more tags to the state.

        Example:
            >>> import stategraph as sg
            >>> s = sg.State(0.0, tag="a")
            >>> s.add_tag("b", "c"); sorted(s.tag)
            ['a', 'b', 'c']
        """
        new = normalize_tag(f"{type(self).__name__}.add_tag", tags) or set()
        self._metadata["tag"] = (self._metadata.get("tag") or set()) | new

    # ------------------------------------------------------------- stack level
    @property
    def stack_level(self: State) -> int:
        """How many state traces of its thread were open when the state was made."""
        return self.__dict__.get("_level", 0)

    @stack_level.setter
    def stack_level(self: State, level: int) -> None:
        self.__dict__["_level"] = int(level)

    def increase_stack_level(self: State) -> None:
        """Add one to :attr:`stack_level`.

        Example:
            >>> import stategraph as sg
            >>> s = sg.State(0.0); s.increase_stack_level(); s.stack_level
            1
        """
        self.stack_level = self.stack_level + 1

    def decrease_stack_level(self: State) -> None:
        """Subtract one from :attr:`stack_level` (never below zero).

        Example:
            >>> import stategraph as sg
            >>> s = sg.State(0.0); s.decrease_stack_level(); s.stack_level
            0
        """
        self.stack_level = max(self.stack_level - 1, 0)

    # ------------------------------------------------------------------ values
    def restore_value(self: State, v: Any) -> None:
        """Set the value without recording a write (brainstate's ``restore_value``).

        The new value must have the old value's tree structure. Inside a
        transform it counts as a read, not a write: the transform does not
        carry the restored value out (use it to undo a change made inside
        the same traced function). ``restore`` hooks run after the value is set.

        Raises:
            TypeError: if ``v`` is a State.
            ValueError: if the tree structure differs.

        Example:
            >>> import stategraph as sg
            >>> s = sg.State(1.0)
            >>> with sg.StateTrace() as t:
            ...     s.restore_value(2.0)
            >>> s.value, t.written_states
            (2.0, ())
        """
        from .access import check_tracer_context, record_read, visible, write_visible
        from .hook_registry import run_restore
        from .hooks import HOOKS

        self._check_value(v)
        held = visible(self)
        if jax.tree.structure(v) != jax.tree.structure(held):
            raise ValueError(
                f"{type(self).__name__}.restore_value: {self._label_typed()} holds "
                f"{describe(held)}, but the restored value {describe(v)} has another "
                "tree structure. Fix: restore a value of the same structure."
            )
        if context.ACTIVE.count:
            record_read(self)
        if has_tracer(v):
            check_tracer_context(self, v, context.LOCAL.traces)
        old = held
        write_visible(self, v)
        if HOOKS.count:
            run_restore(self, v, old)

    def value_call(self: State, func: Callable[[Any], Any]) -> Any:
        """Return ``jax.tree.map(func, self.value)``.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg
            >>> sg.State({"a": jnp.ones(2)}).value_call(lambda x: x * 3)["a"].tolist()
            [3.0, 3.0]
        """
        return jax.tree.map(func, self.value)

    def numel(self: State) -> int:
        """Return the total number of elements of the value's leaves.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg
            >>> sg.State({"w": jnp.ones((2, 3)), "b": jnp.ones(3)}).numel()
            9
        """
        return int(sum(np.size(x) for x in jax.tree.leaves(_visible(self))))

    # ----------------------------------------------------------------- copies
    def _clone(self: State, value: Any) -> State:
        """A new state of the same type, metadata and extra attributes, holding ``value``."""
        cls = type(self)
        obj = cls.__new__(cls)
        for key, item in self.__dict__.items():
            if key not in _OWN:
                obj.__dict__[key] = item
        obj._name = self._name
        obj._metadata = dict(self._metadata)
        if isinstance(obj._metadata.get("tag"), set):
            obj._metadata["tag"] = set(obj._metadata["tag"])
        obj._value = value
        obj._birth = 0
        obj._born()
        return obj

    def copy(self: State) -> State:
        """Return a new state of the same type with the same value and metadata.

        The copy has no hooks and is a new identity: transforms see two states.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg
            >>> a = sg.ParamState(jnp.ones(2), name="a")
            >>> b = a.copy(); b.value = b.value * 0
            >>> b, float(a.value[0])
            (ParamState(name='a', value=f32[2]), 1.0)
        """
        return self._clone(self.value)

    def copy_from(self: State, other: State) -> None:
        """Take the value, name and metadata of ``other`` (of the same type).

        The value is written like ``self.value = other.value`` (recorded by
        transforms, hooks run); this state keeps its own hooks.

        Raises:
            ValueError: if ``other`` is of another type.

        Example:
            >>> import stategraph as sg
            >>> a, b = sg.State(1.0, name="a"), sg.State(2.0, name="b")
            >>> a.copy_from(b); a
            State(name='b', value=f32[])
        """
        if type(self) is not type(other):
            raise ValueError(
                f"{type(self).__name__}.copy_from: can only copy from a "
                f"{type(self).__name__}, got {type(other).__name__} {other!r}."
            )
        if self is other:
            return
        value = other.value
        self.value = value
        self._name = other._name
        self._metadata = dict(other._metadata)
        for key, item in other.__dict__.items():
            if key not in _OWN:
                self.__dict__[key] = item

    def replace(self: State, value: Any = _MISSING, **metadata: Any) -> State:
        """Return a new state like this one, with a new value and/or metadata.

        ``name=`` renames, ``tag=`` sets the tags, other keywords update the
        metadata. A ``value`` that is a State of the same type is returned
        itself (with ``metadata`` applied by a further ``replace``).

        Raises:
            ValueError: if ``value`` is a State of another type.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg
            >>> w = sg.ParamState(jnp.ones(2), name="w", lr=0.1)
            >>> v = w.replace(jnp.zeros(3), lr=0.5)
            >>> v, v.metadata["lr"], w.metadata["lr"]
            (ParamState(name='w', value=f32[3]), 0.5, 0.1)
        """
        from .state import State

        if isinstance(value, State):
            if type(value) is not type(self):
                raise ValueError(
                    f"{type(self).__name__}.replace: a State given as the value must be a "
                    f"{type(self).__name__}, got {type(value).__name__} {value!r}."
                )
            return value.replace(**metadata) if metadata else value
        new = self._clone(_visible(self) if value is _MISSING else value)
        if value is not _MISSING:
            new._check_value(value)
        if "name" in metadata:
            name = metadata.pop("name")
            if name is not None and not isinstance(name, str):
                raise TypeError(f"{type(self).__name__}.replace: name must be a str or None.")
            new._name = name
        if "tag" in metadata:
            new.tag = metadata.pop("tag")
        new._metadata.update(metadata)
        return new

    # ------------------------------------------------------------- references
    def to_state_ref(self: State) -> TreefyState:
        """Return a :class:`~stategraph.TreefyState`: this state's value and metadata as a pytree.

        Example:
            >>> import jax, jax.numpy as jnp, stategraph as sg
            >>> ref = sg.ParamState(jnp.ones(2), name="w").to_state_ref()
            >>> jax.tree.leaves(ref)[0].tolist(), ref.name
            ([1.0, 1.0], 'w')
        """
        from .treefy import TreefyState

        meta = dict(self._metadata)
        for key, item in self.__dict__.items():
            if key not in _OWN:
                meta[key] = item
        return TreefyState(type(self), _visible(self), _name=self._name, **meta)

    def update_from_ref(self: State, state_ref: TreefyState) -> None:
        """Take the value and metadata of a :class:`~stategraph.TreefyState` (a recorded write).

        Example:
            >>> import jax.numpy as jnp, stategraph as sg
            >>> w = sg.ParamState(jnp.ones(2))
            >>> w.update_from_ref(w.to_state_ref().replace(jnp.zeros(2)))
            >>> w.value.tolist()
            [0.0, 0.0]
        """
        from .treefy import TreefyState

        if not isinstance(state_ref, TreefyState):
            raise TypeError(
                f"{type(self).__name__}.update_from_ref: expected a TreefyState (from "
                f"to_state_ref), got {type(state_ref).__name__}."
            )
        meta = state_ref.get_metadata()
        self.value = state_ref.value
        if "_name" in meta:
            self._name = meta.pop("_name")
        if "tag" in meta:
            self.tag = meta.pop("tag")
        extra = {k: meta.pop(k) for k in list(meta) if k in self.__dict__}
        self.__dict__.update(extra)
        self._metadata.update(meta)
