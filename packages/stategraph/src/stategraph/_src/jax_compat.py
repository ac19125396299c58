"""Every use of JAX internals (``jax._src``) by stategraph, in one place.

JAX has no public API for these yet; when a JAX upgrade moves them, this is
the only module to change.
"""

from __future__ import annotations

from typing import Any

from jax._src import core as _core
from jax._src import source_info_util as _source_info
from jax._src.array import ArrayImpl
from jax._src.interpreters import partial_eval as _pe

__all__ = ["ArrayImpl", "current_jax_trace", "is_staging_trace", "new_jaxpr_input"]


def current_jax_trace() -> Any:
    """Return JAX's innermost trace object of this thread (an opaque identity)."""
    return _core.trace_ctx.trace


def is_staging_trace(trace: Any) -> bool:
    """Return whether ``trace`` stages a jaxpr (``jax.make_jaxpr`` / ``jax.jit`` tracing)."""
    return isinstance(trace, _pe.DynamicJaxprTrace)


def new_jaxpr_input(trace: Any, aval: Any) -> Any:
    """Append a new input variable of abstract value ``aval`` to a staging trace."""
    return trace.new_arg(aval, _source_info.current())
