"""Hooks on state reads, writes, restores and creations: hooks and their managers.

The process-wide registry, the global-hook functions and the running of a
state's hooks are in :mod:`stategraph._src.hook_registry`.

Hooks cost nothing while none is registered: registering the first hook
anywhere raises :data:`~stategraph.extend.ACTIVE` by one, so ``State.value``
takes its slow path (where hooks run) only while some hook exists.
"""

from __future__ import annotations

import itertools
import threading
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from stategraph.errors import (
    HookCancellationError,
    HookError,
    HookRegistrationError,
)

from . import context
from .hook_context import (
    HookContext,
    InitHookContext,
    MutableWriteHookContext,
    ReadHookContext,
    RestoreHookContext,
    WriteHookContext,
)

__all__ = [
    "HOOKS",
    "Hook",
    "HookConfig",
    "HookContext",
    "HookHandle",
    "HookManager",
    "HookWarning",
    "InitHookContext",
    "MutableWriteHookContext",
    "ReadHookContext",
    "RestoreHookContext",
    "WriteHookContext",
]

HookKind = Literal["read", "write_before", "write_after", "restore", "init"]
KINDS: tuple[str, ...] = ("read", "write_before", "write_after", "restore", "init")


class _Count:
    """Process-wide number of registered hooks; keeps ``ACTIVE`` raised while non-zero."""

    __slots__ = ("count", "lock")

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            before = self.count
            self.count = max(before + n, 0)
            if before == 0 and self.count > 0:
                context.ACTIVE.add(1)
            elif before > 0 and self.count == 0:
                context.ACTIVE.add(-1)


HOOKS = _Count()


class HookWarning(UserWarning):
    """Warned when a hook of a manager configured with ``on_error='log'`` raises.

    Example:
        >>> import stategraph as sg
        >>> issubclass(sg.HookWarning, UserWarning)
        True
    """


# -------------------------------------------------------------- hook objects
_IDS = itertools.count()


class Hook:
    """A registered callback with its priority, name and enabled flag.

    Hooks run in descending ``priority``; equal priorities run in
    registration order.

    Example:
        >>> import stategraph as sg
        >>> sg.Hook(print, priority=2, name="p")
        Hook(name='p', priority=2, enabled)
    """

    __slots__ = ("callback", "priority", "name", "enabled", "hook_id")

    def __init__(
        self,
        callback: Callable[[Any], Any],
        priority: int = 0,
        name: str | None = None,
        enabled: bool = True,
    ) -> None:
        if not callable(callback):
            raise HookRegistrationError(
                f"register_hook: the callback must be callable, got {type(callback).__name__} "
                f"{callback!r}. Fix: pass a function taking one context argument."
            )
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise HookRegistrationError(
                f"register_hook: priority must be an int, got {type(priority).__name__} "
                f"{priority!r}."
            )
        self.hook_id = next(_IDS)
        self.callback = callback
        self.priority = priority
        self.name = name if name is not None else f"hook_{self.hook_id}"
        self.enabled = bool(enabled)

    def execute(self, ctx: HookContext) -> Any:
        """Call the callback with ``ctx`` (nothing when disabled)."""
        if not self.enabled:
            return None
        return self.callback(ctx)

    def _order(self) -> tuple[int, int]:
        return (-self.priority, self.hook_id)

    def __lt__(self, other: Hook) -> bool:
        return self._order() < other._order()

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"Hook(name={self.name!r}, priority={self.priority}, {state})"


class HookHandle:
    """Returned by ``register_hook``: enable, disable or remove the hook.

    Example:
        >>> import stategraph as sg
        >>> s = sg.State(0.0)
        >>> h = s.register_hook("write_after", lambda ctx: None, name="log")
        >>> h.disable(); h.is_enabled()
        False
        >>> h.remove(), h.is_removed()
        (True, True)
    """

    __slots__ = ("_manager", "_hook", "_kind", "_removed")

    def __init__(self, manager: HookManager, hook: Hook, kind: str) -> None:
        self._manager = weakref.ref(manager)
        self._hook = hook
        self._kind = kind
        self._removed = False

    def _owner(self, what: str) -> HookManager:
        if self._removed:
            raise HookError(f"HookHandle.{what}: hook {self._hook.name!r} was removed.")
        manager = self._manager()
        if manager is None:
            raise HookError(
                f"HookHandle.{what}: the state of hook {self._hook.name!r} no longer exists."
            )
        return manager

    def enable(self) -> None:
        """Enable the hook."""
        self._owner("enable")._set_enabled(self._hook, True)

    def disable(self) -> None:
        """Disable the hook (it stays registered)."""
        self._owner("disable")._set_enabled(self._hook, False)

    def remove(self) -> bool:
        """Unregister the hook; return whether it was registered."""
        if self._removed:
            return False
        manager = self._manager()
        if manager is None:
            return False
        done = manager.unregister_hook(self)
        self._removed = self._removed or done
        return done

    def is_enabled(self) -> bool:
        """Whether the hook is registered and enabled."""
        return not self._removed and self._hook.enabled

    def is_removed(self) -> bool:
        """Whether the hook was removed."""
        return self._removed

    @property
    def name(self) -> str:
        """The hook's name."""
        return self._hook.name

    @property
    def priority(self) -> int:
        """The hook's priority."""
        return self._hook.priority

    def __repr__(self) -> str:
        if self._removed:
            return f"HookHandle(name={self.name!r}, removed)"
        state = "enabled" if self._hook.enabled else "disabled"
        return f"HookHandle(name={self.name!r}, priority={self.priority}, {state})"


@dataclass
class HookConfig:
    """How a :class:`HookManager` handles an exception raised by a hook.

    Attributes:
        on_error: ``'raise'`` (the default here: the exception propagates and
            the operation does not happen), ``'log'`` (warn with
            :class:`~stategraph.errors.HookWarning` and go on, brainstate's
            default) or ``'ignore'``.
        error_logger: Called as ``error_logger(message, error, hook, ctx)``
            instead of warning, when ``on_error='log'``.

    Example:
        >>> import stategraph as sg
        >>> sg.HookConfig().on_error
        'raise'
    """

    on_error: Literal["raise", "log", "ignore"] = "raise"
    error_logger: Callable[[str, BaseException, Hook, HookContext], None] | None = None


class HookManager:
    """The hooks of one state (or the global ones), by kind.

    Example:
        >>> import stategraph as sg
        >>> m = sg.HookManager()
        >>> h = m.register_hook("read", lambda ctx: None, priority=5)
        >>> m.has_hooks("read"), m.has_hooks("write_before")
        (True, False)
        >>> m.clear_hooks(); m.has_hooks()
        False
    """

    def __init__(self, config: HookConfig | None = None) -> None:
        self._lock = threading.RLock()
        self._hooks: dict[str, list[Hook]] = {k: [] for k in KINDS}
        self._active: dict[str, tuple[Hook, ...]] = {k: () for k in KINDS}
        self._n = 0
        self.config = config or HookConfig()

    @staticmethod
    def _kind(kind: Any) -> str:
        if kind not in KINDS:
            raise HookRegistrationError(
                f"register_hook: unknown hook kind {kind!r}; the kinds are "
                f"{', '.join(repr(k) for k in KINDS)}."
            )
        return kind

    def register_hook(
        self,
        hook_type: HookKind,
        callback: Callable[[Any], Any],
        priority: int = 0,
        name: str | None = None,
        enabled: bool = True,
    ) -> HookHandle:
        """Register ``callback`` for ``hook_type``; return its :class:`HookHandle`."""
        kind = self._kind(hook_type)
        hook = Hook(callback, priority, name, enabled)
        with self._lock:
            self._hooks[kind].append(hook)
            self._n += 1
            self._rebuild(kind)
        HOOKS.add(1)
        return HookHandle(self, hook, kind)

    def unregister_hook(self, handle: HookHandle) -> bool:
        """Remove the hook of ``handle``; return whether it was registered here."""
        if not isinstance(handle, HookHandle):
            raise TypeError(
                f"unregister_hook: expected a HookHandle (returned by register_hook), got "
                f"{type(handle).__name__} {handle!r}."
            )
        with self._lock:
            hooks = self._hooks.get(handle._kind, [])
            if handle._hook not in hooks:
                return False
            hooks.remove(handle._hook)
            self._n -= 1
            self._rebuild(handle._kind)
        handle._removed = True
        HOOKS.add(-1)
        return True

    def get_hooks(self, hook_type: str | None = None) -> list[Hook]:
        """Return the registered hooks (of one kind, or all), in execution order."""
        with self._lock:
            if hook_type is None:
                return sorted(h for k in KINDS for h in self._hooks[k])
            return sorted(self._hooks[self._kind(hook_type)])

    def clear_hooks(self, hook_type: str | None = None) -> None:
        """Remove every hook (of one kind, or all)."""
        kinds = KINDS if hook_type is None else (self._kind(hook_type),)
        removed = 0
        with self._lock:
            for kind in kinds:
                removed += len(self._hooks[kind])
                self._hooks[kind] = []
                self._rebuild(kind)
            self._n -= removed
        HOOKS.add(-removed)

    def has_hooks(self, hook_type: str | None = None) -> bool:
        """Whether any enabled hook is registered (of one kind, or any)."""
        if hook_type is None:
            return any(self._active.values())
        return bool(self._active[self._kind(hook_type)])

    def _set_enabled(self, hook: Hook, enabled: bool) -> None:
        with self._lock:
            hook.enabled = enabled
            for kind in KINDS:
                if hook in self._hooks[kind]:
                    self._rebuild(kind)

    def _rebuild(self, kind: str) -> None:
        self._active[kind] = tuple(sorted(h for h in self._hooks[kind] if h.enabled))

    def _failed(self, hook: Hook, err: BaseException, ctx: HookContext) -> None:
        mode = self.config.on_error
        if mode == "raise" or not isinstance(err, Exception):
            state = ctx.state_ref()
            where = f" of {state._label_typed()}" if state is not None else ""
            err.add_note(f"(raised by the {ctx.operation} hook {hook.name!r}{where})")
            raise err
        if mode == "log":
            message = f"hook {hook.name!r} ({ctx.operation}) raised {type(err).__name__}: {err}"
            if self.config.error_logger is not None:
                self.config.error_logger(message, err, hook, ctx)
            else:
                warnings.warn(message, HookWarning, stacklevel=4)

    def _run(self, kind: str, ctx: HookContext) -> None:
        for hook in self._active[kind]:
            try:
                hook.execute(ctx)
            except Exception as err:
                self._failed(hook, err, ctx)

    def _run_before(self, ref: Any, new: Any, old: Any) -> Any:
        value = new
        for hook in self._active["write_before"]:
            ctx = MutableWriteHookContext(
                "write_before", ref, value=new, old_value=old, transformed_value=value
            )
            try:
                hook.execute(ctx)
            except Exception as err:
                self._failed(hook, err, ctx)
                continue
            if ctx.cancel:
                state = ref()
                label = state._label_typed() if state is not None else "a state"
                raise HookCancellationError(
                    f"The write_before hook {hook.name!r} of {label} cancelled the "
                    f"write ({ctx.cancel_reason or 'no reason given'}); the state keeps its "
                    "value. Fix: write a value the hook accepts, or disable the hook."
                )
            if ctx.transformed_value is not None:
                value = ctx.transformed_value
        return value

    def __del__(self) -> None:  # a collected state's hooks stop counting
        try:
            HOOKS.add(-self._n)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
