"""Per-thread bookkeeping shared by states, traces and catchers.

States consult this module on every ``.value`` access, so the fast path is a
single attribute read of :data:`ACTIVE` (the number of traces or catchers open
in *any* thread). Only when it is non-zero do they look at this thread's stack.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

__all__ = ["ACTIVE", "LOCAL", "next_serial"]


class _Active:
    """Process-wide count of open traces and catchers (a fast-path flag)."""

    __slots__ = ("count", "lock")

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.count += n


class _Local(threading.local):
    """This thread's open traces (outermost first), state catchers and private values.

    ``view`` maps ``id(state)`` to ``(state, value)``: the value this thread
    sees for a state while one of its traces holds a private one (a tracer of
    the jaxpr being staged, or a per-lane placeholder). Other threads never
    see these values; they keep reading the state's shared value.
    """

    def __init__(self) -> None:
        self.traces: list[Any] = []
        self.catchers: list[Any] = []
        self.view: dict[int, tuple[Any, Any]] = {}


ACTIVE = _Active()
LOCAL = _Local()

# One counter orders both trace openings and state creations: a trace records
# a state only if the trace was opened after the state was created.
_SERIAL = itertools.count(1)


def next_serial() -> int:
    """Return the next number of the process-wide creation order."""
    return next(_SERIAL)
