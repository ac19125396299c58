"""Public error classes of :mod:`stategraph`.

Every error raised for a *state concept* derives from :class:`StateError`, so a
framework can catch them all at once. Bad arguments raise the builtin
:class:`TypeError` or :class:`ValueError` instead.
"""

from __future__ import annotations

__all__ = [
    "DonatedStateError",
    "HookCancellationError",
    "HookError",
    "HookExecutionError",
    "HookRegistrationError",
    "StateError",
    "StateStructureError",
    "TraceContextError",
    "TraceOrderError",
]

# The one place that names the documentation's address (statediff.errors uses it too).
DOCS_URL = "https://statestack.readthedocs.io/en/latest"
_DOCS = f"{DOCS_URL}/errors.html"

# The packages whose ``errors`` modules are documented on the errors page.
_STACK = frozenset({"stategraph", "statejax", "statediff", "statediff_units"})


def _link(anchor: str) -> str:
    return f"\n(See {_DOCS}#{anchor})"


def _anchor(cls: type) -> str:
    """The errors page's anchor of ``cls``: that of its nearest documented class.

    A documented class is one defined in the ``errors`` module of a package of
    the stack; its anchor is its full name (``stategraph.errors.StateError``),
    as Sphinx's autodoc makes it. A user's subclass links to its documented base.
    """
    for klass in cls.__mro__:
        module = klass.__module__
        if module.endswith(".errors") and module.split(".")[0] in _STACK:
            return f"{module}.{klass.__qualname__}"
    return ""


class _LinkedToDocs(BaseException):
    """Mixin: the message ends with a link to the class's entry on the errors page."""

    def __str__(self) -> str:
        anchor = _anchor(type(self))
        message = super().__str__()
        return message + _link(anchor) if anchor else message


class StateError(_LinkedToDocs, Exception):
    """Root of every state-related error raised by this stack.

    Cause: a rule about :class:`~stategraph.State` objects was broken.

    Fix: catch this class to handle every state error at once; the subclass and
    its message say which rule and how to fix the call.

    Every message of this class and its subclasses ends with a link to the
    class's entry on the errors page of the documentation (``DOCS_URL``).

    Example:
        >>> import stategraph as sg
        >>> message = str(sg.TraceOrderError("traces must nest"))
        >>> message.splitlines()[-1].endswith("errors.html#stategraph.errors.TraceOrderError)")
        True
    """


class TraceContextError(StateError):
    """A state was given (or read) a value from the wrong JAX trace.

    Cause: ``state.value = x`` where ``x`` is a JAX tracer coming from a
    transform that does not manage states, such as plain ``jax.jit``,
    ``jax.vmap`` or ``jax.grad`` over code that writes ``state.value``. After
    that transform returned, the state would hold a leaked tracer. It is also
    raised when reading a state that was created inside a traced function and
    whose value only existed inside that trace.

    Fix: use the stateful counterpart of the transform (``statejax.jit``,
    ``statejax.vmap``, ``statediff.grad``, ...), which carries written states in
    and out of the trace, or return the new value from the function and write
    it outside the transform. For a state created inside a traced function,
    create it outside the transform or write it a concrete value before
    reading it.
    """


class StateStructureError(StateError, ValueError):
    """A state was written, during a trace, with a value of another structure.

    Cause: while a :class:`~stategraph.StateTrace` is open (so inside every
    stateful transform), writing ``state.value`` with a value whose pytree
    structure, shape or dtype differs from the current one. A compiled
    function has fixed input and output types, so such a write cannot be
    carried out of the trace.

    Fix: keep the value's structure, shape and dtype (cast with ``.astype``,
    reshape, or pad), or change the structure outside any transform; the
    stateful transforms then retrace for the new structure.
    """


class TraceOrderError(StateError, RuntimeError):
    """State traces were exited in another order than they were entered.

    Cause: a :class:`~stategraph.StateTrace` was exited while a trace entered
    after it was still open (the ``with`` blocks do not nest, or ``__exit__``
    was called by hand in the wrong order).

    Fix: use ``with`` blocks so traces close innermost first.
    """


class HookError(StateError):
    """Root of the errors about state hooks.

    Cause: a hook was misused (a removed hook enabled again, a hook of a
    collected state managed) or a hook refused an operation.

    Fix: see the subclass; the message names the hook and the state.
    """


class HookRegistrationError(HookError, ValueError):
    """A hook could not be registered.

    Cause: ``register_hook`` got an unknown kind (the kinds are ``read``,
    ``write_before``, ``write_after``, ``restore`` and ``init``), a callback
    that is not callable, or a priority that is not an int.

    Fix: pass one of the kinds, a function taking one context argument and an
    int priority.
    """


class HookExecutionError(HookError):
    """Kept for brainstate compatibility; never raised by this stack.

    Cause: brainstate wraps a hook's exception in this class. Here the hook's
    own exception propagates unchanged (with a note naming the hook and the
    state).

    Fix: catch the exception type your hook raises.
    """


class HookCancellationError(HookError):
    """A ``write_before`` hook cancelled a write.

    Cause: a ``write_before`` hook set ``ctx.cancel = True``: the write is
    refused and the state keeps its value (inside a transform, every state
    keeps its value from before the call).

    Fix: write a value the hook accepts, or disable or remove the hook.
    """


class DonatedStateError(StateError, RuntimeError):
    """A state's buffer was donated to a compiled call that then failed.

    Cause: with ``statejax.jit(..., donate_states=True)`` the buffers of the
    states a function writes are handed to XLA for the new values. If that
    call fails at run time (a failing callback or check, an XLA error), the
    donated buffers are already gone and there is no new value: the state
    holds nothing usable. Reading it raises this error instead of JAX's
    "Array has been deleted", and so does the next call that uses it.

    Fix: give the state a value again, for example with
    ``stategraph.restore(model, snapshot)`` from a copy of a
    ``stategraph.snapshot`` taken before the call
    (``jax.tree.map(jnp.copy, stategraph.snapshot(model))``: donation deletes
    the buffers that a plain snapshot refers to, on successful calls too), or
    ``state.value = ...``. Keep such a copy (or call without
    ``donate_states``) when a call may fail.
    """
