"""Every use of JAX internals (``jax._src``) by statejax, in one place.

JAX has no public API for these yet; when a JAX upgrade moves them, this is
the only module to change.
"""

from __future__ import annotations

from typing import Any

from jax._src import core as _core
from jax._src.interpreters import batching as _batching

__all__ = [
    "EVAL_TRACE",
    "TRACE_STATE",
    "BatchTrace",
    "BatchTracer",
    "current_trace",
    "error_flag",
    "extend_axis_env_nd",
    "is_concrete",
    "is_eager",
]

# ``TRACE_STATE.value is EVAL_TRACE`` is the cheapest "not inside any JAX
# transform" test; the generated hot path uses it on every call.
EVAL_TRACE = _core.eval_trace
if hasattr(_core, "trace_state_strong_ref"):  # JAX >= 0.10: a config-backed trace state
    TRACE_STATE = _core.trace_state_strong_ref
else:  # JAX 0.6.2 - 0.9: the thread-local ``trace_ctx.trace``, read through ``.value``

    class _TraceState:
        """``.value`` is JAX's innermost trace of this thread (as in JAX >= 0.10)."""

        __slots__ = ()

        @property
        def value(self) -> Any:
            return _core.trace_ctx.trace

    TRACE_STATE = _TraceState()
BatchTrace = _batching.BatchTrace
BatchTracer = _batching.BatchTracer
extend_axis_env_nd = _core.extend_axis_env_nd
is_concrete = _core.is_concrete  # public jax.core.is_concrete is deprecated
_EvalTrace = _core.EvalTrace
_trace_ctx = _core.trace_ctx


def current_trace() -> Any:
    """Return JAX's innermost trace object of this thread."""
    return _trace_ctx.trace


def is_eager() -> bool:
    """Return whether no JAX transform is tracing in this thread."""
    return type(_trace_ctx.trace) is _EvalTrace


def error_flag(error: Any) -> Any:
    """Return whether a ``jax.experimental.checkify.Error`` holds a failure (traceable bool).

    checkify has no public traceable accessor: the per-error-kind predicates
    live in the private ``_pred`` mapping.
    """
    import jax.numpy as jnp

    preds = [jnp.asarray(p) for p in error._pred.values()]
    if not preds:
        return jnp.zeros((), bool)
    return jnp.any(jnp.stack([jnp.any(p) for p in preds]))
