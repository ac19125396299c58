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

from stategraph import errors, extend
from stategraph._src.catch import NewStates, catch_new_states
from stategraph._src.graph import restore, snapshot, states
from stategraph._src.state import HiddenState, LongTermState, ParamState, ShortTermState, State
from stategraph._src.trace import StateTrace
from stategraph.errors import (
    DonatedStateError,
    StateError,
    StateStructureError,
    TraceContextError,
    TraceOrderError,
)

__version__ = "0.1.0"

__all__ = [
    "DonatedStateError",
    "HiddenState",
    "LongTermState",
    "NewStates",
    "ParamState",
    "ShortTermState",
    "State",
    "StateError",
    "StateStructureError",
    "StateTrace",
    "TraceContextError",
    "TraceOrderError",
    "__version__",
    "catch_new_states",
    "errors",
    "extend",
    "restore",
    "snapshot",
    "states",
]
