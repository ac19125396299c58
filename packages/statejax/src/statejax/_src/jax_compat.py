"""Every use of JAX internals (``jax._src``) by statejax, in one place.

JAX has no public API for these yet; when a JAX upgrade moves them, this is
the only module to change.
"""

from __future__ import annotations

from typing import Any

from jax._src import core as _core
from jax._src import pjit as _pjit
from jax._src import sharding_impls as _sharding_impls
from jax._src.interpreters import batching as _batching

__all__ = [
    "EVAL_TRACE",
    "TRACE_STATE",
    "BatchTrace",
    "BatchTracer",
    "bind_closed_jaxpr",
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


def _jit_p_bind_supported() -> bool:
    """Whether ``jit_p`` exists with the parameters of JAX >= 0.10 (checked by signature)."""
    import jax

    try:
        major, minor = (int(p) for p in jax.__version__.split(".")[:2])
    except ValueError:
        return False
    return hasattr(_pjit, "jit_p") and hasattr(_pjit, "get_ctx_mesh") and (major, minor) >= (0, 10)


_JIT_P_BIND = _jit_p_bind_supported()
# ``inline=False`` as the jit primitive's parameter: a bool up to JAX 0.11, a ``jax.Inline``
# member from JAX 0.12 (``jax.jit(inline=False)`` is canonicalized to ``Inline.AUTO``).
_canonicalize_inline = getattr(_pjit, "_canonicalize_inline", None)
_NO_INLINE = False if _canonicalize_inline is None else _canonicalize_inline(False)


def bind_closed_jaxpr(closed: Any, args: Any, name: str) -> list[Any]:
    """Stage ``closed`` into the current trace as one nested-jit equation.

    What ``jax.jit`` would stage for a function already traced to ``closed``,
    without evaluating its equations again (one equation instead of one per
    primitive): the compiled stateful call's runner uses it so that the user's
    function is traced once per signature, not twice. XLA inlines the call.
    On a JAX whose jit primitive takes other parameters (before 0.10), the
    equations are evaluated into the trace instead (same program, traced
    once more).
    """
    if not _JIT_P_BIND:
        return _core.eval_jaxpr(closed.jaxpr, closed.consts, *args)
    n_in, n_out = len(closed.in_avals), len(closed.out_avals)
    unspecified = _sharding_impls.UNSPECIFIED
    return _pjit.jit_p.bind(
        *args,
        jaxpr=closed,
        in_shardings=(unspecified,) * n_in,
        out_shardings=(unspecified,) * n_out,
        in_layouts=(None,) * n_in,
        out_layouts=(None,) * n_out,
        donated_invars=(False,) * n_in,
        ctx_mesh=_pjit.get_ctx_mesh(False),
        name=name,
        keep_unused=False,
        inline=_NO_INLINE,
        compiler_options_kvs=(),
    )
