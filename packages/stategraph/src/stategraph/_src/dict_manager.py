"""``StateDictManager``: an ordered dict of states with value-level helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .state import State

__all__ = ["StateDictManager"]


class StateDictManager(dict):
    """An ordered ``dict`` of states (keys are paths or names) with helpers on their values.

    Every value must be a :class:`~stategraph.State`.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg
        >>> m = sg.StateDictManager(w=sg.ParamState(jnp.ones(2)), h=sg.ShortTermState(0.0))
        >>> params, rest = m.split_values(sg.ParamState)
        >>> list(params), list(rest)
        (['w'], ['h'])
        >>> m.assign_values({"h": 5.0}); m.to_dict_values()["h"]
        5.0
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    @staticmethod
    def _check(key: Any, value: Any) -> None:
        if not isinstance(value, State):
            raise TypeError(
                f"StateDictManager: every value must be a State, but {key!r} is "
                f"{type(value).__name__} {value!r}."
            )

    def __setitem__(self, key: Any, value: Any) -> None:
        self._check(key, value)
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Add entries as ``dict.update`` does (each value must be a State)."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """As ``dict.setdefault`` (the default must be a State)."""
        if key not in self:
            self[key] = default
        return self[key]

    def assign_values(self, *args: Mapping[Any, Any]) -> None:
        """Write each ``{key: value}`` of the given dicts into the state under that key.

        Raises:
            TypeError: if an argument is not a mapping.
            KeyError: if a key names no state.
        """
        for arg in args:
            if not isinstance(arg, Mapping):
                raise TypeError(
                    f"StateDictManager.assign_values: expected dicts of values, got "
                    f"{type(arg).__name__}."
                )
            for key, value in arg.items():
                if key not in self:
                    raise KeyError(
                        f"StateDictManager.assign_values: {key!r} names no state; the keys are "
                        f"{list(self)}."
                    )
                self[key].value = value

    def split_values(self, *filters: type) -> tuple[dict[Any, Any], ...]:
        """Split the values by state type: one dict per filter, then one for the rest.

        A state goes to the first filter it is an instance of.
        """
        out: tuple[dict[Any, Any], ...] = tuple({} for _ in range(len(filters) + 1))
        for key, state in self.items():
            for i, flt in enumerate(filters):
                if isinstance(state, flt):
                    out[i][key] = state.value
                    break
            else:
                out[-1][key] = state.value
        return out

    def split(self, *filters: type) -> tuple[StateDictManager, ...]:
        """Split the states by type, as :meth:`split_values` does with their values."""
        out = tuple(StateDictManager() for _ in range(len(filters) + 1))
        for key, state in self.items():
            for i, flt in enumerate(filters):
                if isinstance(state, flt):
                    out[i][key] = state
                    break
            else:
                out[-1][key] = state
        return out

    def subset(self, sep: type | tuple[type, ...] | Callable[[Any], bool]) -> StateDictManager:
        """Return the states that are instances of ``sep`` (or for which ``sep(state)`` holds)."""
        if isinstance(sep, (type, tuple)):
            return StateDictManager({k: s for k, s in self.items() if isinstance(s, sep)})
        return StateDictManager({k: s for k, s in self.items() if sep(s)})

    def collect_values(self) -> dict[Any, Any]:
        """Return ``{key: state.value}``."""
        return {key: state.value for key, state in self.items()}

    def to_dict_values(self) -> dict[Any, Any]:
        """Return ``{key: state.value}`` as a plain dict."""
        return self.collect_values()

    def to_dict(self) -> dict[Any, State]:
        """Return the states as a plain dict."""
        return dict(self)

    def __repr__(self) -> str:
        return f"StateDictManager({dict.__repr__(self)})"
