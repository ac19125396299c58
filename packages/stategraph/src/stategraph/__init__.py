"""stategraph: states, tracing of state reads and writes, and object graphs.

The bottom layer of the stack. Downstream frameworks depend on this package
alone: :class:`State` and its subclasses hold mutable values; a
:class:`StateTrace` records which states code reads and writes; :func:`states`
finds the states held in an object graph. :mod:`stategraph.extend` holds the
hooks that the transforms of ``statejax`` are built on.

Example:
    >>> import jax.numpy as jnp
    >>> import stategraph as sg
    >>> w = sg.ParamState(jnp.ones(3), name="w")
    >>> with sg.StateTrace() as t:
    ...     y = w.value * 2
    >>> t.read_states == (w,)
    True
"""

# First: a clear ImportError naming the required version on a JAX that is too old.
from stategraph._src import jax_version as _jax_version  # noqa: F401

# isort: split
from stategraph import errors, extend, random
from stategraph._src.catch import NewStates, catch_new_states
from stategraph._src.dict_manager import StateDictManager
from stategraph._src.graph import restore, snapshot, states
from stategraph._src.group import HiddenGroupState, HiddenTreeState
from stategraph._src.hook_context import (
    HookContext,
    InitHookContext,
    MutableWriteHookContext,
    ReadHookContext,
    RestoreHookContext,
    WriteHookContext,
)
from stategraph._src.hook_registry import (
    GlobalHookRegistry,
    clear_state_hooks,
    has_state_hooks,
    list_state_hooks,
    register_state_hook,
    unregister_state_hook,
)
from stategraph._src.hooks import (
    Hook,
    HookConfig,
    HookHandle,
    HookManager,
    HookWarning,
)
from stategraph._src.kinds import BatchState, DelayState, FakeState, maybe_state
from stategraph._src.random.state import RandomState
from stategraph._src.state import HiddenState, LongTermState, ParamState, ShortTermState, State
from stategraph._src.trace import StateTrace
from stategraph._src.treefy import TreefyState
from stategraph.errors import (
    DonatedStateError,
    HookCancellationError,
    HookError,
    HookExecutionError,
    HookRegistrationError,
    StateError,
    StateStructureError,
    TraceContextError,
    TraceOrderError,
)

__version__ = "0.1.0"

__all__ = [
    "BatchState",
    "DelayState",
    "DonatedStateError",
    "FakeState",
    "GlobalHookRegistry",
    "HiddenGroupState",
    "HiddenState",
    "HiddenTreeState",
    "Hook",
    "HookCancellationError",
    "HookConfig",
    "HookContext",
    "HookError",
    "HookExecutionError",
    "HookHandle",
    "HookManager",
    "HookRegistrationError",
    "HookWarning",
    "InitHookContext",
    "LongTermState",
    "MutableWriteHookContext",
    "NewStates",
    "ParamState",
    "RandomState",
    "ReadHookContext",
    "RestoreHookContext",
    "ShortTermState",
    "State",
    "StateDictManager",
    "StateError",
    "StateStructureError",
    "StateTrace",
    "TraceContextError",
    "TraceOrderError",
    "TreefyState",
    "WriteHookContext",
    "__version__",
    "catch_new_states",
    "clear_state_hooks",
    "errors",
    "extend",
    "has_state_hooks",
    "list_state_hooks",
    "maybe_state",
    "random",
    "register_state_hook",
    "restore",
    "snapshot",
    "states",
    "unregister_state_hook",
]
