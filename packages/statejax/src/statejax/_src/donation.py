"""``donate_states=True``: what a failed call leaves in the donated states.

A compiled call that donates the buffers of the states it writes and then
fails at run time leaves those states without a value (their buffers are
deleted). The compiled function of such a plan is wrapped (only with
``donate_states=True``, so the default hot path pays nothing) so that on a
failure the states whose buffers are gone are marked: reading them, or
calling a compiled function that uses them, raises
:class:`~stategraph.errors.DonatedStateError` naming the state and how to
restore it, instead of JAX's "Array has been deleted".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from stategraph.extend import donated_error, is_donated, mark_donated

from .plan import StatePlan

__all__ = ["DonationGuard"]


def _deleted(value: Any) -> bool:
    for leaf in jax.tree.leaves(value):
        is_deleted = getattr(leaf, "is_deleted", None)
        if is_deleted is not None and is_deleted():
            return True
    return False


class DonationGuard:
    """Call a compiled function whose written states are donated; mark them on failure.

    Everything else (``lower``, ``trace``, ...) is the compiled function's own.
    """

    def __init__(self, jitted: Callable[..., Any], plan: StatePlan, api: str) -> None:
        self.jitted = jitted
        self.plan = plan
        self.api = api

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.jitted(*args, **kwargs)
        except Exception as err:
            self._failed(err)
            raise

    def _failed(self, err: BaseException) -> None:
        states = self.plan.read_states() or []
        donated = [s for s, w in zip(states, self.plan.rw_mask, strict=True) if w]
        # A state marked by an earlier failure: this call failed because of it.
        earlier = [s for s in donated if is_donated(s)]
        if earlier:
            raise donated_error(earlier[0]) from err
        gone = [s for s in donated if _deleted(s._value)]
        for state in gone:
            mark_donated(state, self.api)
        if gone:
            names = ", ".join(f"{type(s).__mro__[1].__name__} {s._label()}" for s in gone)
            err.add_note(
                f"{self.api}: the buffers of {names} were donated to this call "
                "(donate_states=True), which failed, so those states have no value now; "
                "reading them raises stategraph.errors.DonatedStateError until they are "
                "written again (for example with stategraph.restore from a snapshot)."
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.jitted, name)
