"""``TreefyState``: a state's value and metadata as a pytree (a state reference)."""

from __future__ import annotations

from typing import Any

import jax

from .structure import describe

__all__ = ["TreefyState"]


def _frozen(value: Any) -> Any:
    if isinstance(value, set):
        return frozenset(value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


class TreefyState:
    """A state's type, value and metadata, as a pytree whose one child is the value.

    Made by :meth:`State.to_state_ref <stategraph.State.to_state_ref>`; pass it
    through ``jax.tree`` functions and JAX transforms like any pytree, then
    :meth:`to_state` makes a new state, or
    :meth:`State.update_from_ref <stategraph.State.update_from_ref>` writes it
    back into one. The metadata is static (part of the tree structure).

    Attributes:
        type: The state's class.
        value: The value (a pytree of arrays).

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg
        >>> ref = sg.ParamState(jnp.ones(2), name="w").to_state_ref()
        >>> doubled = jax.tree.map(lambda x: x * 2, ref)
        >>> doubled.to_state()
        ParamState(name='w', value=f32[2])
        >>> doubled.value.tolist()
        [2.0, 2.0]
    """

    def __init__(self, type: type, value: Any, **metadata: Any) -> None:  # noqa: A002
        self.type = type
        self.value = value
        self.__dict__.update(metadata)

    @property
    def name(self) -> str | None:
        """The state's name."""
        return self.__dict__.get("_name")

    @name.setter
    def name(self, name: str | None) -> None:
        self.__dict__["_name"] = name

    def get_metadata(self) -> dict[str, Any]:
        """Return the metadata (everything but ``type`` and ``value``) as a new dict."""
        return {k: v for k, v in self.__dict__.items() if k not in ("type", "value")}

    def replace(self, value: Any) -> TreefyState:
        """Return a reference with the same type and metadata holding ``value``."""
        return TreefyState(self.type, value, **self.get_metadata())

    def copy(self) -> TreefyState:
        """Return a shallow copy."""
        return self.replace(self.value)

    def to_state(self) -> Any:
        """Return a new state of :attr:`type` with this value and metadata."""
        meta = self.get_metadata()
        name = meta.pop("_name", None)
        cls = self.type
        obj = cls.__new__(cls)
        obj._name = name
        tag = meta.pop("tag", None)
        extra = {k: meta.pop(k) for k in list(meta) if k in _EXTRA_ATTRS}
        obj._metadata = dict(meta)
        if tag is not None:
            obj._metadata["tag"] = set(tag)
        obj.__dict__.update(extra)
        obj._value = self.value
        obj._birth = 0
        obj._born()
        return obj

    def __repr__(self) -> str:
        shown = describe(self.value)
        return f"TreefyState(type={self.type.__name__}, name={self.name!r}, value={shown})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreefyState):
            return NotImplemented
        return _flatten(self)[1] == _flatten(other)[1] and self.value is other.value

    __hash__ = object.__hash__


# Attributes kept in a state's ``__dict__`` (not its metadata) by the classes of stategraph.
_EXTRA_ATTRS = frozenset({"name2index", "name2unit", "index2unit", "index2name", "_backup"})


class _Meta:
    """Static metadata: compared and hashed by a frozen copy, given back unchanged."""

    __slots__ = ("items", "key")

    def __init__(self, items: dict[str, Any]) -> None:
        self.items = items
        self.key = tuple(sorted((k, _frozen(v)) for k, v in items.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Meta) and self.key == other.key

    def __hash__(self) -> int:
        try:
            return hash(self.key)
        except TypeError:
            return hash(tuple(k for k, _ in self.key))


def _flatten(ref: TreefyState) -> tuple[tuple[Any], tuple[Any, ...]]:
    return (ref.value,), (ref.type, _Meta(ref.get_metadata()))


def _flatten_with_keys(ref: TreefyState) -> tuple[tuple[Any], tuple[Any, ...]]:
    children, aux = _flatten(ref)
    return ((jax.tree_util.GetAttrKey("value"), children[0]),), aux


def _unflatten(aux: tuple[Any, ...], children: Any) -> TreefyState:
    cls, meta = aux
    return TreefyState(cls, children[0], **meta.items)


jax.tree_util.register_pytree_with_keys(
    TreefyState, _flatten_with_keys, _unflatten, flatten_func=_flatten
)
