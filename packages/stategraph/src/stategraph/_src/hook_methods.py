"""The hook API of ``State`` (a mixin): register, list, clear, temporary hooks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .hooks import Hook, HookHandle, HookKind, HookManager

__all__ = ["HookMethods"]


class HookMethods:
    """The hook API of :class:`~stategraph.State` (mixed in)."""

    __slots__ = ()

    @property
    def hooks(self) -> HookManager:
        """This state's :class:`HookManager` (made on first use)."""
        d = self.__dict__  # type: ignore[attr-defined]
        manager = d.get("_hooks_manager")
        if manager is None:
            manager = d["_hooks_manager"] = HookManager()
        return manager

    def register_hook(
        self,
        hook_type: HookKind,
        callback: Callable[[Any], Any],
        priority: int = 0,
        name: str | None = None,
        enabled: bool = True,
    ) -> HookHandle:
        """Register a hook on this state; return its :class:`HookHandle`.

        Kinds: ``read`` (after a read is recorded), ``write_before`` (may set
        ``ctx.transformed_value`` or ``ctx.cancel``), ``write_after``,
        ``restore`` (``restore_value``) and ``init``. Global hooks run first,
        then this state's, each in descending ``priority``. An exception raised
        by a hook propagates and the write does not happen. Under a transform
        hooks run while the function is traced (once per signature), with
        tracers as values; what a ``write_before`` hook does to the value is
        compiled in.

        Example:
            >>> import jax.numpy as jnp, stategraph as sg
            >>> w = sg.ParamState(jnp.zeros(2), name="w")
            >>> def clip(ctx):
            ...     ctx.transformed_value = jnp.clip(ctx.transformed_value, -1.0, 1.0)
            >>> h = w.register_hook("write_before", clip, priority=10, name="clip")
            >>> w.value = jnp.array([3.0, -0.5]); w.value.tolist()
            [1.0, -0.5]
            >>> h.remove()
            True
        """
        return self.hooks.register_hook(hook_type, callback, priority, name, enabled)

    def unregister_hook(self, handle: HookHandle) -> bool:
        """Remove one of this state's hooks; return whether it was registered.

        Example:
            >>> import stategraph as sg
            >>> s = sg.State(1.0)
            >>> s.unregister_hook(s.register_hook("read", print))
            True
        """
        return self.hooks.unregister_hook(handle)

    def list_hooks(self, hook_type: str | None = None) -> list[Hook]:
        """Return this state's hooks (of one kind, or all), in execution order.

        Example:
            >>> import stategraph as sg
            >>> sg.State(1.0).list_hooks()
            []
        """
        manager = self.__dict__.get("_hooks_manager")  # type: ignore[attr-defined]
        return [] if manager is None else manager.get_hooks(hook_type)

    def clear_hooks(self, hook_type: str | None = None) -> None:
        """Remove this state's hooks (of one kind, or all).

        Example:
            >>> import stategraph as sg
            >>> s = sg.State(1.0); _ = s.register_hook("read", print)
            >>> s.clear_hooks(); s.has_hooks()
            False
        """
        manager = self.__dict__.get("_hooks_manager")  # type: ignore[attr-defined]
        if manager is not None:
            manager.clear_hooks(hook_type)

    def has_hooks(self, hook_type: str | None = None) -> bool:
        """Whether this state has an enabled hook (of one kind, or any).

        Example:
            >>> import stategraph as sg
            >>> sg.State(1.0).has_hooks()
            False
        """
        manager = self.__dict__.get("_hooks_manager")  # type: ignore[attr-defined]
        return False if manager is None else manager.has_hooks(hook_type)

    @contextlib.contextmanager
    def temporary_hook(
        self,
        hook_type: HookKind,
        callback: Callable[[Any], Any],
        priority: int = 0,
        name: str | None = None,
    ) -> Iterator[HookHandle]:
        """Register a hook for the duration of a ``with`` block.

        Example:
            >>> import stategraph as sg
            >>> s = sg.State(1.0)
            >>> with s.temporary_hook("read", lambda ctx: None) as h:
            ...     _ = s.value
            >>> h.is_removed(), s.has_hooks()
            (True, False)
        """
        handle = self.register_hook(hook_type, callback, priority, name)
        try:
            yield handle
        finally:
            handle.remove()
