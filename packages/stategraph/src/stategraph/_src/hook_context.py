"""The context objects that hook callbacks receive (brainstate's fields)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import State

__all__ = [
    "HookContext",
    "InitHookContext",
    "MutableWriteHookContext",
    "ReadHookContext",
    "RestoreHookContext",
    "WriteHookContext",
]


@dataclass(slots=True)
class HookContext:
    """What a hook callback receives.

    Attributes:
        operation: ``'read'``, ``'write_before'``, ``'write_after'``,
            ``'restore'`` or ``'init'``.
        state_ref: A weak reference to the state.
        timestamp: ``time.time()`` when the hook ran.
        metadata: A free dict for the callback's own notes.

    Example:
        >>> import stategraph as sg
        >>> s = sg.State(1.0, name="s")
        >>> seen = []
        >>> h = s.register_hook("read", lambda ctx: seen.append((ctx.operation, ctx.state_name)))
        >>> _ = s.value; _ = h.remove(); seen
        [('read', 's')]
    """

    operation: str
    state_ref: Any
    timestamp: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> State | None:
        """The state, or ``None`` if it was garbage collected."""
        return self.state_ref()

    @property
    def state_name(self) -> str | None:
        """The state's name (``None`` if unnamed or collected)."""
        s = self.state_ref()
        return None if s is None else s.name


@dataclass(slots=True)
class ReadHookContext(HookContext):
    """Context of a ``read`` hook: ``value`` is the value being read."""

    value: Any = None


@dataclass(slots=True)
class WriteHookContext(HookContext):
    """Context of a ``write_after`` hook: the new ``value`` and the ``old_value``."""

    value: Any = None
    old_value: Any = None


@dataclass(slots=True)
class MutableWriteHookContext(WriteHookContext):
    """Context of a ``write_before`` hook, which may transform or cancel the write.

    Attributes:
        value: The value the user wrote (unchanged by earlier hooks).
        old_value: The state's value before the write.
        transformed_value: The value that will be written (the output of the
            earlier hooks); set it to transform the write.
        cancel: Set to ``True`` to refuse the write: the write raises
            :class:`~stategraph.errors.HookCancellationError` and the state
            keeps its value.
        cancel_reason: Shown in the error message of a cancelled write.
    """

    transformed_value: Any = None
    cancel: bool = False
    cancel_reason: str | None = None


@dataclass(slots=True)
class RestoreHookContext(WriteHookContext):
    """Context of a ``restore`` hook (``State.restore_value``)."""


@dataclass(slots=True)
class InitHookContext(HookContext):
    """Context of an ``init`` hook: the initial ``value`` and the ``init_metadata``."""

    value: Any = None
    init_metadata: dict[str, Any] = field(default_factory=dict)
