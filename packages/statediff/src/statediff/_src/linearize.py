"""``linearize``: a stateful call's value and its reusable forward-mode linear map.

``linearize(fun, *primals, ...)`` runs now (as ``jax.linearize``);
:class:`LinearizeTransform` is the reusable builder form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

from .jvp import all_positions
from .pure_call import DiffTransform, make_call
from .residual_fn import residual_function, residual_of
from .tangents import arg_tangents
from .tangents import state_tangents as _state_tangents
from .units_hook import units_backend
from .weak_cache import cached, quick_table

__all__ = ["LinearizeTransform", "linearize"]


class _PushSpec:
    """What a ``jvp_fn`` needs besides its residuals (static, hashed by identity)."""

    def __init__(self, owner: DiffTransform, call: Any) -> None:
        self.owner = owner
        self.positions = call.positions
        abstract = functools.partial(jax.tree.map, _abstract)
        self.grad_avals = [abstract(v) for v in call.grad_values]
        self.arg_avals = [abstract(a) for a in call.primals[1:]]


def _abstract(x: Any) -> jax.ShapeDtypeStruct:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def _push(
    spec: _PushSpec, residual: tuple[list[Any]], *tangents: Any, state_tangents: Any = None
) -> Any:
    t_states = _state_tangents(spec.owner, spec.grad_avals, state_tangents)
    t_args = arg_tangents(spec.owner, spec.positions, spec.arg_avals, tangents)
    return residual_of(spec, residual)(t_states, *t_args)


class LinearizeTransform(DiffTransform):
    """The builder form of :func:`linearize`: ``LinearizeTransform(fun, ...)(*args)``.

    Each call runs ``fun`` on its arguments (one cached compiled function per
    signature) and returns ``(primal_out, jvp_fn)``, or ``(primal_out,
    jvp_fn, aux)`` with ``has_aux=True``. States read but not in
    ``grad_states`` are constants; states written inside ``fun`` are written
    back once per call with their primal values.

    ``jvp_fn(*tangents, state_tangents=None)`` evaluates the Jacobian-vector
    product at the linearization point without re-running ``fun``:

    - ``tangents``: one tangent per differentiated argument, in ``argnums``
      order: all positional arguments when neither ``grad_states`` nor
      ``argnums`` is given (as ``jax.linearize``), those in ``argnums`` when
      it is given, none when only ``grad_states`` is given.
    - ``state_tangents`` (keyword only): tangents of the states, in the
      container shape of ``grad_states``; ``None``, a ``None`` entry or a
      missing dict key means a zero tangent.

    Each tangent has its primal's structure, shape and dtype. ``jvp_fn`` is a
    ``jax.tree_util.Partial`` holding the linearization's residuals: it may be
    called many times and passed through ``jax.jit``; each call runs one
    compiled function.

    Args:
        fun: The stateful function.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments that get tangents.
        has_aux: ``fun`` returns ``(value, aux)``; aux is returned as is.
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``fun``; with False its tangent is ignored.
        name: API name used in error messages.
        weak_states: Hold ``grad_states`` by weak reference (used by caches).
        positional_calls: Every call passes its arguments by position (used
            by the run-now function): the compiled call may then take
            ``fun``'s own signature.

    Raises:
        TypeError: a non-State in ``grad_states`` (at construction);
            ``has_aux=True`` and ``fun`` does not return a pair; tangents of
            the wrong structure (from ``jvp_fn``).
        ValueError: invalid ``argnums`` (at construction) or one out of range;
            the wrong number of tangents, or one whose shape or dtype does not
            match its primal (from ``jvp_fn``; the message names it).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> lin = sd.LinearizeTransform(lambda x: w.value * x ** 2, grad_states=w)
        >>> y, jvp_fn = lin(3.0)
        >>> jvp_fn(state_tangents=1.0)
        Array(9., dtype=float32, weak_type=True)
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        grad_states: Any = None,
        argnums: int | tuple[int, ...] | None = None,
        has_aux: bool = False,
        check_states: bool = True,
        *,
        name: str = "statediff.LinearizeTransform",
        weak_states: bool = False,
        positional_calls: bool = False,
    ) -> None:
        super().__init__(
            fun,
            grad_states,
            argnums,
            has_aux,
            check_states,
            name,
            weak_states=weak_states,
            positional_calls=positional_calls,
        )
        # One compiled pushforward per signature, cached with this transform.
        self._push = jax.jit(_push, static_argnums=0)

    def _drive(self, *args: Any, **kwargs: Any) -> Any:
        call = make_call(self, args, kwargs)
        y, linear, (aux, new) = jax.linearize(call, *call.primals, has_aux=True)
        call.write(new)
        spec = _PushSpec(self, call)
        jvp_fn = residual_function(self._push, spec, linear)
        return (y, jvp_fn, aux) if self.has_aux else (y, jvp_fn)


_API = "statediff.linearize"
#: The cached compiled calls of plain functions under the default settings (see ``jvp``).
_DEFAULTS = quick_table("linearize", (None, False, True))


def _build(
    target: Any, gs: Any, weak: bool, settings: tuple[Any, bool, bool]
) -> LinearizeTransform:
    """Build the cached transform of the run-now :func:`linearize`."""
    return LinearizeTransform(
        target, gs, *settings, name=_API, weak_states=weak, positional_calls=True
    )


def linearize(
    fun: Callable[..., Any],
    *primals: Any,
    has_aux: bool = False,
    grad_states: Any = None,
    unit_aware: bool = False,
    check_states: bool = True,
) -> tuple[Any, ...]:
    """Stateful counterpart of ``jax.linearize``: run ``fun`` now and return its linear map.

    Evaluates ``fun(*primals)`` (which may read and write States) and returns
    ``(primal_out, jvp_fn)``, or ``(primal_out, jvp_fn, aux)`` with
    ``has_aux=True``, as ``jax.linearize`` does. ``jvp_fn(*tangents,
    state_tangents=None)`` takes one tangent per primal (each with its
    primal's structure, shape and dtype) and evaluates the Jacobian-vector
    product at ``primals`` without re-running ``fun``.

    States are constants unless given in ``grad_states``; then the keyword
    ``state_tangents`` of ``jvp_fn`` holds their tangents in the container
    shape of ``grad_states`` (``None``, a ``None`` entry or a missing dict key
    means zero). States written inside ``fun`` are written back with their
    primal values.

    Repeated calls with the same function, ``grad_states`` and options reuse
    one compiled function per argument signature (the function and states are
    held weakly by that cache); ``jvp_fn`` is a ``jax.tree_util.Partial``
    holding the residuals and runs one compiled function per call. For the
    builder form with ``argnums``, see :class:`LinearizeTransform`.

    Args:
        fun: The stateful function.
        *primals: Its positional arguments.
        has_aux: ``fun`` returns ``(value, aux)``; aux is returned as is.
        grad_states: States whose values get tangents: a State, a sequence
            or a dict of States (nested allowed).
        unit_aware: Units-aware linearization (needs ``statediff-units``).
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``fun``; with False its tangent is ignored.

    Returns:
        ``(primal_out, jvp_fn)`` or ``(primal_out, jvp_fn, aux)``.

    Raises:
        TypeError: a non-State in ``grad_states``; ``has_aux=True`` and
            ``fun`` does not return a pair; tangents of the wrong structure
            (from ``jvp_fn``).
        ValueError: the wrong number of tangents, or one whose shape or dtype
            does not match its primal (from ``jvp_fn``; the message names it).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> y, jvp_fn = sd.linearize(lambda x: x ** 2, 3.0)
        >>> jvp_fn(1.0)
        Array(6., dtype=float32, weak_type=True)
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> y, jvp_fn = sd.linearize(lambda x: w.value * x, 3.0, grad_states=[w])
        >>> jvp_fn(1.0, state_tangents=[jnp.ones(2)])
        Array([4., 5.], dtype=float32)
    """
    if grad_states is None and has_aux is False and check_states is True and unit_aware is False:
        hit = _DEFAULTS.get(id(fun))  # as in jvp: a cached function, the default settings
        if hit is not None:
            hit[1] = True  # used (see weak_cache)
            return hit[4](*primals)
    argnums = None if grad_states is None else all_positions(grad_states, len(primals))
    if unit_aware:
        made = units_backend(_API).make(
            "linearize",
            fun,
            grad_states=grad_states,
            argnums=argnums,
            has_aux=has_aux,
            check_states=check_states,
        )
        return made(*primals)
    # The transform normalises the flags; as keys, 1 and True (or np.True_) are the same.
    options = (argnums, has_aux, check_states)
    transform = cached(_build, "linearize", fun, grad_states, options)
    # (Under jax.disable_jit() the compiled call's slow path runs _drive, the Python body.)
    return transform._driver._call(*primals)
