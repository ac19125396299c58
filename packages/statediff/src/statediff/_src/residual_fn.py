"""The ``vjp_fn`` / ``jvp_fn`` objects returned by ``vjp`` and ``linearize``.

They are :class:`jax.tree_util.Partial` objects (callable, passable through
``jax.jit``, a pytree of their residuals), of a subclass whose pytree
unflattening runs no Python: the run-now ``vjp``/``linearize`` return one
from a compiled call on every call, and ``Partial``'s own unflattening costs
a Python ``__new__`` and a lambda per call. For the same reason the residual
(JAX's own ``vjp``/``linearize`` function) is held as the flat list of its
arrays, its structure kept with the static part: JAX's function objects
unflatten through Python code, once per call of the compiled forward pass,
whereas a list of arrays unflattens in C. The function is rebuilt from its
arrays only while its compiled backward (or forward) pass is traced.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["ResidualFunction", "residual_function", "residual_of"]


class ResidualFunction(jax.tree_util.Partial):
    """A ``jax.tree_util.Partial`` of one residual pytree (unflattened without Python)."""

    # The C constructor of functools.partial, not Partial's Python __new__: the
    # pytree registration below unflattens with ``ResidualFunction(func, children)``.
    __new__ = functools.partial.__new__


jax.tree_util.register_pytree_node(
    ResidualFunction, lambda fn: (fn.args[0], fn.func), ResidualFunction
)


def residual_function(apply: Callable[..., Any], spec: Any, residual: Any) -> ResidualFunction:
    """Return the callable ``lambda *a, **k: apply(spec, packed, *a, **k)`` as a pytree.

    ``residual`` is the pytree part (arrays, JAX's own ``vjp``/``linearize``
    functions); ``apply`` and ``spec`` are static (``spec`` is compared by
    identity, and gains the attribute ``residual_tree``). ``apply`` receives the
    residual packed (its leaves in a one-tuple of a list); :func:`residual_of`
    unpacks it. A call is a C-level partial call of a bound method of ``apply``
    (a ``jax.jit`` function), with no Python frame of this module in between.

    Example:
        >>> import jax, jax.numpy as jnp, types
        >>> def apply(spec, packed, x):
        ...     return spec.scale * residual_of(spec, packed)["r"] + x
        >>> spec = types.SimpleNamespace(scale=2.0)
        >>> fn = residual_function(apply, spec, {"r": jnp.ones(2)})
        >>> fn(1.0)
        Array([3., 3.], dtype=float32)
        >>> isinstance(fn, jax.tree_util.Partial), len(jax.tree.leaves(fn))
        (True, 1)
        >>> jax.jit(lambda f: f(0.5))(fn)
        Array([2.5, 2.5], dtype=float32)
    """
    leaves, spec.residual_tree = jax.tree.flatten(residual)
    # A method object binds ``spec`` in C; a functools.partial would not do: the partial
    # constructor would merge it into the ResidualFunction's own arguments.
    return ResidualFunction(types.MethodType(apply, spec), (leaves,))


def residual_of(spec: Any, packed: tuple[list[Any]]) -> Any:
    """The residual pytree that :func:`residual_function` packed for ``spec``."""
    return spec.residual_tree.unflatten(packed[0])
