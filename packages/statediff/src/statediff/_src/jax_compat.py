"""Every use of JAX internals (``jax._src``) by statediff, in one place.

JAX has no public API for these yet; when a JAX upgrade moves them, this is
the only module to change.
"""

from __future__ import annotations

from typing import Any

from jax import lax
from jax._src import config as _config
from jax._src import core as _core

try:  # converts keeping JAX's weak type, as jax.jacfwd/jacrev do for their blocks
    from jax._src.lax.lax import _convert_element_type as _jax_convert
except ImportError:  # pragma: no cover - a future JAX without it: drop the weak type
    _jax_convert = None

__all__ = ["DISABLE_JIT", "convert_keeping_weak_type", "current_trace"]

#: ``DISABLE_JIT.value`` is whether ``jax.disable_jit()`` is active (the cheapest test).
DISABLE_JIT = _config.disable_jit
_trace_ctx = _core.trace_ctx


def convert_keeping_weak_type(x: Any, dtype: Any, weak: bool) -> Any:
    """Convert ``x`` to ``dtype``, weakly typed if ``weak`` (when JAX allows it)."""
    if _jax_convert is None:  # pragma: no cover
        return lax.convert_element_type(x, dtype)
    return _jax_convert(x, dtype, weak)


def current_trace() -> Any:
    """Return JAX's innermost trace object of this thread."""
    return _trace_ctx.trace
