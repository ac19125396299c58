"""Errors raised by :mod:`statediff`.

Bad arguments raise builtin ``TypeError`` / ``ValueError``; state rules raise
the classes of :mod:`stategraph.errors` (re-exported here).
"""

from stategraph.errors import (
    StateError,
    StateStructureError,
    TraceContextError,
    TraceOrderError,
    _LinkedToDocs,  # ends every message with a link to the errors page (one URL for the stack)
)

__all__ = [
    "StateError",
    "StateStructureError",
    "TraceContextError",
    "TraceOrderError",
    "UnitsNotInstalledError",
]


class UnitsNotInstalledError(_LinkedToDocs, ImportError):
    """``unit_aware=True`` was asked for but ``statediff-units`` is not installed.

    Cause: unit-aware derivatives live in the separate ``statediff-units``
    package (it depends on ``brainunit``), found at run time.

    Fix: ``pip install statediff-units`` (or ``pip install statediff[units]``),
    or pass ``unit_aware=False`` with unit-free values.

    Its message ends with a link to this entry of the documentation.

    Example:
        >>> import statediff as sd
        >>> message = str(sd.UnitsNotInstalledError("needs statediff-units"))
        >>> message.endswith("errors.html#statediff.errors.UnitsNotInstalledError)")
        True
    """
