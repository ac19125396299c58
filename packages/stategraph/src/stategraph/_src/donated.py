"""States whose buffer was donated to a compiled call that failed.

Such a state is switched to a subclass whose reads raise
:class:`~stategraph.errors.DonatedStateError` (the normal read path keeps its
cost); the first successful write switches it back.
"""

from __future__ import annotations

from typing import Any

from stategraph.errors import DonatedStateError

from .access import write_checked
from .state import State
from .structure import describe

__all__ = ["donated_error", "is_donated", "mark_donated"]

_DONATED: dict[type, type] = {}


def donated_error(state: State) -> DonatedStateError:
    """Return the error that reads of a donated ``state`` raise.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import donated_error
        >>> type(donated_error(sg.State(1.0))).__name__
        'DonatedStateError'
    """
    cls = type(state).__mro__[1] if is_donated(state) else type(state)
    api = getattr(state, "_donated_to", None) or "a compiled call"
    return DonatedStateError(
        f"{cls.__name__} {state._label()} ({describe(state._value)}): its buffer was donated "
        f"to {api} (donate_states=True), and that call failed, so the state has no value any "
        "more. Fix: give it a value again, for example `stategraph.restore(model, snapshot)` "
        "from a copy taken before the call (`jax.tree.map(jnp.copy, "
        "stategraph.snapshot(model))`: donation deletes the buffers a plain snapshot refers "
        "to), or `state.value = ...`; keep such a copy (or leave donate_states off) when a "
        "call may fail."
    )


def _read(self: State) -> Any:
    raise donated_error(self)


def _write(self: State, new: Any) -> None:
    self._check_value(new)
    write_checked(self, new, check_structure=False)
    object.__setattr__(self, "__class__", type(self).__mro__[1])


def mark_donated(state: State, api: str) -> None:
    """Make reads of ``state`` raise :class:`DonatedStateError` until it is written.

    ``api`` names the call the buffer was donated to, for the message.

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import is_donated, mark_donated
        >>> s = sg.State(1.0, name="s")
        >>> mark_donated(s, "statejax.jit(step)")
        >>> try:
        ...     s.value
        ... except sg.StateError as err:
        ...     print(type(err).__name__)
        DonatedStateError
        >>> s.value = 2.0   # a write gives it a value again
        >>> is_donated(s), s.value
        (False, 2.0)
    """
    cls = type(state)
    if cls in _DONATED.values():
        return
    sub = _DONATED.get(cls)
    if sub is None:
        sub = type(
            cls.__name__,
            (cls,),
            {"__slots__": (), "value": property(_read, _write), "__module__": cls.__module__},
        )
        _DONATED[cls] = sub
    try:
        state.__dict__["_donated_to"] = api
    except AttributeError:  # a subclass without __dict__
        pass
    object.__setattr__(state, "__class__", sub)


def is_donated(state: State) -> bool:
    """Return whether ``state`` was marked by :func:`mark_donated` (and not written since).

    Example:
        >>> import stategraph as sg
        >>> from stategraph.extend import is_donated
        >>> is_donated(sg.State(1.0))
        False
    """
    return type(state) in _DONATED.values()
