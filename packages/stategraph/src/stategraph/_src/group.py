"""Grouped hidden states: several hidden variables packed into one array."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from .access import visible
from .state import HiddenState, ShortTermState
from .structure import describe

__all__ = ["HiddenGroupState", "HiddenTreeState"]


def _is_quantity(x: Any) -> bool:
    """A brainunit Quantity (duck-typed: stategraph does not import brainunit)."""
    return hasattr(x, "mantissa") and hasattr(x, "unit") and hasattr(x, "to")


def _is_dimensionless(unit: Any) -> bool:
    dim = getattr(unit, "dim", None)
    return unit is None or bool(getattr(dim, "is_dimensionless", False))


class HiddenGroupState(HiddenState):
    """Several hidden variables of one shape, stacked along the last axis.

    The value has shape ``(*varshape, num_state)``; variable ``i`` is
    ``value[..., i]``, also reachable by the name ``str(i)``. It is one
    array, so transforms see one state (``grad_states``, ``sj.vmap``
    ``in_states``, ``sj.scan`` carries).

    Args:
        value: An array with at least two dimensions.
        name: Optional name.
        **metadata: As for :class:`~stategraph.State`.

    Raises:
        TypeError: if the value is not an array.
        ValueError: if it has fewer than two dimensions.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> g = sg.HiddenGroupState(jnp.zeros((4, 2)), name="vw")
        >>> g.varshape, g.num_state
        ((4,), 2)
        >>> g.set_value({1: jnp.ones(4)})
        >>> g.get_value(1).tolist(), g.get_value("0").tolist()
        ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    """

    __slots__ = ()

    def __init__(self, value: Any, name: str | None = None, **metadata: Any) -> None:
        self._name = name
        self._metadata = {}
        self._check_group(value)
        self.__dict__["name2index"] = {str(i): i for i in range(value.shape[-1])}
        super().__init__(value, name=name, **metadata)

    def _check_group(self, value: Any) -> None:
        HiddenState._check_value(self, value)
        if np.ndim(value) < 2:
            raise ValueError(
                f"{type(self).__name__} {self._label()}: the value must have at least two "
                f"dimensions (*varshape, num_state), got {describe(value)}. Fix: stack the "
                "variables along a last axis, or use HiddenState for a single variable."
            )

    @property
    def name2index(self) -> dict[str, int]:
        """Map from each variable's name to its index on the last axis."""
        return self.__dict__["name2index"]

    @property
    def varshape(self) -> tuple[int, ...]:
        """The shape of one variable (the value's shape without the last axis)."""
        return tuple(np.shape(self.value))[:-1]

    @property
    def num_state(self) -> int:
        """The number of variables (the value's last dimension)."""
        return int(np.shape(self.value)[-1])

    def _index(self, api: str, item: Any) -> int:
        n = int(np.shape(visible(self))[-1])
        if isinstance(item, str):
            if item not in self.name2index:
                raise KeyError(
                    f"{type(self).__name__}.{api}: {self._label_typed()} has no variable named "
                    f"{item!r}; its names are {list(self.name2index)}."
                )
            return self.name2index[item]
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not -n <= int(item) < n:
                raise IndexError(
                    f"{type(self).__name__}.{api}: index {item} is out of range for "
                    f"{self._label_typed()}, which holds {n} variables."
                )
            return int(item) % n
        raise TypeError(
            f"{type(self).__name__}.{api}: a variable is picked by int index or str name, got "
            f"{type(item).__name__} {item!r}."
        )

    def get_value(self, item: int | str) -> Any:
        """Return variable ``item`` (an index or a name): ``value[..., i]``."""
        return self.value[..., self._index("get_value", item)]

    def _encode(self, index: int, v: Any) -> Any:
        return v

    def set_value(self, val: Mapping[int | str, Any] | Sequence[Any]) -> None:
        """Write some variables: a dict ``{index or name: array}`` or a sequence of all.

        The other variables keep their values; the write is one recorded write
        of the whole array.

        Raises:
            TypeError: if ``val`` is neither a dict nor a sequence.
            ValueError: if a variable's shape is not :attr:`varshape`.
        """
        if isinstance(val, (list, tuple)):
            val = dict(enumerate(val))
        if not isinstance(val, Mapping):
            raise TypeError(
                f"{type(self).__name__}.set_value: expected a dict {{index or name: array}} or "
                f"a sequence of arrays, got {type(val).__name__}."
            )
        if not val:
            raise ValueError(f"{type(self).__name__}.set_value: no variable given.")
        current = jnp.asarray(self.value)
        varshape = tuple(current.shape[:-1])
        indices, values = [], []
        for key, v in val.items():
            i = self._index("set_value", key)
            shape = tuple(np.shape(v))
            if shape != varshape:
                raise ValueError(
                    f"{type(self).__name__}.set_value: variable {key!r} of "
                    f"{self._label_typed()} must have shape {varshape}, got {shape}."
                )
            indices.append(i)
            values.append(jnp.asarray(self._encode(i, v), dtype=current.dtype))
        new = current.at[..., np.asarray(indices)].set(jnp.stack(values, axis=-1))
        self.value = new


class HiddenTreeState(HiddenGroupState):
    """A dict or sequence of same-shaped hidden variables packed into one array.

    The variables are stacked along a new last axis; a variable that is a
    physical quantity (a ``brainunit.Quantity``) is stored by its mantissa and
    its unit is put back by :meth:`get_value`. Use :meth:`get_value` /
    :meth:`set_value`; ``.value`` is the packed, unit-free array.

    Args:
        value: A dict ``{name: array}`` or a sequence of arrays (named
            ``"0"``, ``"1"``, ...), all of one shape.
        name: Optional name.
        **metadata: As for :class:`~stategraph.State`.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> t = sg.HiddenTreeState({"v": jnp.zeros(3), "i": jnp.ones(3)}, name="vi")
        >>> t.value.shape, t.get_value("i").tolist()
        ((3, 2), [1.0, 1.0, 1.0])
        >>> t.set_value({"v": jnp.full(3, 2.0)}); t.get_value(0).tolist()
        [2.0, 2.0, 2.0]
    """

    __slots__ = ()

    def __init__(
        self, value: Mapping[str, Any] | Sequence[Any], name: str | None = None, **metadata: Any
    ) -> None:
        if isinstance(value, (list, tuple)):
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, Mapping) or not value:
            raise TypeError(
                f"{type(self).__name__}: the value must be a non-empty dict or sequence of "
                f"arrays, got {type(value).__name__}. Fix: HiddenTreeState({{'v': v, 'i': i}})."
            )
        shapes = {k: tuple(np.shape(v)) for k, v in value.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(
                f"{type(self).__name__}: every variable must have the same shape, got {shapes}."
            )
        units = {k: (v.unit if _is_quantity(v) else None) for k, v in value.items()}
        mantissas = [jnp.asarray(v.mantissa if _is_quantity(v) else v) for v in value.values()]
        packed = jnp.stack(mantissas, axis=-1)
        self.__dict__["name2unit"] = units
        self.__dict__["index2unit"] = dict(enumerate(units.values()))
        self.__dict__["index2name"] = dict(enumerate(value))
        ShortTermState.__init__(self, packed, name=name, **metadata)
        self.__dict__["name2index"] = {k: i for i, k in enumerate(value)}

    def _check_group(self, value: Any) -> None:  # pragma: no cover - not used by this class
        HiddenState._check_value(self, value)

    def get_value(self, item: int | str) -> Any:
        """Return variable ``item`` (an index or a name), with its unit if it had one."""
        i = self._index("get_value", item)
        out = self.value[..., i]
        unit = self.__dict__["index2unit"][i]
        return out if _is_dimensionless(unit) else out * unit

    def _encode(self, index: int, v: Any) -> Any:
        unit = self.__dict__["index2unit"][index]
        if _is_quantity(v):
            return v.to(unit).mantissa if unit is not None else v.mantissa
        if not _is_dimensionless(unit):
            raise TypeError(
                f"{type(self).__name__}.set_value: variable {self.__dict__['index2name'][index]!r} "
                f"of {self._label_typed()} has unit {unit}; pass a quantity in that unit."
            )
        return v
