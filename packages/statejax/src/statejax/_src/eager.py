"""``jax.disable_jit()`` support: run a transform's Python body directly, all or nothing.

Under ``jax.disable_jit()`` JAX runs ``lax.cond``, ``lax.scan``,
``lax.while_loop`` ... op by op in Python, so ``print`` and ``float(x)`` work
in the bodies. The stateful transforms do the same: instead of tracing the
user's functions into a pure function, they call them directly, with the
states holding their real values, inside a :class:`Rollback` that puts every
written state back if the call raises.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import jax

from stategraph import State, StateTrace
from stategraph.extend import read_raw, write_raw

from .jax_compat import is_concrete

__all__ = ["Rollback", "concrete", "jit_disabled"]


def jit_disabled() -> bool:
    """Return whether ``jax.disable_jit()`` is active in this thread."""
    return bool(jax.config.jax_disable_jit)


def concrete(value: Any) -> bool:
    """Return whether every leaf of ``value`` has a concrete (non-traced) value."""
    return all(is_concrete(x) for x in jax.tree.leaves(value))


class Rollback(StateTrace):
    """A state trace that, if its block raises, puts back every state written inside it.

    Example:
        >>> import stategraph as sg
        >>> from statejax._src.eager import Rollback
        >>> s = sg.State(1.0)
        >>> try:
        ...     with Rollback():
        ...         s.value = 2.0
        ...         raise RuntimeError("boom")
        ... except RuntimeError:
        ...     pass
        >>> s.value
        1.0
    """

    def __init__(self) -> None:
        super().__init__()
        self._before: dict[int, tuple[State, Any]] = {}

    def _on_write(self, state: State) -> None:
        if id(state) not in self._before:
            self._before[id(state)] = (state, read_raw([state])[0])
        super()._on_write(state)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if exc_type is not None:
            undo = list(reversed(self._before.values()))
            write_raw([s for s, _ in undo], [v for _, v in undo])
