"""The process-wide hook registry, the global-hook functions, and running a state's hooks.

Global hooks run for every state, before the state's own hooks (its
:class:`~stategraph._src.hooks.HookManager`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .hook_context import (
    InitHookContext,
    ReadHookContext,
    RestoreHookContext,
    WriteHookContext,
)
from .hooks import Hook, HookHandle, HookKind, HookManager

if TYPE_CHECKING:
    from .state import State

__all__ = [
    "GlobalHookRegistry",
    "clear_state_hooks",
    "has_state_hooks",
    "list_state_hooks",
    "register_state_hook",
    "run_init",
    "run_read",
    "run_restore",
    "run_write_after",
    "run_write_before",
    "unregister_state_hook",
    "write_with_hooks",
]


class GlobalHookRegistry(HookManager):
    """The hooks that run for every state (before the state's own hooks).

    Example:
        >>> import stategraph as sg
        >>> sg.GlobalHookRegistry.instance() is sg.GlobalHookRegistry.instance()
        True
    """

    _instance: GlobalHookRegistry | None = None
    _guard = threading.Lock()

    @classmethod
    def instance(cls) -> GlobalHookRegistry:
        """Return the process-wide registry."""
        if cls._instance is None:
            with cls._guard:
                if cls._instance is None:
                    cls._instance = cls()
        return cls._instance

    @classmethod
    def reset(cls) -> None:
        """Remove every global hook and start a fresh registry (for tests)."""
        if cls._instance is not None:
            cls._instance.clear_hooks()
        cls._instance = None


def register_state_hook(
    hook_type: HookKind,
    callback: Callable[[Any], Any],
    priority: int = 0,
    name: str | None = None,
    enabled: bool = True,
) -> HookHandle:
    """Register a hook that runs for every state (before per-state hooks).

    Args:
        hook_type: ``'read'``, ``'write_before'``, ``'write_after'``,
            ``'restore'`` or ``'init'``.
        callback: Called with the hook's context object.
        priority: Higher runs earlier.
        name: Shown in errors and ``repr``.
        enabled: Whether it starts enabled.

    Returns:
        The hook's :class:`HookHandle`.

    Example:
        >>> import stategraph as sg
        >>> made = []
        >>> h = sg.register_state_hook("init", lambda ctx: made.append(ctx.state_name))
        >>> _ = sg.State(0.0, name="new")
        >>> sg.unregister_state_hook(h), made
        (True, ['new'])
    """
    return GlobalHookRegistry.instance().register_hook(hook_type, callback, priority, name, enabled)


def unregister_state_hook(handle: HookHandle) -> bool:
    """Remove a global hook; return whether it was registered.

    Example:
        >>> import stategraph as sg
        >>> h = sg.register_state_hook("read", lambda ctx: None)
        >>> sg.unregister_state_hook(h)
        True
    """
    return GlobalHookRegistry.instance().unregister_hook(handle)


def clear_state_hooks(hook_type: str | None = None) -> None:
    """Remove every global hook (of one kind, or all).

    Example:
        >>> import stategraph as sg
        >>> _ = sg.register_state_hook("read", lambda ctx: None)
        >>> sg.clear_state_hooks(); sg.has_state_hooks()
        False
    """
    GlobalHookRegistry.instance().clear_hooks(hook_type)


def has_state_hooks(hook_type: str | None = None) -> bool:
    """Whether any enabled global hook is registered (of one kind, or any).

    Example:
        >>> import stategraph as sg
        >>> sg.has_state_hooks("write_before")
        False
    """
    return GlobalHookRegistry.instance().has_hooks(hook_type)


def list_state_hooks(hook_type: str | None = None) -> list[Hook]:
    """Return the global hooks (of one kind, or all), in execution order.

    Example:
        >>> import stategraph as sg
        >>> sg.list_state_hooks()
        []
    """
    return GlobalHookRegistry.instance().get_hooks(hook_type)


# ------------------------------------------------------------- dispatching
def _managers(state: State, kind: str) -> list[HookManager]:
    found = []
    registry = GlobalHookRegistry._instance
    if registry is not None and registry._active[kind]:
        found.append(registry)
    own = state.__dict__.get("_hooks_manager")
    if own is not None and own._active[kind]:
        found.append(own)
    return found


def run_read(state: State, value: Any) -> None:
    """Run the ``read`` hooks of ``state`` (global first)."""
    for manager in _managers(state, "read"):
        manager._run("read", ReadHookContext("read", weakref.ref(state), value=value))


def run_write_before(state: State, new: Any, old: Any) -> Any:
    """Run the ``write_before`` hooks; return the value to write."""
    for manager in _managers(state, "write_before"):
        new = manager._run_before(weakref.ref(state), new, old)
    return new


def run_write_after(state: State, new: Any, old: Any) -> None:
    """Run the ``write_after`` hooks."""
    for manager in _managers(state, "write_after"):
        ctx = WriteHookContext("write_after", weakref.ref(state), value=new, old_value=old)
        manager._run("write_after", ctx)


def run_restore(state: State, new: Any, old: Any) -> None:
    """Run the ``restore`` hooks."""
    for manager in _managers(state, "restore"):
        ctx = RestoreHookContext("restore", weakref.ref(state), value=new, old_value=old)
        manager._run("restore", ctx)


def run_init(state: State, value: Any, metadata: dict[str, Any]) -> None:
    """Run the ``init`` hooks."""
    for manager in _managers(state, "init"):
        ctx = InitHookContext("init", weakref.ref(state), value=value, init_metadata=metadata)
        manager._run("init", ctx)


def write_with_hooks(state: State, new: Any) -> None:
    """Write ``new`` into ``state`` through its ``write_before`` / ``write_after`` hooks.

    A hook's exception (or a cancellation) leaves the state as it was: a
    ``write_after`` hook that raises undoes the write.
    """
    from .access import visible, write_checked, write_visible

    state._check_value(new)
    old = visible(state)
    value = run_write_before(state, new, old)
    if value is not new:
        state._check_value(value)
    write_checked(state, value)
    try:
        run_write_after(state, value, old)
    except BaseException:
        write_visible(state, old)
        raise
