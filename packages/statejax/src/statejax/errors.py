"""Errors raised by :mod:`statejax`.

``statejax`` raises the state errors of :mod:`stategraph.errors` (re-exported
here) and builtin ``TypeError`` / ``ValueError`` for bad arguments.
"""

from stategraph.errors import (
    DonatedStateError,
    StateError,
    StateStructureError,
    TraceContextError,
    TraceOrderError,
)

__all__ = [
    "DonatedStateError",
    "StateError",
    "StateStructureError",
    "TraceContextError",
    "TraceOrderError",
]
