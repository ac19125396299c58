"""Every use of JAX internals (``jax._src``) by statediff, in one place.

JAX has no public API for these yet; when a JAX upgrade moves them, this is
the only module to change.
"""

from __future__ import annotations

from typing import Any

from jax import lax

try:  # converts keeping JAX's weak type, as jax.jacfwd/jacrev do for their blocks
    from jax._src.lax.lax import _convert_element_type as _jax_convert
except ImportError:  # pragma: no cover - a future JAX without it: drop the weak type
    _jax_convert = None

__all__ = ["convert_keeping_weak_type"]


def convert_keeping_weak_type(x: Any, dtype: Any, weak: bool) -> Any:
    """Convert ``x`` to ``dtype``, weakly typed if ``weak`` (when JAX allows it)."""
    if _jax_convert is None:  # pragma: no cover
        return lax.convert_element_type(x, dtype)
    return _jax_convert(x, dtype, weak)
