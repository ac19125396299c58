"""Every use of JAX internals (``jax._src``) by stategraph, in one place.

JAX has no public API for these yet; when a JAX upgrade moves them, this is
the only module to change.
"""

from __future__ import annotations

import functools
from typing import Any

from jax._src import core as _core
from jax._src import source_info_util as _source_info
from jax._src.array import ArrayImpl
from jax._src.interpreters import partial_eval as _pe

__all__ = [
    "ArrayImpl",
    "current_jax_trace",
    "is_staging_trace",
    "multinomial_shape",
    "new_jaxpr_input",
]


def current_jax_trace() -> Any:
    """Return JAX's innermost trace object of this thread (an opaque identity)."""
    return _core.trace_ctx.trace


def is_staging_trace(trace: Any) -> bool:
    """Return whether ``trace`` stages a jaxpr (``jax.make_jaxpr`` / ``jax.jit`` tracing)."""
    return isinstance(trace, _pe.DynamicJaxprTrace)


def new_jaxpr_input(trace: Any, aval: Any) -> Any:
    """Append a new input variable of abstract value ``aval`` to a staging trace."""
    return trace.new_arg(aval, _source_info.current())


@functools.cache
def _multinomial_shape_has_categories() -> bool:
    """Whether ``jax.random.multinomial(shape=...)`` includes the categories axis.

    It does up to JAX 0.11; from JAX 0.12 ``shape`` is the batch prefix only. Probed once,
    abstractly (``jax.eval_shape``: nothing is compiled).
    """
    import jax
    import jax.numpy as jnp

    def draw(key: Any) -> Any:
        return jax.random.multinomial(key, 3, jnp.full((2,), 0.5), shape=(1, 2))

    return jax.eval_shape(draw, jax.random.key(0)).shape == (1, 2)


def multinomial_shape(batch: tuple[int, ...], categories: int) -> tuple[int, ...]:
    """The ``shape`` argument of ``jax.random.multinomial`` for a ``batch + (categories,)`` draw."""
    return (*batch, categories) if _multinomial_shape_has_categories() else tuple(batch)
